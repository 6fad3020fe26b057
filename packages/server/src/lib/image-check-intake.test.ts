/**
 * The server's own header checks of the intake-only formats (vdi, vhdx) and of stream-optimized
 * vmdk, on images the real qemu-img wrote, then patched by hand where a rule is about a field
 * qemu-img never writes (a differencing vdi, a vhdx with a parent, VMware's footer layout).
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c as kitCrc32c, msGuid, vhdxLayout, vmdkWithFooter, VHDX_FILE_PARAMETERS, VHDX_PAGE83, VHDX_PARENT_LOCATOR } from '../../../../test/kit/images.mjs';
import { statusOf } from '../http/error-table.js';
import { isAppError } from './errors.js';
import { crc32c, imageLayers, vmdkStreamOptimized } from './image-check.js';
import { StorageRoots } from './storage.js';

let root: string;
let storage: StorageRoots;
const at = (f: string) => path.join(root, f);
const img = (...args: string[]) => execFileSync('qemu-img', args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
const write = (f: string, b: Buffer) => fs.writeFileSync(at(f), b);
const read = (f: string) => fs.readFileSync(at(f));

async function verdict(file: string, format: string, intake = true): Promise<string> {
  try {
    await imageLayers(storage, at(file), format, { intake });
  } catch (e) {
    if (!isAppError(e)) return `error ${(e as Error).message}`;
    return `${statusOf(e.code)} ${e.code} ${e.message}`;
  }
  return 'accepted';
}
/** A copy of `from` with `patch` applied, written as `to`. */
function patched(from: string, to: string, patch: (b: Buffer) => void): string {
  const b = Buffer.from(read(from));
  patch(b);
  write(to, b);
  return to;
}

