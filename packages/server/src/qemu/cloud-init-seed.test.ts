import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../lib/errors.js';
import { SEED_FILE, removeSeed, writeSeed } from './cloud-init-seed.js';

const seed = { userData: '#cloud-config\nhostname: h\n', metaData: 'instance-id: i-1\n', networkConfig: null };
const dirs: string[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-seed-unit-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const haveXorriso = (() => {
  try {
    execFileSync('xorriso', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('writeSeed', () => {
  it.skipIf(!haveXorriso)('writes cidata.iso (0600) with the documents and returns a read-only descriptor; a rebuild replaces it', async () => {
    const dir = tempDir();
    const fd = await writeSeed({ xorriso: 'xorriso', stateDir: dir, seed });
    try {
      expect(fs.readlinkSync(`/proc/self/fd/${fd}`)).toBe(path.join(dir, SEED_FILE));
      expect(fs.fstatSync(fd).mode & 0o777).toBe(0o600);
      expect(() => fs.writeSync(fd, 'x')).toThrow();
    } finally {
      fs.closeSync(fd);
    }
    expect(fs.readdirSync(dir)).toEqual([SEED_FILE]);
    const ls = execFileSync('xorriso', ['-indev', path.join(dir, SEED_FILE), '-ls', '/'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(ls).toContain("'user-data'");
    expect(ls).not.toContain('network-config');
    fs.closeSync(await writeSeed({ xorriso: 'xorriso', stateDir: dir, seed: { ...seed, networkConfig: 'version: 2\n' } }));
    expect(fs.readdirSync(dir)).toEqual([SEED_FILE]);
    removeSeed(dir);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a failing or missing xorriso: QEMU_START_FAILED, and nothing is left (not even the old seed)', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, SEED_FILE), 'old');
    fs.mkdirSync(path.join(dir, '.cidata-left-by-a-crash'));
    const failing = path.join(tempDir(), 'xorriso');
    fs.writeFileSync(failing, '#!/bin/sh\necho "xorriso : FAILURE : no space" >&2\nexit 5\n', { mode: 0o755 });
    const err = await writeSeed({ xorriso: failing, stateDir: dir, seed }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('QEMU_START_FAILED');
    expect((err as AppError).message).toMatch(/cloud-init seed failed: xorriso : FAILURE : no space/);
    expect(fs.readdirSync(dir)).toEqual([]);
    const missing = await writeSeed({ xorriso: path.join(dir, 'no-such-xorriso'), stateDir: dir, seed }).catch((e: unknown) => e);
    expect((missing as AppError).code).toBe('QEMU_START_FAILED');
    expect((missing as AppError).message).toMatch(/needs xorriso/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
