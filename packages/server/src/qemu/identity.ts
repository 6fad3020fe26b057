import fs from 'node:fs';
import { run } from '../lib/exec.js';
import type { Logger } from './supervisor.js';

/** The unprivileged user QEMU runs as when the server runs as root. */
export interface QemuIdentity {
  name: string;
  uid: number;
  gid: number;
}

function lookup(name: string): QemuIdentity | null {
  for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] && f[3]) return { name, uid: Number(f[2]), gid: Number(f[3]) };
  }
  return null;
}

function groupExists(name: string): boolean {
  return fs.readFileSync('/etc/group', 'utf8').split('\n').some((l) => l.split(':')[0] === name);
}

/**
 * Resolves (and as root, creates) the QEMU user. `setting` is QEMU_USER: undefined means the
 * default `qemu-manager`; an empty string means QEMU runs as the server's own user.
 * Not root: QEMU runs as the server's user, and there is nothing to drop.
 */
export async function resolveQemuIdentity(setting: string | undefined, log: Logger): Promise<QemuIdentity | null> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  if (setting === '') {
    log.warn({}, 'QEMU_USER is empty: QEMU runs as root');
    return null;
  }
  const name = setting ?? 'qemu-manager';
  const found = lookup(name);
  if (found) return found;
  // A system user with no home and no shell; its primary group is kvm where it exists, so QEMU can open /dev/kvm.
  const args = ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin'];
  if (groupExists('kvm')) args.push('--gid', 'kvm');
  else args.push('--user-group');
  const r = await run('useradd', [...args, name], { timeoutMs: 20_000 }).catch((err: Error) => ({ code: -1, stderr: err.message }));
  const created = lookup(name);
  if (!created) throw new Error(`cannot create the QEMU user ${name}: ${r.stderr.trim() || `useradd exited ${r.code}`}`);
  log.info({ user: name, uid: created.uid }, 'created the unprivileged QEMU user');
  return created;
}

/** Lets the QEMU user traverse (not list) the data dir so it can reach its images. */
export function allowTraverse(identity: QemuIdentity | null, dir: string): void {
  if (!identity) return;
  const mode = fs.statSync(dir).mode & 0o7777;
  if ((mode & 0o001) === 0) fs.chmodSync(dir, mode | 0o001);
}
