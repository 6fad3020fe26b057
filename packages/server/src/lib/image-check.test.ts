import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusOf } from '../http/error-table.js';
import { isAppError } from './errors.js';
import { StorageRoots } from './storage.js';
import { detectFormat, imageLayers, openImageLayers } from './image-check.js';

// Images made by the real qemu-img, checked by the server's own header reader.
let dir: string;
let root: string;
let outside: string;
let storage: StorageRoots;

const img = (...args: string[]) => execFileSync('qemu-img', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const at = (...p: string[]) => path.join(root, ...p);

beforeAll(() => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'qm-imgcheck-')));
  root = path.join(dir, 'root');
  outside = path.join(dir, 'outside');
  fs.mkdirSync(path.join(root, 'sub'), { recursive: true });
  fs.mkdirSync(outside);
  storage = new StorageRoots([root]);

  img('create', '-q', '-f', 'raw', at('base.raw'), '1M');
  img('create', '-q', '-f', 'raw', path.join(outside, 'secret.raw'), '1M');
  img('create', '-q', '-f', 'qcow2', at('plain.qcow2'), '1M');
  img('create', '-q', '-f', 'qcow2', '-b', at('base.raw'), '-F', 'raw', at('abs.qcow2'));
  img('create', '-q', '-f', 'qcow2', '-u', '-b', '../base.raw', '-F', 'raw', at('sub', 'rel.qcow2'), '1M');
  img('create', '-q', '-f', 'qcow2', '-b', at('sub', 'rel.qcow2'), '-F', 'qcow2', at('top.qcow2'));
  img('create', '-q', '-f', 'qcow2', '-b', path.join(outside, 'secret.raw'), '-F', 'raw', at('out-abs.qcow2'));
  img('create', '-q', '-f', 'qcow2', '-u', '-b', '../outside/secret.raw', '-F', 'raw', at('out-rel.qcow2'), '1M');
  img('create', '-q', '-f', 'qcow2', '-u', '-b', '/etc/shadow', '-F', 'raw', at('shadow.qcow2'), '1M');
  const json = 'json:{"driver":"raw","file":{"driver":"file","filename":"/etc/shadow"}}';
  img('create', '-q', '-f', 'qcow2', '-u', '-b', json, '-F', 'raw', at('json.qcow2'), '1M');
  img('create', '-q', '-f', 'qcow2', '-u', '-b', 'nbd://127.0.0.1:9/x', '-F', 'raw', at('nbd.qcow2'), '1M');
  img('create', '-q', '-f', 'qcow2', '-u', '-b', 'nbd+unix:///x?socket=/run/x.sock', '-F', 'raw', at('nbdunix.qcow2'), '1M');
  img('create', '-q', '-f', 'qcow2', '-u', '-b', 'file:/etc/shadow', '-F', 'raw', at('fileproto.qcow2'), '1M');
  img('create', '-q', '-f', 'qcow2', '-u', '-b', 'https://127.0.0.1:9/x.raw', '-F', 'raw', at('https.qcow2'), '1M');
  img('create', '-q', '-f', 'qcow2', '-u', '-b', at('base.raw'), '-F', 'host_device', at('hostdev.qcow2'), '1M');
  // A backing file with no recorded format: qemu-img no longer writes one, so make a good image and
  // turn its backing-format header extension into an unknown (ignored) one.
  img('create', '-q', '-f', 'qcow2', '-b', at('base.raw'), '-F', 'raw', at('nofmt.qcow2'));
  const buf = fs.readFileSync(at('nofmt.qcow2'));
  const ext = buf.indexOf(Buffer.from([0xe2, 0x79, 0x2a, 0xca]));
  expect(ext).toBeGreaterThan(0);
  buf.writeUInt32BE(0x0badf00d, ext);
  fs.writeFileSync(at('nofmt.qcow2'), buf);
  img('create', '-q', '-f', 'qcow2', '-o', `data_file=${at('data.raw')}`, at('datafile-in.qcow2'), '1M');
  img('create', '-q', '-f', 'qcow2', '-o', `data_file=${path.join(outside, 'data.raw')}`, at('datafile-out.qcow2'), '1M');
  // Symlinked backings: one that leads out of the root, one that stays in it.
  fs.symlinkSync(path.join(outside, 'secret.raw'), at('link-out.raw'));
  fs.symlinkSync(at('base.raw'), at('link-in.raw'));
  img('create', '-q', '-f', 'qcow2', '-u', '-b', 'link-out.raw', '-F', 'raw', at('symlink-out.qcow2'), '1M');
  img('create', '-q', '-f', 'qcow2', '-u', '-b', 'link-in.raw', '-F', 'raw', at('symlink-in.qcow2'), '1M');
  // A loop: a.qcow2 -> b.qcow2 -> a.qcow2.
  img('create', '-q', '-f', 'qcow2', at('a.qcow2'), '1M');
  img('create', '-q', '-f', 'qcow2', '-b', at('a.qcow2'), '-F', 'qcow2', at('b.qcow2'));
  img('rebase', '-q', '-u', '-f', 'qcow2', '-b', at('b.qcow2'), '-F', 'qcow2', at('a.qcow2'));
  // vmdk
  img('create', '-q', '-f', 'vmdk', at('sparse.vmdk'), '1M');
  img('create', '-q', '-f', 'vmdk', '-o', 'subformat=streamOptimized', at('stream.vmdk'), '1M');
  img('create', '-q', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', at('flat.vmdk'), '1M');
  img('create', '-q', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentFlat', at('twogb.vmdk'), '1M');
  img('create', '-q', '-f', 'vmdk', '-b', at('sparse.vmdk'), '-F', 'vmdk', at('child.vmdk'), '1M');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function refusal(file: string, format: string, opts: Parameters<typeof imageLayers>[3] = {}): Promise<string> {
  try {
    await imageLayers(storage, file, format, opts);
  } catch (e) {
    if (!isAppError(e)) return `error ${(e as Error).message}`;
    return `${statusOf(e.code)} ${e.code} ${e.message}`;
  }
  return 'accepted';
}

describe('imageLayers', () => {
  it('accepts raw, a plain qcow2 and a self-contained vmdk as one layer', async () => {
    expect(await imageLayers(storage, at('base.raw'), 'raw')).toEqual([{ path: at('base.raw'), format: 'raw' }]);
    expect(await imageLayers(storage, at('plain.qcow2'), 'qcow2')).toEqual([{ path: at('plain.qcow2'), format: 'qcow2' }]);
    expect(await imageLayers(storage, at('sparse.vmdk'), 'vmdk')).toEqual([{ path: at('sparse.vmdk'), format: 'vmdk' }]);
    expect(await imageLayers(storage, at('stream.vmdk'), 'vmdk')).toEqual([{ path: at('stream.vmdk'), format: 'vmdk' }]);
  });

  it('follows absolute and relative backing files under the roots, top layer first', async () => {
    expect(await imageLayers(storage, at('abs.qcow2'), 'qcow2')).toEqual([
      { path: at('abs.qcow2'), format: 'qcow2' },
      { path: at('base.raw'), format: 'raw' },
    ]);
    expect(await imageLayers(storage, at('top.qcow2'), 'qcow2')).toEqual([
      { path: at('top.qcow2'), format: 'qcow2' },
      { path: at('sub', 'rel.qcow2'), format: 'qcow2' },
      { path: at('base.raw'), format: 'raw' },
    ]);
  });

  it('refuses backing files outside the roots, absolute, relative or through a symlink', async () => {
    expect(await refusal(at('out-abs.qcow2'), 'qcow2')).toMatch(/^400 PATH_NOT_ALLOWED/);
    expect(await refusal(at('out-rel.qcow2'), 'qcow2')).toMatch(/^400 PATH_NOT_ALLOWED/);
    expect(await refusal(at('shadow.qcow2'), 'qcow2')).toMatch(/^400 PATH_NOT_ALLOWED/);
    expect(await refusal(at('symlink-out.qcow2'), 'qcow2')).toMatch(/^400 PATH_NOT_ALLOWED/);
  });

  it('gives a symlinked backing that stays under the roots as its real path', async () => {
    expect(await imageLayers(storage, at('symlink-in.qcow2'), 'qcow2')).toEqual([
      { path: at('symlink-in.qcow2'), format: 'qcow2' },
      { path: at('base.raw'), format: 'raw' },
    ]);
  });

  it('refuses json: and protocol backing files without touching them', async () => {
    for (const f of ['json.qcow2', 'nbd.qcow2', 'nbdunix.qcow2', 'fileproto.qcow2', 'https.qcow2']) {
      const r = await refusal(at(f), 'qcow2');
      expect(r, f).toMatch(/^400 IMAGE_NOT_ALLOWED .*(json:|protocol)/);
    }
  });

  it('refuses a backing file whose format is not recorded, or is not raw/qcow2/vmdk', async () => {
    expect(await refusal(at('nofmt.qcow2'), 'qcow2')).toMatch(/^400 IMAGE_NOT_ALLOWED .*no recorded format.*-F/);
    expect(await refusal(at('hostdev.qcow2'), 'qcow2')).toMatch(/^400 IMAGE_NOT_ALLOWED .*host_device/);
  });

  it('refuses a qcow2 with an external data file, inside or outside the roots', async () => {
    expect(await refusal(at('datafile-in.qcow2'), 'qcow2')).toMatch(/^400 IMAGE_NOT_ALLOWED .*external data file/);
    expect(await refusal(at('datafile-out.qcow2'), 'qcow2')).toMatch(/^400 IMAGE_NOT_ALLOWED .*external data file/);
  });

  it('refuses a loop in the backing chain', async () => {
    expect(await refusal(at('a.qcow2'), 'qcow2')).toMatch(/^400 IMAGE_NOT_ALLOWED .*loops/);
  });

  it('refuses vmdk descriptors with extents in other files and vmdk with a parent', async () => {
    expect(await refusal(at('flat.vmdk'), 'vmdk')).toMatch(/^400 IMAGE_NOT_ALLOWED .*self-contained/);
    expect(await refusal(at('twogb.vmdk'), 'vmdk')).toMatch(/^400 IMAGE_NOT_ALLOWED .*self-contained/);
    expect(await refusal(at('child.vmdk'), 'vmdk')).toMatch(/^400 IMAGE_NOT_ALLOWED .*parent/);
  });

  it('refuses a file that is not in the format it is opened with', async () => {
    expect(await refusal(at('base.raw'), 'qcow2')).toMatch(/^400 IMAGE_NOT_ALLOWED .*not a qcow2/);
    expect(await refusal(at('plain.qcow2'), 'vmdk')).toMatch(/^400 IMAGE_NOT_ALLOWED/);
  });

  it('refuses the image itself outside the roots', async () => {
    expect(await refusal(path.join(outside, 'secret.raw'), 'raw')).toMatch(/^400 PATH_NOT_ALLOWED/);
    expect(await refusal(at('link-out.raw'), 'raw')).toMatch(/^400 PATH_NOT_ALLOWED/);
  });
});

/** Descriptors this process has open (to see that none is left behind). */
const openFds = () => fs.readdirSync('/proc/self/fd').length;

describe('openImageLayers', () => {
  it('checks exactly the descriptors the opener returns, and gives them back open with the access asked for', async () => {
    // The opener hands back another file than the path named (as a swap after a check would):
    // what is checked is what it returned, not what the path now holds.
    const swapped = (file: string, index: number) =>
      storage.openFile(index === 0 && file === at('plain.qcow2') ? at('datafile-in.qcow2') : file, 'disk', fs.constants.O_RDONLY);
    expect(await refusal(at('plain.qcow2'), 'qcow2', { open: swapped })).toMatch(/^400 IMAGE_NOT_ALLOWED .*external data file/);

    const modes: string[] = [];
    const layers = await openImageLayers(storage, at('top.qcow2'), 'qcow2', {
      open: (file, index) => {
        const flags = index === 0 ? fs.constants.O_RDWR : fs.constants.O_RDONLY;
        modes.push(`${index}:${flags === fs.constants.O_RDWR ? 'rw' : 'ro'}`);
        return storage.openFile(file, 'disk', flags);
      },
    });
    try {
      expect(modes).toEqual(['0:rw', '1:ro', '2:ro']);
      expect(layers.map((l) => [l.path, l.format])).toEqual([
        [at('top.qcow2'), 'qcow2'],
        [at('sub', 'rel.qcow2'), 'qcow2'],
        [at('base.raw'), 'raw'],
      ]);
      // Still open, and each is the file it names.
      for (const l of layers) expect(fs.readlinkSync(`/proc/self/fd/${l.fd}`)).toBe(l.path);
      const access = (fd: number) => Number(/flags:\s*(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]) & 3;
      expect(layers.map((l) => access(l.fd))).toEqual([fs.constants.O_RDWR, fs.constants.O_RDONLY, fs.constants.O_RDONLY]);
    } finally {
      for (const l of layers) fs.closeSync(l.fd);
    }
  });

  it('closes every descriptor it opened when a layer is refused', async () => {
    const before = openFds();
    const opened: number[] = [];
    const open = (file: string) => {
      const f = storage.openFile(file, 'disk', fs.constants.O_RDONLY);
      opened.push(f.fd);
      return f;
    };
    // top.qcow2 -> rel.qcow2 -> base.raw, refused at the last layer by the caller's rule.
    const refuseBase = (real: string) => {
      if (real === at('base.raw')) throw new Error('no base');
    };
    await expect(openImageLayers(storage, at('top.qcow2'), 'qcow2', { open, checkBacking: refuseBase })).rejects.toThrow('no base');
    expect(opened).toHaveLength(3);
    expect(openFds()).toBe(before);
    // A loop and a data file, refused after opening: nothing left open either.
    expect(await refusal(at('a.qcow2'), 'qcow2')).toMatch(/loops/);
    expect(await refusal(at('datafile-in.qcow2'), 'qcow2')).toMatch(/external data file/);
    expect(openFds()).toBe(before);
  });

  it('asks the caller about every backing layer, never about the image itself', async () => {
    const asked: Array<[string, number]> = [];
    await imageLayers(storage, at('top.qcow2'), 'qcow2', { checkBacking: (real, i) => void asked.push([real, i]) });
    expect(asked).toEqual([
      [at('sub', 'rel.qcow2'), 1],
      [at('base.raw'), 2],
    ]);
    const r = await refusal(at('abs.qcow2'), 'qcow2', {
      checkBacking: () => {
        throw new Error('backing refused');
      },
    });
    expect(r).toContain('backing refused');
  });

  it('refuses formats it does not read itself (what an earlier version may have probed), saying to convert', async () => {
    for (const format of ['vdi', 'qed', 'vpc', 'vhdx', 'parallels', 'host_device', '']) {
      expect(await refusal(at('base.raw'), format), format).toMatch(/^400 IMAGE_NOT_ALLOWED .*only raw, qcow2 and vmdk.*convert/);
    }
  });
});

describe('detectFormat', () => {
  const fmt = async (f: string) => {
    const fd = fs.openSync(f, 'r');
    try {
      return await detectFormat(fd);
    } finally {
      fs.closeSync(fd);
    }
  };
  it('names qcow2, vmdk, ISO 9660 and raw by their magic', async () => {
    expect(await fmt(at('plain.qcow2'))).toBe('qcow2');
    expect(await fmt(at('sparse.vmdk'))).toBe('vmdk');
    expect(await fmt(at('flat.vmdk'))).toBe('vmdk');
    expect(await fmt(at('base.raw'))).toBe('raw');
    const iso = Buffer.alloc(17 * 2048);
    iso.write('\x01CD001\x01', 16 * 2048, 'latin1');
    fs.writeFileSync(at('fake.iso'), iso);
    expect(await fmt(at('fake.iso'))).toBe('iso');
  });

  it('names a UDF image (no ISO 9660 descriptor) an ISO too, as the ISO library does', async () => {
    for (const id of ['BEA01', 'NSR02', 'NSR03']) {
      const udf = Buffer.alloc(20 * 2048);
      udf.write(`\x00${id}\x01`, 17 * 2048, 'latin1');
      fs.writeFileSync(at(`udf-${id}.img`), udf);
      expect(await fmt(at(`udf-${id}.img`)), id).toBe('iso');
    }
  });
});