beforeAll(() => {
  root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'qm-intake-')));
  storage = new StorageRoots([root]);
  img('create', '-q', '-f', 'raw', 'src.raw', '4M');
  const raw = read('src.raw');
  raw.write('marker in the middle', 1 << 20, 'latin1');
  crypto.randomBytes(200 * 1024).copy(raw, 3 << 20); // incompressible grains near the end
  write('src.raw', raw);
  img('convert', '-f', 'raw', '-O', 'vdi', 'src.raw', 'dyn.vdi');
  img('convert', '-f', 'raw', '-O', 'vdi', '-o', 'static=on', 'src.raw', 'fixed.vdi');
  img('convert', '-f', 'raw', '-O', 'vhdx', 'src.raw', 'dyn.vhdx');
  img('convert', '-f', 'raw', '-O', 'vhdx', '-o', 'subformat=fixed', 'src.raw', 'fixed.vhdx');
  img('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', 'src.raw', 'stream.vmdk');
  img('convert', '-f', 'raw', '-O', 'vmdk', 'src.raw', 'sparse.vmdk');
  write('footer.vmdk', vmdkWithFooter(read('stream.vmdk')));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('vdi', () => {
  it('accepts a dynamic and a fixed vdi as the source of a conversion, and never as a disk', async () => {
    expect(read('dyn.vdi').readUInt32LE(0x4c)).toBe(1);
    expect(read('fixed.vdi').readUInt32LE(0x4c)).toBe(2);
    expect(await verdict('dyn.vdi', 'vdi')).toBe('accepted');
    expect(await verdict('fixed.vdi', 'vdi')).toBe('accepted');
    // What a VM or a managed disk opens (no intake): refused, as before.
    expect(await verdict('dyn.vdi', 'vdi', false)).toMatch(/^400 IMAGE_NOT_ALLOWED .*only raw, qcow2 and vmdk/);
  });

  it('refuses a differencing vdi, one with a parent or link UUID, and other image types', async () => {
    const diff = patched('dyn.vdi', 'diff.vdi', (b) => b.writeUInt32LE(4, 0x4c));
    expect(await verdict(diff, 'vdi')).toMatch(/^400 IMAGE_NOT_ALLOWED .*differencing vdi \(it names a parent image\)/);
    const parent = patched('dyn.vdi', 'parent.vdi', (b) => b.fill(0xab, 0x1b8, 0x1c8));
    expect(await verdict(parent, 'vdi')).toMatch(/^400 IMAGE_NOT_ALLOWED .*vdi with a parent or link image/);
    const link = patched('dyn.vdi', 'link.vdi', (b) => b.fill(0xcd, 0x1a8, 0x1b8));
    expect(await verdict(link, 'vdi')).toMatch(/vdi with a parent or link image/);
    for (const type of [0, 3, 5]) {
      const f = patched('dyn.vdi', `type${type}.vdi`, (b) => b.writeUInt32LE(type, 0x4c));
      expect(await verdict(f, 'vdi'), String(type)).toMatch(new RegExp(`vdi of type ${type}; only dynamic or fixed`));
    }
  });

  it('refuses a bad signature, version, header size, sector or block size, unaligned offsets, a size beyond its map, a truncated header', async () => {
    const cases: Array<[string, (b: Buffer) => void, RegExp]> = [
      ['sig', (b) => b.writeUInt32LE(0xbeda1070, 0x40), /is not a vdi image/],
      ['ver', (b) => b.writeUInt32LE(0x00010000, 0x44), /unsupported vdi version \(1\.0\)/],
      ['hsize', (b) => b.writeUInt32LE(0x200, 0x48), /unsupported vdi header size/],
      ['sector', (b) => b.writeUInt32LE(4096, 0x168), /unsupported vdi sector size/],
      ['block', (b) => b.writeUInt32LE(2 << 20, 0x178), /unsupported vdi block size/],
      ['bmap', (b) => b.writeUInt32LE(0x201, 0x154), /unaligned vdi block map or data offset/],
      ['size', (b) => b.writeBigUInt64LE(5n << 20n, 0x170), /vdi size its block map does not cover/],
    ];
    for (const [name, patch, message] of cases) {
      expect(await verdict(patched('dyn.vdi', `${name}.vdi`, patch), 'vdi'), name).toMatch(message);
    }
    write('short.vdi', read('dyn.vdi').subarray(0, 300));
    expect(await verdict('short.vdi', 'vdi')).toMatch(/truncated vdi header/);
    // QEMU agrees the patched version is not a vdi it reads (the rules are its own, or stricter).
    expect(() => img('info', '-f', 'vdi', 'ver.vdi')).toThrow();
  });
});

