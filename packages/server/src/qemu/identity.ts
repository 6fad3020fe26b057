import fs from 'node:fs';
import path from 'node:path';
import { run } from '../lib/exec.js';
import { isAlive, readStat, uidHasProcesses } from '../lib/proc.js';
import type { Logger } from '../lib/log.js';

/** An unprivileged user a QEMU runs as when the server runs as root. */
export interface QemuIdentity {
  name: string;
  uid: number;
  gid: number;
}

const DEFAULT_USER_PREFIX = 'qm-vm-';

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

/** Where pool users are claimed, host-wide: one file per claimed user, whichever server claimed it. */
const DEFAULT_CLAIMS_DIR = '/run/qemu-manager/users';

/** What a claim file records: the claiming server process and its data dir. */
interface Claim {
  pid: number;
  start: string;
  dataDir: string;
}

/**
 * Who QEMUs run as. As root, by default each running VM gets a user of its own from a pool
 * (`qm-vm-0`, `qm-vm-1`, … created on first need: system users without home or shell, primary group
 * kvm so /dev/kvm opens), so one QEMU cannot touch another running VM's images. The pool is
 * host-wide: a user is taken by creating `<claimsDir>/<name>` with O_EXCL (it records the claiming
 * server's pid, start time and data dir), so two servers on one host never hand out the same user.
 * A claim is stale (and is taken over) only when its server process is gone and no process at all
 * runs as that user; a user anything runs as is never handed out. QEMU_USER=<name> makes every QEMU run as that one user instead; QEMU_USER=
 * (empty) runs them as root. Not root: QEMU runs as the server's own user and there is nothing to drop.
 */
export class IdentityPool {
  private readonly taken = new Set<number>();
  private readonly me: Claim;

  private constructor(
    private readonly mode: 'none' | 'fixed' | 'pool',
    private readonly name: string,
    private readonly log: Logger,
    dataDir: string,
    private readonly claimsDir: string,
  ) {
    this.me = { pid: process.pid, start: readStat(process.pid)?.startTime ?? '', dataDir };
  }

