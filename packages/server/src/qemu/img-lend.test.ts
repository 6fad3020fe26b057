import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StorageRoots } from '../lib/storage.js';
import { ImageLender, LENT_MODE, readRecord } from './img-lend.js';
import { virtualSize } from './image-size.js';

const asRoot = process.getuid?.() === 0;
const GID = 4242; // any group: root may give a file to it

let dir: string;
let disks: string;
let run: string;
let record: string;
let storage: StorageRoots;
const mode = (f: string) => fs.statSync(f).mode & 0o7777;
const who = (f: string) => ({ uid: fs.statSync(f).uid, gid: fs.statSync(f).gid, mode: mode(f) });

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-lend-'));
  disks = path.join(dir, 'disks');
  run = path.join(dir, 'run');
  fs.mkdirSync(disks);
  fs.mkdirSync(run, { mode: 0o700 });
  record = path.join(run, 'img-lent.json');
  storage = new StorageRoots([disks]);
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function image(name: string, m = 0o600): { file: string; fd: number } {
  const file = path.join(disks, name);
  fs.writeFileSync(file, 'data', { mode: m });
  fs.chmodSync(file, m);
  return { file, fd: fs.openSync(file, 'r') };
}

describe.runIf(asRoot)('ImageLender', () => {
  it('records the previous owner before the change, lends group read 0640, and gives back exactly', () => {
    const { file, fd } = image('a.img', 0o604);
    const before = who(file);
    const lender = new ImageLender(record, storage);
    const give = lender.lend(fd, file, GID)!;
    expect(give).toBeTypeOf('function');
    expect(who(file)).toEqual({ uid: before.uid, gid: GID, mode: LENT_MODE });
    expect(readRecord(record)).toEqual([{ path: file, dev: fs.statSync(file).dev, ino: fs.statSync(file).ino, ...before }]);
    give();
    give(); // twice: nothing more
    expect(who(file)).toEqual(before);
    expect(fs.existsSync(record)).toBe(false);
    fs.closeSync(fd);
  });

  it('two copies of one file share one lend, given back when the last ends', () => {
    const { file, fd } = image('b.img');
    const fd2 = fs.openSync(file, 'r');
    const lender = new ImageLender(record, storage);
    const g1 = lender.lend(fd, file, GID)!;
    const g2 = lender.lend(fd2, file, GID)!;
    expect(readRecord(record)).toHaveLength(1);
    expect(readRecord(record)[0]).toMatchObject({ gid: 0, mode: 0o600 }); // not the lent state
    g1();
    expect(who(file)).toMatchObject({ gid: GID, mode: LENT_MODE });
    g2();
    expect(who(file)).toEqual({ uid: 0, gid: 0, mode: 0o600 });
    fs.closeSync(fd);
    fs.closeSync(fd2);
  });

  it('does not lend a file the server does not own (kept for the NBD path)', () => {
    const { file, fd } = image('c.img');
    fs.chownSync(file, 4243, 4243);
    expect(new ImageLender(record, storage).lend(fd, file, GID)).toBeNull();
    expect(who(file)).toEqual({ uid: 4243, gid: 4243, mode: 0o600 });
    expect(fs.existsSync(record)).toBe(false);
    fs.closeSync(fd);
  });

  it('after a crash, the next start gives back what the record lists, only to the same file', () => {
    const a = image('a.img');
    const b = image('b.img');
    const c = image('c.img');
    const crashed = new ImageLender(record, storage);
    crashed.lend(a.fd, a.file, GID);
    crashed.lend(b.fd, b.file, GID);
    crashed.lend(c.fd, c.file, GID);
    for (const x of [a, b, c]) fs.closeSync(x.fd);
    // b is replaced by another file of the same name (a new inode): it must not be touched; c is gone.
    fs.renameSync(b.file, `${b.file}.old`); // kept, so the new file cannot reuse its inode
    fs.writeFileSync(b.file, 'other', { mode: 0o644 });
    fs.chownSync(b.file, 0, GID);
    fs.chmodSync(b.file, 0o640);
    fs.rmSync(c.file);
    const { restored, skipped } = new ImageLender(record, storage).recover();
    expect(restored).toEqual([a.file]);
    expect(skipped.sort()).toEqual([b.file, c.file].sort());
    expect(who(a.file)).toEqual({ uid: 0, gid: 0, mode: 0o600 });
    expect(who(b.file)).toEqual({ uid: 0, gid: GID, mode: 0o640 });
    expect(fs.existsSync(record)).toBe(false);
  });

  it('a record file the server cannot trust is ignored (a directory others may write, a symlink)', () => {
    const { file, fd } = image('a.img');
    new ImageLender(record, storage).lend(fd, file, GID);
    fs.closeSync(fd);
    fs.chmodSync(run, 0o777);
    expect(readRecord(record)).toEqual([]);
    fs.chmodSync(run, 0o700);
    const link = path.join(run, 'link.json');
    fs.symlinkSync(record, link);
    expect(readRecord(link)).toEqual([]);
    expect(readRecord(record)).toHaveLength(1);
    fs.writeFileSync(path.join(run, 'bad.json'), JSON.stringify([{ path: 'relative', dev: 1, ino: 2, uid: 0, gid: 0, mode: 0o600 }, { path: '/x', dev: 1, ino: 2, uid: 0, gid: 0, mode: 0o70000 }]));
    expect(readRecord(path.join(run, 'bad.json'))).toEqual([]);
  });
});

describe('virtualSize', () => {
  it('reads the qcow2 size at offset 24, the vmdk capacity in sectors, and a raw file size', () => {
    const q = Buffer.alloc(64);
    q.writeUInt32BE(0x514649fb, 0);
    q.writeBigUInt64BE(3n << 30n, 24);
    const v = Buffer.alloc(64);
    v.writeUInt32BE(0x4b444d56, 0);
    v.writeBigUInt64LE(2048n, 12);
    const files = { q: path.join(dir, 'q'), v: path.join(dir, 'v'), r: path.join(dir, 'r') };
    fs.writeFileSync(files.q, q);
    fs.writeFileSync(files.v, v);
    fs.writeFileSync(files.r, Buffer.alloc(12345));
    const at = (f: string, fmt: 'qcow2' | 'vmdk' | 'raw') => {
      const fd = fs.openSync(f, 'r');
      try {
        return virtualSize(fd, fmt);
      } finally {
        fs.closeSync(fd);
      }
    };
    expect(at(files.q, 'qcow2')).toBe(3 * 1024 ** 3);
    expect(at(files.v, 'vmdk')).toBe(2048 * 512);
    expect(at(files.r, 'raw')).toBe(12345);
    expect(at(files.r, 'qcow2')).toBeNull(); // no qcow2 magic
  });
});