describe('vhdx', () => {
  it('accepts a dynamic and a fixed vhdx (region table checksum verified) as the source of a conversion only', async () => {
    const b = read('dyn.vhdx');
    const { regionTable } = vhdxLayout(b);
    const table = b.subarray(regionTable, regionTable + 65536);
    expect(crc32c(table, 4)).toBe(table.readUInt32LE(4));
    expect(kitCrc32c(table, 4)).toBe(table.readUInt32LE(4));
    expect(await verdict('dyn.vhdx', 'vhdx')).toBe('accepted');
    expect(await verdict('fixed.vhdx', 'vhdx')).toBe('accepted');
    expect(await verdict('dyn.vhdx', 'vhdx', false)).toMatch(/^400 IMAGE_NOT_ALLOWED .*only raw, qcow2 and vmdk/);
  });

  it('refuses a vhdx whose file parameters say HasParent, and one with a parent locator item', async () => {
    const hasParent = patched('dyn.vhdx', 'hasparent.vhdx', (b) => {
      const p = vhdxLayout(b).item(VHDX_FILE_PARAMETERS).data;
      b.writeUInt32LE(b.readUInt32LE(p + 4) | 2, p + 4);
    });
    expect(await verdict(hasParent, 'vhdx')).toMatch(/^400 IMAGE_NOT_ALLOWED .*differencing vhdx \(it has a parent image\)/);
    // The leave-blocks-allocated bit (a fixed vhdx) is no parent.
    const fixedBit = patched('dyn.vhdx', 'fixedbit.vhdx', (b) => {
      const p = vhdxLayout(b).item(VHDX_FILE_PARAMETERS).data;
      b.writeUInt32LE(b.readUInt32LE(p + 4) | 1, p + 4);
    });
    expect(await verdict(fixedBit, 'vhdx')).toBe('accepted');
    const locator = patched('dyn.vhdx', 'locator.vhdx', (b) => {
      const e = vhdxLayout(b).item(VHDX_PAGE83).entry;
      msGuid(VHDX_PARENT_LOCATOR).copy(b, e);
    });
    expect(await verdict(locator, 'vhdx')).toMatch(/^400 IMAGE_NOT_ALLOWED .*vhdx with a parent locator/);
  });

  it('refuses a bad region table (checksum, signature, count, unknown required region), a bad metadata table, truncation', async () => {
    const resum = (b: Buffer, rt: number) => b.writeUInt32LE(kitCrc32c(b.subarray(rt, rt + 65536), 4), rt + 4);
    const cases: Array<[string, (b: Buffer) => void, RegExp]> = [
      ['sum', (b) => void (b[192 * 1024 + 1000] ^= 1), /region table with a bad checksum/],
      ['regi', (b) => b.write('rego', 192 * 1024, 'latin1'), /no vhdx region table/],
      [
        'count',
        (b) => {
          b.writeUInt32LE(2048, 192 * 1024 + 8);
          resum(b, 192 * 1024);
        },
        /too many vhdx regions/,
      ],
      [
        'required',
        (b) => {
          const rt = 192 * 1024;
          const n = b.readUInt32LE(rt + 8);
          const e = rt + 16 + n * 32;
          msGuid('11111111-2222-3333-4444-555555555555').copy(b, e);
          b.writeBigUInt64LE(64n << 20n, e + 16);
          b.writeUInt32LE(1 << 20, e + 24);
          b.writeUInt32LE(1, e + 28);
          b.writeUInt32LE(n + 1, rt + 8);
          resum(b, rt);
        },
        /required vhdx region this server does not know/,
      ],
      ['meta', (b) => b.write('metadato', vhdxLayout(b).metadata, 'latin1'), /no vhdx metadata table/],
      ['items', (b) => b.writeUInt16LE(2048, vhdxLayout(b).metadata + 10), /too many vhdx metadata items/],
      [
        'twice',
        (b) => {
          const l = vhdxLayout(b);
          msGuid(VHDX_FILE_PARAMETERS).copy(b, l.item(VHDX_PAGE83).entry);
        },
        /vhdx metadata item twice/,
      ],
      ['params', (b) => b.writeUInt32LE(0xfffffff0, vhdxLayout(b).item(VHDX_FILE_PARAMETERS).entry + 16), /file parameters outside its metadata region/],
      [
        'reqitem',
        (b) => {
          const e = vhdxLayout(b).item(VHDX_PAGE83).entry;
          msGuid('99999999-2222-3333-4444-555555555555').copy(b, e);
          b.writeUInt32LE(4, e + 24);
        },
        /required vhdx metadata item this server does not know/,
      ],
    ];
    for (const [name, patch, message] of cases) {
      expect(await verdict(patched('dyn.vhdx', `${name}.vhdx`, patch), 'vhdx'), name).toMatch(message);
    }
    write('short.vhdx', read('dyn.vhdx').subarray(0, 200 * 1024));
    expect(await verdict('short.vhdx', 'vhdx')).toMatch(/truncated vhdx region table/);
    write('noid.vhdx', Buffer.concat([Buffer.from('vhdxfilf'), read('dyn.vhdx').subarray(8)]));
    expect(await verdict('noid.vhdx', 'vhdx')).toMatch(/is not a vhdx image/);
    // QEMU too refuses a region table whose checksum is wrong.
    expect(() => img('info', '-f', 'vhdx', 'sum.vhdx')).toThrow();
  });
});

