import { DISK_NAME_PATTERN, type Disk, type DiskFormat } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { EventBus } from '../events/bus.js';
import { AppError } from '../lib/errors.js';
import type { StorageRoots } from '../lib/storage.js';
import { nowIso } from '../lib/time.js';
import { receiveUpload } from '../lib/upload.js';
import type { ImageTool } from '../runtime/port.js';
import { checkSelfContained, intakeFormat, type IntakeWords } from './image-intake.js';
import type { DiskRepo } from './repo.js';
import { EXTENSIONS } from './service.js';

const NAME = new RegExp(DISK_NAME_PATTERN);
const GiB = 1024 ** 3;
const UPLOAD_PREFIX = '.upload-';
const UPLOAD_WORDS: IntakeWords = {
  label: 'the uploaded image',
  isoLabel: 'the uploaded file',
  isoAdvice: 'upload it to the ISO library (PUT /api/isos/{name})',
  backingAdvice: 'upload a self-contained image (qemu-img convert -O qcow2 <image> <new.qcow2>)',
};
/** What a converted upload becomes. */
const CONVERTED: DiskFormat = 'qcow2';

/**
 * Disk image uploads (`PUT /api/disks/upload/{name}`): streamed to a hidden temp file in the disk
 * directory, its format read from its own header (never guessed from the name), checked by the
 * server's header checks (no backing file, no external data file, no vmdk extents: the image must
 * be self-contained) and then by `qemu-img info` run the unprivileged way, and only then linked to
 * `<name>.<ext>` and listed as a ready managed disk. A vdi, a vhdx or a stream-optimized vmdk
 * (which no VM can run on as it is) is first converted to qcow2 by the image tool's safe copy into
 * a second hidden temp file, and that one is linked (`<name>.qcow2`). A refused or broken upload
 * leaves nothing.
 */
export class DiskUploads {
  constructor(
    private readonly deps: {
      repo: DiskRepo;
      images: ImageTool;
      bus: EventBus;
      storage: StorageRoots;
      dir: string;
      maxBytes: number;
      idleMs: number;
    },
  ) {
    // A crash mid-upload leaves its temp file: only the server holding the data dir builds this.
    for (const ent of fs.readdirSync(deps.dir, { withFileTypes: true })) {
      if (ent.name.startsWith(UPLOAD_PREFIX) && ent.isFile()) fs.rmSync(path.join(deps.dir, ent.name), { force: true });
    }
  }

  async upload(name: string, body: Readable, declaredLength: number | null): Promise<Disk> {
    const { repo, images, bus, dir } = this.deps;
    if (!NAME.test(name)) {
      throw new AppError('VALIDATION', 'A disk name may only contain letters, digits, dot, dash and underscore, starting with a letter or digit (max 63)');
    }
    if (repo.nameTaken(name)) throw new AppError('NAME_TAKEN', `A disk named ${name} already exists`);
    const tmp = path.join(dir, `${UPLOAD_PREFIX}${crypto.randomUUID()}`);
    await receiveUpload(body, tmp, { maxBytes: this.deps.maxBytes, idleMs: this.deps.idleMs, declaredLength, what: 'disk image' });
    const converted = `${tmp}.${EXTENSIONS[CONVERTED]}`;
    try {
      const seen = await intakeFormat(tmp, UPLOAD_WORDS);
      const { mustConvert } = await checkSelfContained(this.deps.storage, tmp, seen, UPLOAD_WORDS);
      const info = await images.info(tmp, seen);
      const format: DiskFormat = mustConvert ? CONVERTED : (seen as DiskFormat);
      const final = path.join(dir, `${name}.${EXTENSIONS[format]}`);
      const taken = () => new AppError('NAME_TAKEN', `A file named ${path.basename(final)} already exists in the disk directory`);
      if (fs.existsSync(final)) throw taken();
      let source = tmp;
      if (mustConvert) {
        await images.copy({ file: tmp, format: seen }, converted, { format: CONVERTED });
        fs.rmSync(tmp, { force: true }); // no need for twice the space
        source = converted;
        if (repo.nameTaken(name)) throw new AppError('NAME_TAKEN', `A disk named ${name} was created meanwhile`);
      }
      const id = crypto.randomUUID();
      try {
        fs.linkSync(source, final); // never overwrites: a file of that name is a refusal
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw taken();
        throw err;
      }
      const size = Math.max(1, Math.ceil(info['virtual-size'] / GiB));
      repo.insert({ id, name, size, format, path: final, created_at: nowIso() });
      repo.finish(id, 'ready', null, nowIso());
      const disk = repo.get(id)!;
      bus.publish({ type: 'disk.created', disk });
      return disk;
    } finally {
      fs.rmSync(tmp, { force: true });
      fs.rmSync(converted, { force: true });
    }
  }
}
