import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDb, prepareDataDir } from './sqlite.js';

const mode = (f: string) => fs.statSync(f).mode & 0o777;

describe('database file modes', () => {
  let dir: string;
  const oldUmask = process.umask();
  afterEach(() => {
    process.umask(oldUmask);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a new database, -wal and -shm are owner-only even under a permissive umask', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-db-'));
    process.umask(0o022);
    const file = path.join(dir, 'db.sqlite');
    const db = openDb(file);
    db.prepare("INSERT INTO settings (key, value) VALUES ('k', 'v')").run();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) expect([f, mode(f).toString(8)]).toEqual([f, '600']);
    db.close();
  });

  it('existing world-readable files are made owner-only when opened', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-db-'));
    process.umask(0o022);
    const file = path.join(dir, 'db.sqlite');
    openDb(file).close();
    for (const f of [file, `${file}-wal`]) {
      fs.closeSync(fs.openSync(f, 'a'));
      fs.chmodSync(f, 0o644);
    }
    const db = openDb(file);
    for (const f of [file, `${file}-wal`, `${file}-shm`]) expect([f, mode(f).toString(8)]).toEqual([f, '600']);
    db.close();
  });

  it('the data dir can be passed through but not listed by others', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-db-'));
    fs.chmodSync(dir, 0o755);
    prepareDataDir(dir);
    expect(mode(dir).toString(8)).toBe('711');
    prepareDataDir(path.join(dir, 'new', 'nested'));
    expect(mode(path.join(dir, 'new', 'nested')).toString(8)).toBe('711');
  });
});