describe('stream-optimized vmdk', () => {
  const streamOptimized = async (f: string) => {
    const fd = fs.openSync(at(f), 'r');
    try {
      return await vmdkStreamOptimized(fd, at(f));
    } finally {
      fs.closeSync(fd);
    }
  };

  it('accepts the header-first layout qemu-img writes and the footer layout VMware writes (which qemu-img reads)', async () => {
    expect(read('stream.vmdk').readBigUInt64LE(56)).not.toBe(0xffffffffffffffffn); // qemu-img: header first
    expect(read('footer.vmdk').readBigUInt64LE(56)).toBe(0xffffffffffffffffn);
    // qemu-img itself reads the footer layout, and the same bytes come out.
    expect(() => img('compare', '-f', 'vmdk', '-F', 'raw', 'footer.vmdk', 'src.raw')).not.toThrow();
    expect(await verdict('stream.vmdk', 'vmdk', false)).toBe('accepted');
    expect(await verdict('footer.vmdk', 'vmdk', false)).toBe('accepted');
    expect(await streamOptimized('stream.vmdk')).toBe(true);
    expect(await streamOptimized('footer.vmdk')).toBe(true);
    expect(await streamOptimized('sparse.vmdk')).toBe(false);
  });

  it('refuses an invalid footer (each marker field QEMU checks, the magic), a footer header with no capacity or no grain directory, a misplaced footer', async () => {
    const end = read('footer.vmdk').length;
    const cases: Array<[string, (b: Buffer) => void, RegExp]> = [
      ['marker-size', (b) => b.writeUInt32LE(1, end - 1536 + 8), /invalid footer/],
      ['marker-type', (b) => b.writeUInt32LE(2, end - 1536 + 12), /invalid footer/],
      ['magic', (b) => b.write('KDMW', end - 1024, 'latin1'), /invalid footer/],
      ['eos-val', (b) => b.writeBigUInt64LE(1n, end - 512), /invalid footer/],
      ['eos-size', (b) => b.writeUInt32LE(1, end - 512 + 8), /invalid footer/],
      ['eos-type', (b) => b.writeUInt32LE(1, end - 512 + 12), /invalid footer/],
      ['capacity', (b) => b.writeBigUInt64LE(0n, end - 1024 + 12), /footer has a zero capacity/],
      ['gd', (b) => b.writeBigUInt64LE(0xffffffffffffffffn, end - 1024 + 56), /footer does not say where its grain directory is/],
    ];
    for (const [name, patch, message] of cases) {
      expect(await verdict(patched('footer.vmdk', `${name}.vmdk`, patch), 'vmdk', false), name).toMatch(message);
    }
    // QEMU refuses the same footers.
    expect(() => img('info', '-f', 'vmdk', 'marker-type.vmdk')).toThrow();
    write('odd.vmdk', Buffer.concat([read('footer.vmdk'), Buffer.alloc(100)]));
    expect(await verdict('odd.vmdk', 'vmdk', false)).toMatch(/truncated or misplaced footer/);
    write('tiny.vmdk', read('footer.vmdk').subarray(0, 1536));
    expect(await verdict('tiny.vmdk', 'vmdk', false)).toMatch(/truncated or misplaced footer/);
    // Still refused in the first header: a zero capacity (QEMU would read extents from the descriptor).
    const zero = patched('footer.vmdk', 'zero.vmdk', (b) => b.writeBigUInt64LE(0n, 12));
    expect(await verdict(zero, 'vmdk', false)).toMatch(/embedded descriptor lists extents/);
    const parent = patched('footer.vmdk', 'parent.vmdk', (b) => b.write('parentFileNameHint="/etc/x.vmdk"\n', 0x200 + 200, 'latin1'));
    expect(await verdict(parent, 'vmdk', false)).toMatch(/vmdk with a parent image/);
  });
});