  static fromSetting(setting: string | undefined, log: Logger, opts: { dataDir?: string; claimsDir?: string } = {}): IdentityPool {
    const make = (mode: 'none' | 'fixed' | 'pool', name: string) =>
      new IdentityPool(mode, name, log, opts.dataDir ?? '', opts.claimsDir ?? DEFAULT_CLAIMS_DIR);
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) return make('none', '');
    if (setting === '') {
      log.warn({}, 'QEMU_USER is empty: QEMU runs as root');
      return make('none', '');
    }
    if (setting) return make('fixed', setting);
    const pool = make('pool', DEFAULT_USER_PREFIX);
    pool.sweep();
    return pool;
  }

  /**
   * Drops stale claims an earlier server of this data dir left (killed with its QEMUs, a power cut
   * without reboot): its process is gone and nothing runs as the user. Others' claims are left alone.
   */
  private sweep(): void {
    if (!this.me.dataDir) return;
    let names: string[];
    try {
      names = fs.readdirSync(this.claimsDir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!name.startsWith(this.name) || name.includes('.')) continue;
      const c = this.readClaim(name);
      const id = lookup((n) => n === name);
      if (c && id && c.dataDir === this.me.dataDir && !this.isMine(c) && !serverAlive(c) && !uidHasProcesses(id.uid)) {
        this.removeIfStill(name, c);
      }
    }
  }

  /**
   * Removes the claim file of `name` only if it still is `stale`: it is moved aside first (atomic),
   * and if what was moved is another claim (made in between) it is put back. True if removed.
   */
  private removeIfStill(name: string, stale: Claim | null): boolean {
    const file = path.join(this.claimsDir, name);
    const aside = `${file}.${process.pid}.${Date.now()}.stale`;
    try {
      fs.renameSync(file, aside);
    } catch {
      return false;
    }
    const moved = this.readClaimAt(aside);
    if (JSON.stringify(moved) !== JSON.stringify(stale)) {
      try {
        fs.linkSync(aside, file);
      } catch {
        /* someone claimed it again meanwhile: theirs stands */
      }
      fs.rmSync(aside, { force: true });
      return false;
    }
    fs.rmSync(aside, { force: true });
    return true;
  }

  get enabled(): boolean {
    return this.mode !== 'none';
  }

  /** An identity for a starting VM, reserved until release(). Null when QEMU keeps the server's user. */
  async acquire(): Promise<QemuIdentity | null> {
    if (this.mode === 'none') return null;
    if (this.mode === 'fixed') return lookup((n) => n === this.name) ?? (await this.create(this.name));
    this.prepareClaims();
    for (let n = 0; ; n++) {
      const name = `${this.name}${n}`;
      const found = lookup((x) => x === name);
      if (found && this.taken.has(found.uid)) continue;
      const id = found ?? (await this.create(name));
      if (this.taken.has(id.uid)) continue; // another start of ours took it while we created it
      // A user something still runs as (an orphaned QEMU, a process left behind) could reach the new
      // VM's files: never hand it out.
      if (uidHasProcesses(id.uid)) continue;
      if (!this.claimFile(id)) continue; // another server holds it
      this.taken.add(id.uid);
      return id;
    }
  }

  /** Whether `uid` is one of the users QEMUs run as (a pool user, or the fixed one). */
  isQemuUser(uid: number): boolean {
    if (this.mode === 'none') return false;
    const id = lookup((_n, u) => u === uid);
    return id !== null && (this.mode === 'pool' ? id.name.startsWith(this.name) : id.name === this.name);
  }

  /** Marks the user of a QEMU found running at server start as in use (ours again, host-wide). */
  claim(uid: number): QemuIdentity | null {
    if (this.mode === 'none') return null;
    const id = lookup((_n, u) => u === uid);
    if (id && this.mode === 'pool' && id.name.startsWith(this.name)) {
      this.prepareClaims();
      const holder = this.readClaim(id.name);
      if (holder && !this.isMine(holder) && holder.dataDir !== this.me.dataDir && serverAlive(holder)) {
        this.log.warn({ user: id.name, holder }, 'a running VM of ours uses a pool user another live server has claimed');
      }
      this.writeClaim(id.name, true);
      this.taken.add(uid);
    }
    return id;
  }

  release(identity: QemuIdentity | null): void {
    if (!identity || this.mode !== 'pool' || !this.taken.delete(identity.uid)) return;
    const file = path.join(this.claimsDir, identity.name);
    const holder = this.readClaim(identity.name);
    if (holder && this.isMine(holder)) fs.rmSync(file, { force: true });
  }

  private create(name: string): Promise<QemuIdentity> {
    return ensureSystemUser(name, this.log);
  }

  private prepareClaims(): void {
    fs.mkdirSync(this.claimsDir, { recursive: true, mode: 0o700 });
    const st = fs.lstatSync(this.claimsDir);
    if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) {
      throw new Error(`${this.claimsDir} must be a directory owned by root and writable by root only`);
    }
  }

  private isMine(c: Claim): boolean {
    return c.pid === this.me.pid && c.start === this.me.start;
  }

  private readClaim(name: string): Claim | null {
    try {
      const fd = fs.openSync(path.join(this.claimsDir, name), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        const c = JSON.parse(fs.readFileSync(fd, 'utf8')) as Partial<Claim>;
        return typeof c.pid === 'number' && typeof c.start === 'string' ? { pid: c.pid, start: c.start, dataDir: String(c.dataDir ?? '') } : null;
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return null;
    }
  }

  /** Writes our claim: O_EXCL (fails when present), or replacing whatever is there (`replace`). */
  private writeClaim(name: string, replace: boolean): boolean {
    const file = path.join(this.claimsDir, name);
    const body = JSON.stringify(this.me);
    if (replace) {
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, body, { mode: 0o600 });
      fs.renameSync(tmp, file);
      return true;
    }
    try {
      fs.writeFileSync(file, body, { mode: 0o600, flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  }

  /**
   * Claims a pool user host-wide. An existing claim is taken over only when it is stale; the stale
   * file is first moved aside (atomic), and if what was moved is not the stale claim we judged (a
   * server claimed it in between) it is put back and the user is left alone.
   */
  private claimFile(id: QemuIdentity): boolean {
    if (this.writeClaim(id.name, false)) return true;
    const file = path.join(this.claimsDir, id.name);
    const stale = this.readClaim(id.name);
    if (stale === null) {
      // Unreadable or half-written: a claim in the making, or garbage left by a crash.
      const st = statOrNull(file);
      if (!st || Date.now() - st.mtimeMs < 10_000 || uidHasProcesses(id.uid)) return false;
    } else if (this.isMine(stale) || serverAlive(stale) || uidHasProcesses(id.uid)) {
      return false;
    }
    if (!this.removeIfStill(id.name, stale)) return false;
    if (!this.writeClaim(id.name, false)) return false;
    this.log.info({ user: id.name, stale }, 'took over a stale claim on a QEMU user');
    return true;
  }

  private readClaimAt(file: string): Claim | null {
    return this.readClaim(path.relative(this.claimsDir, file));
  }
}

function statOrNull(file: string): fs.Stats | null {
  try {
    return fs.lstatSync(file);
  } catch {
    return null;
  }
}

function serverAlive(c: Claim): boolean {
  return isAlive(c.pid, c.start || null);
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
