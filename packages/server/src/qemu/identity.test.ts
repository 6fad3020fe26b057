/**
 * QEMU_USER (regression): unset = a pool of users, one per running VM (when root); a name = that
 * one user for every VM; empty = QEMU runs as the server's own user (no pool, nothing dropped).
 * No system user is created here: the named user is one that exists (nobody), and a name useradd
 * refuses shows the refusal.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import type { Logger } from '../lib/log.js';
import { IdentityPool } from './identity.js';

const root = process.getuid?.() === 0;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-identity-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function recorder(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const put = (level: string) => (_o: object, m?: string) => void lines.push(`${level} ${m ?? ''}`);
  return { log: { info: put('info'), warn: put('warn'), error: put('error') }, lines };
}

/** The passwd entry of `name`, read as the pool reads it. */
function passwd(name: string): { uid: number; gid: number } | null {
  for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return null;
}

const pool = (setting: string | undefined, log: Logger) => IdentityPool.fromSetting(setting, log, { dataDir: dir, claimsDir: path.join(dir, 'claims') });

describe('QEMU_USER', () => {
  it('is read as given: unset, a name, or empty (which is not the same as unset)', () => {
    expect(loadConfig({}).qemuUser).toBeUndefined();
    expect(loadConfig({ QEMU_USER: 'nobody' }).qemuUser).toBe('nobody');
    expect(loadConfig({ QEMU_USER: '' }).qemuUser).toBe('');
  });

  it.runIf(root)('a name: every VM runs as that one existing user (not one per VM), and only it counts as a QEMU user', async () => {
    const nobody = passwd('nobody');
    expect(nobody).not.toBeNull();
    const { log, lines } = recorder();
    const p = pool('nobody', log);
    expect(p.enabled).toBe(true);
    const a = await p.acquire();
    const b = await p.acquire();
    expect(a).toEqual({ name: 'nobody', uid: nobody!.uid, gid: nobody!.gid });
    expect(b).toEqual(a);
    expect(p.isQemuUser(nobody!.uid)).toBe(true);
    expect(p.isQemuUser(0)).toBe(false);
    p.release(a);
    p.release(b);
    // A fixed user is not claimed host-wide: no claim file was made.
    expect(fs.existsSync(path.join(dir, 'claims'))).toBe(false);
    expect(lines.filter((l) => l.startsWith('warn'))).toEqual([]);
  });

  it.runIf(root)('a name that cannot be a user is refused when a VM needs it (useradd says no, no user appears)', async () => {
    const { log } = recorder();
    const bad = 'no such user!';
    const p = pool(bad, log);
    await expect(p.acquire()).rejects.toThrow(/^cannot create the system user no such user!: /);
    expect(passwd(bad)).toBeNull();
  });

  it('empty: QEMU runs as the server\'s own user: the pool is off, nothing is acquired or claimed, and root is warned about', async () => {
    const { log, lines } = recorder();
    const p = pool('', log);
    expect(p.enabled).toBe(false);
    expect(await p.acquire()).toBeNull();
    expect(p.claim(process.getuid?.() ?? 0)).toBeNull();
    expect(p.isQemuUser(process.getuid?.() ?? 0)).toBe(false);
    expect(fs.existsSync(path.join(dir, 'claims'))).toBe(false);
    expect(lines).toEqual(root ? ['warn QEMU_USER is empty: QEMU runs as root'] : []);
  });

  it.runIf(root)('unset (as root): the pool of per-VM users is on', () => {
    const { log } = recorder();
    const p = pool(undefined, log);
    expect(p.enabled).toBe(true);
    expect(p.isQemuUser(0)).toBe(false);
  });
});
