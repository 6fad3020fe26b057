import fs from 'node:fs';
import { run } from '../lib/exec.js';
import type { Logger } from './supervisor.js';

/** An unprivileged user a QEMU runs as when the server runs as root. */
export interface QemuIdentity {
  name: string;
  uid: number;
  gid: number;
}

export const DEFAULT_USER_PREFIX = 'qm-vm-';

function lookup(pred: (name: string, uid: number) => boolean): QemuIdentity | null {
  for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] && f[2] && f[3] && pred(f[0], Number(f[2]))) return { name: f[0], uid: Number(f[2]), gid: Number(f[3]) };
  }
  return null;
}

function groupExists(name: string): boolean {
  return fs.readFileSync('/etc/group', 'utf8').split('\n').some((l) => l.split(':')[0] === name);
}

/**
 * Who QEMUs run as. As root, by default each running VM gets a user of its own from a pool
 * (`qm-vm-0`, `qm-vm-1`, … created on first need: system users without home or shell, primary group
 * kvm so /dev/kvm opens), so one QEMU cannot touch another running VM's images. QEMU_USER=<name> makes
 * every QEMU run as that one user instead; QEMU_USER= (empty) runs them as root. Not root: QEMU runs
 * as the server's own user and there is nothing to drop.
 */
export class IdentityPool {
  private readonly taken = new Set<number>();

  private constructor(
    private readonly mode: 'none' | 'fixed' | 'pool',
    private readonly name: string,
    private readonly log: Logger,
  ) {}

  static fromSetting(setting: string | undefined, log: Logger): IdentityPool {
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) return new IdentityPool('none', '', log);
    if (setting === '') {
      log.warn({}, 'QEMU_USER is empty: QEMU runs as root');
      return new IdentityPool('none', '', log);
    }
    return setting ? new IdentityPool('fixed', setting, log) : new IdentityPool('pool', DEFAULT_USER_PREFIX, log);
  }

  get enabled(): boolean {
    return this.mode !== 'none';
  }

  /** An identity for a starting VM, reserved until release(). Null when QEMU keeps the server's user. */
  async acquire(): Promise<QemuIdentity | null> {
    if (this.mode === 'none') return null;
    if (this.mode === 'fixed') return lookup((n) => n === this.name) ?? (await this.create(this.name));
    for (let n = 0; ; n++) {
      const name = `${this.name}${n}`;
      const found = lookup((x) => x === name);
      if (found && this.taken.has(found.uid)) continue;
      const id = found ?? (await this.create(name));
      if (this.taken.has(id.uid)) continue; // another start took it while we created it
      this.taken.add(id.uid);
      return id;
    }
  }

  /** Marks the user of a QEMU found running at server start as in use. */
  claim(uid: number): QemuIdentity | null {
    if (this.mode === 'none') return null;
    const id = lookup((_n, u) => u === uid);
    if (id && this.mode === 'pool') this.taken.add(uid);
    return id;
  }

  release(identity: QemuIdentity | null): void {
    if (identity && this.mode === 'pool') this.taken.delete(identity.uid);
  }

  private create(name: string): Promise<QemuIdentity> {
    return ensureSystemUser(name, this.log);
  }
}

let creating: Promise<unknown> = Promise.resolve();

/**
 * The system user `name` (no home, no shell, primary group kvm when it exists), created with
 * useradd if missing. One useradd at a time in this process (it locks /etc/passwd).
 */
export function ensureSystemUser(name: string, log: Logger): Promise<QemuIdentity> {
  const job = creating.then(async () => {
    const existing = lookup((n) => n === name);
    if (existing) return existing;
    const args = ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin'];
    args.push(...(groupExists('kvm') ? ['--gid', 'kvm'] : ['--user-group']));
    const r = await run('useradd', [...args, name], { timeoutMs: 20_000 }).catch((err: Error) => ({ code: -1, stderr: err.message }));
    const created = lookup((n) => n === name);
    if (!created) throw new Error(`cannot create the system user ${name}: ${r.stderr.trim() || `useradd exited ${r.code}`}`);
    log.info({ user: name, uid: created.uid }, 'created an unprivileged system user');
    return created;
  });
  creating = job.catch(() => undefined);
  return job;
}

/** Lets QEMU users traverse (not list) the data dir so they can reach their images. */
export function allowTraverse(pool: IdentityPool, dir: string): void {
  if (!pool.enabled) return;
  const mode = fs.statSync(dir).mode & 0o7777;
  if ((mode & 0o001) === 0) fs.chmodSync(dir, mode | 0o001);
}
