import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusOf } from '../http/error-table.js';
import { isAppError } from './errors.js';
import { StorageRoots } from './storage.js';

let dir: string;
let roots: StorageRoots;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-unit-'));
  fs.mkdirSync(path.join(dir, 'disks'));
  fs.mkdirSync(path.join(dir, 'outside'));
  fs.writeFileSync(path.join(dir, 'disks', 'ok.qcow2'), 'x');
  fs.writeFileSync(path.join(dir, 'outside', 'secret'), 'x');
  fs.symlinkSync(path.join(dir, 'outside', 'secret'), path.join(dir, 'disks', 'link.qcow2'));
  fs.mkdirSync(path.join(dir, 'disks', 'sub'));
  fs.mkdirSync(path.join(dir, 'disks-evil'));
  fs.writeFileSync(path.join(dir, 'disks-evil', 'x.qcow2'), 'x');
  roots = new StorageRoots([path.join(dir, 'disks')]);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return isAppError(e) ? `${e.code}:${statusOf(e.code)}` : String(e);
  }
  return 'ok';
};

describe('StorageRoots.resolveFile', () => {
  it('accepts a regular file under a root and returns its real path', () => {
    expect(roots.resolveFile(path.join(dir, 'disks', 'ok.qcow2'), 'disk')).toBe(fs.realpathSync(path.join(dir, 'disks', 'ok.qcow2')));
  });
  it('refuses relative paths, traversal, symlinks out, sibling prefixes, directories and missing files', () => {
    expect(codeOf(() => roots.resolveFile('disks/ok.qcow2', 'disk'))).toBe('BAD_REQUEST:400');
    expect(codeOf(() => roots.resolveFile(path.join(dir, 'disks', '..', 'outside', 'secret'), 'disk'))).toBe('PATH_NOT_ALLOWED:400');
    expect(codeOf(() => roots.resolveFile(path.join(dir, 'disks', 'link.qcow2'), 'disk'))).toBe('PATH_NOT_ALLOWED:400');
    expect(codeOf(() => roots.resolveFile(path.join(dir, 'disks-evil', 'x.qcow2'), 'disk'))).toBe('PATH_NOT_ALLOWED:400');
    expect(codeOf(() => roots.resolveFile(path.join(dir, 'disks', 'sub'), 'disk'))).toBe('NOT_A_REGULAR_FILE:400');
    expect(codeOf(() => roots.resolveFile(path.join(dir, 'disks', 'nope.qcow2'), 'disk'))).toBe('FILE_NOT_FOUND:404');
    expect(codeOf(() => roots.resolveFile('/etc/passwd', 'disk'))).toBe('PATH_NOT_ALLOWED:400');
    expect(codeOf(() => roots.resolveFile('/etc/passwd\0.qcow2', 'disk'))).toBe('BAD_REQUEST:400');
  });
});

describe('StorageRoots.openFile', () => {
  it('opens the checked file and returns its descriptor', () => {
    const f = roots.openFile(path.join(dir, 'disks', 'ok.qcow2'), 'disk', fs.constants.O_RDONLY);
    try {
      expect(fs.readFileSync(f.fd, 'utf8')).toBe('x');
      expect(f.real).toBe(fs.realpathSync(path.join(dir, 'disks', 'ok.qcow2')));
    } finally {
      fs.closeSync(f.fd);
    }
  });
  it('refuses symlinks, directories and missing files like resolveFile', () => {
    expect(codeOf(() => roots.openFile(path.join(dir, 'disks', 'link.qcow2'), 'disk', fs.constants.O_RDONLY))).toBe('PATH_NOT_ALLOWED:400');
    expect(codeOf(() => roots.openFile(path.join(dir, 'disks', 'sub'), 'disk', fs.constants.O_RDONLY))).toBe('NOT_A_REGULAR_FILE:400');
    expect(codeOf(() => roots.openFile(path.join(dir, 'disks', 'nope'), 'disk', fs.constants.O_RDONLY))).toBe('FILE_NOT_FOUND:404');
  });
  it('never opens a file reached through a directory swapped for a symlink after the check', () => {
    // The swap happens between resolveFile's check and the component-wise open: simulate it by
    // checking a real directory, then replacing it before openFile walks it.
    const sub = path.join(dir, 'disks', 'swap');
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, 'secret'), 'inside');
    const orig = roots.resolveFile.bind(roots);
    const spy = (input: string, what: 'disk' | 'ISO') => {
      const real = orig(input, what);
      fs.renameSync(sub, sub + '.old');
      fs.symlinkSync(path.join(dir, 'outside'), sub);
      return real;
    };
    (roots as unknown as { resolveFile: typeof spy }).resolveFile = spy;
    try {
      expect(codeOf(() => roots.openFile(path.join(sub, 'secret'), 'disk', fs.constants.O_RDONLY))).toBe('PATH_NOT_ALLOWED:400');
    } finally {
      (roots as unknown as { resolveFile: typeof orig }).resolveFile = orig;
      fs.rmSync(sub);
      fs.renameSync(sub + '.old', sub);
    }
  });
});

describe('StorageRoots.writableByOthers', () => {
  it('names the roots that group or others may write, or that another user owns', () => {
    const a = path.join(dir, 'root-a');
    const b = path.join(dir, 'root-b');
    fs.mkdirSync(a, { mode: 0o755 });
    fs.mkdirSync(b);
    fs.chmodSync(a, 0o755);
    fs.chmodSync(b, 0o777);
    const r = new StorageRoots([a, b]);
    const me = process.getuid!();
    expect(r.writableByOthers(me)).toEqual([fs.realpathSync(b)]);
    expect(r.writableByOthers(me + 1)).toEqual([fs.realpathSync(a), fs.realpathSync(b)]);
  });
});
