import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    return (e as { code: string; statusCode: number }).code + ':' + (e as { statusCode: number }).statusCode;
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
