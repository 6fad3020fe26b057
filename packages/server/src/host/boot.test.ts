import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { checkHostBoot } from './boot.js';

describe('checkHostBoot', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-boot-'));
  const idFile = path.join(dir, 'boot_id');
  const record = path.join(dir, 'host-boot-id');
  afterEach(() => fs.rmSync(record, { force: true }));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a first start (nothing recorded) is a host boot; a second start in the same boot is not; a new boot id is', () => {
    fs.writeFileSync(idFile, 'aaaaaaaa-1111-2222-3333-444444444444\n');
    expect(checkHostBoot(idFile, record)).toEqual({ hostBoot: true, bootId: 'aaaaaaaa-1111-2222-3333-444444444444' });
    expect(fs.readFileSync(record, 'utf8')).toBe('aaaaaaaa-1111-2222-3333-444444444444\n');
    expect(checkHostBoot(idFile, record).hostBoot).toBe(false);
    fs.writeFileSync(idFile, 'bbbbbbbb-1111-2222-3333-444444444444\n');
    expect(checkHostBoot(idFile, record).hostBoot).toBe(true);
    expect(checkHostBoot(idFile, record).hostBoot).toBe(false);
  });

  it('an unreadable or malformed boot id is never a host boot, and the record is left alone', () => {
    fs.writeFileSync(record, 'cccccccc-1111-2222-3333-444444444444\n');
    expect(checkHostBoot(path.join(dir, 'missing'), record)).toEqual({ hostBoot: false, bootId: null });
    fs.writeFileSync(idFile, 'not a boot id\n');
    expect(checkHostBoot(idFile, record)).toEqual({ hostBoot: false, bootId: null });
    expect(fs.readFileSync(record, 'utf8')).toBe('cccccccc-1111-2222-3333-444444444444\n');
  });

  it('reads the real host boot id', () => {
    expect(checkHostBoot('/proc/sys/kernel/random/boot_id', record).bootId).toMatch(/^[0-9a-f-]{36}$/);
  });
});
