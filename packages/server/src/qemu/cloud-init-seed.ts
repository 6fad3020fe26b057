import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import type { LaunchSeed } from '../runtime/port.js';

/**
 * Cloud-init (issue 12): the NoCloud seed of a VM, an ISO 9660 volume labelled `cidata` holding
 * `user-data`, `meta-data` and (when set) `network-config`, written fresh at each start as
 * `<state dir>/cidata.iso` (0600, the server's; QEMU reads it through an inherited descriptor).
 *
 * xorriso runs as the server (root), with a fixed argv and a timeout: it reads only the three
 * files the server has just written into a fresh 0700 directory and writes one new file, so it
 * never touches anything a user named. The image goes to a temporary name, renamed when complete;
 * a failure leaves nothing behind.
 */

export const SEED_FILE = 'cidata.iso';
const TEMP_PREFIX = '.cidata-';
const XORRISO_TIMEOUT_MS = 30_000;

/** Removes a seed and any left-over temporary of one (a crash mid-build). */
export function removeSeed(stateDir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(stateDir);
  } catch {
    return;
  }
  for (const name of names) {
    if (name === SEED_FILE || name.startsWith(TEMP_PREFIX)) fs.rmSync(path.join(stateDir, name), { recursive: true, force: true });
  }
}

/**
 * Writes the seed into `stateDir` (a directory of the server) and returns a read-only descriptor
 * of it; the caller closes it. QEMU_START_FAILED when xorriso fails or is missing.
 */
export async function writeSeed(opts: { xorriso: string; stateDir: string; seed: LaunchSeed }): Promise<number> {
  const { stateDir, seed } = opts;
  removeSeed(stateDir);
  const tag = crypto.randomBytes(6).toString('hex');
  const work = fs.mkdtempSync(path.join(stateDir, `${TEMP_PREFIX}${tag}-`));
  const temp = path.join(stateDir, `${TEMP_PREFIX}${tag}.iso`);
  try {
    const files: Array<[string, string]> = [
      ['user-data', seed.userData],
      ['meta-data', seed.metaData],
      ...(seed.networkConfig !== null ? [['network-config', seed.networkConfig] as [string, string]] : []),
    ];
    for (const [name, text] of files) fs.writeFileSync(path.join(work, name), text, { mode: 0o600, flag: 'wx' });
    let result: Awaited<ReturnType<typeof run>>;
    try {
      result = await run(
        opts.xorriso,
        ['-as', 'mkisofs', '-quiet', '-V', 'cidata', '-J', '-r', '-o', temp, ...files.map(([name]) => path.join(work, name))],
        { timeoutMs: XORRISO_TIMEOUT_MS, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } },
      );
    } catch (err) {
      throw new AppError('QEMU_START_FAILED', `Cannot start: the cloud-init seed needs xorriso (${err instanceof Error ? err.message : String(err)})`);
    }
    if (result.code !== 0) {
      const why = result.signal ? `killed by ${result.signal}` : result.stderr.trim().split('\n').slice(-2).join('; ') || `exit ${result.code}`;
      throw new AppError('QEMU_START_FAILED', `Cannot start: writing the cloud-init seed failed: ${why}`);
    }
    fs.chmodSync(temp, 0o600);
    const fd = fs.openSync(temp, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      fs.fsyncSync(fd);
      fs.renameSync(temp, path.join(stateDir, SEED_FILE));
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    return fd;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(temp, { force: true });
  }
}
