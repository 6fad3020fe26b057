import type { CreateImageBody, DiskFormat, Image, ImageCatalogueEntry, Task } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { download, httpUrl } from '../disks/download.js';
import { checkSelfContained, intakeFormat, type IntakeWords } from '../disks/image-intake.js';
import { AppError } from '../lib/errors.js';
import type { SourceFormat } from '../lib/image-check.js';
import type { StorageRoots } from '../lib/storage.js';
import { nowIso } from '../lib/time.js';
import { receiveUpload } from '../lib/upload.js';
import type { ImageTool } from '../runtime/port.js';
import type { TaskContext, TaskService } from '../tasks/service.js';
import { lookupChecksum, MAX_CHECKSUM_LIST_BYTES, urlFileName, type Checksum } from './checksums.js';
import type { ImageRecord, ImageRepo } from './repo.js';

const PARTIAL = '.part';
const DOWNLOAD_PREFIX = '.download-';
const UPLOAD_PREFIX = '.upload-';

const words = (label: string, advice: string): IntakeWords => ({
  label,
  isoLabel: label,
  isoAdvice: 'add it to the ISO library instead (PUT /api/isos/{name})',
  backingAdvice: `${advice} a self-contained image (qemu-img convert -O qcow2 <image> <new.qcow2>)`,
});
const DOWNLOAD_WORDS = words('the downloaded image', 'download');
const UPLOAD_WORDS = words('the uploaded image', 'upload');

/**
 * The images library (issue 12): ready disks under `$DATA_DIR/images/`, always stored as qcow2
 * `<name>.qcow2`, listed in the `images` table. A download (`image.download` task) or an upload is
 * received into a hidden temp file of the library directory, its checksum verified (a download's),
 * its format read from its own header, checked self-contained like a disk upload, read by
 * qemu-img the unprivileged way and converted to qcow2 by the image tool's safe copy into
 * `<name>.qcow2.part`, which is linked to its name (never over a file) and listed only then: a
 * failure, a cancel or a crash leaves nothing. The directory is a storage root so managed disks
 * may back onto an image (recorded in `image_chain`); requests never name a file in it.
 */
export class ImageService {
  /** Names downloads and uploads in flight will take. */
  private readonly reserved = new Set<string>();
  /** Images a task reads now (a VM being made from it), by name: not deleted meanwhile. */
  private readonly readers = new Map<string, number>();

  constructor(
    private readonly deps: {
      repo: ImageRepo;
      images: ImageTool;
      storage: StorageRoots;
      tasks: TaskService;
      dir: string;
      maxBytes: number;
      idleMs: number;
      catalogue: ImageCatalogueEntry[];
    },
  ) {
    // A crash mid-upload leaves its temp file and perhaps its `.part` (a download's files are its
    // task's partials, removed by the task recovery too). Only the server holding the data dir builds this.
    for (const ent of fs.readdirSync(deps.dir, { withFileTypes: true })) {
      if ((ent.name.startsWith(UPLOAD_PREFIX) || ent.name.endsWith(PARTIAL)) && ent.isFile()) fs.rmSync(path.join(deps.dir, ent.name), { force: true });
    }
  }

  list(): Image[] {
    return this.deps.repo.list().map((r) => this.public(r));
  }

  catalogue(): ImageCatalogueEntry[] {
    return this.deps.catalogue;
  }

  /** The image (with its file), or 404 IMAGE_NOT_FOUND. */
  require(name: string): ImageRecord {
    const image = this.deps.repo.get(name);
    if (!image) throw new AppError('IMAGE_NOT_FOUND', `Image not found: ${name}`);
    return image;
  }

  /** Marks the image as read by a task until the returned function is called. */
  use(name: string): () => void {
    this.readers.set(name, (this.readers.get(name) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.readers.get(name) ?? 1) - 1;
      if (n <= 0) this.readers.delete(name);
      else this.readers.set(name, n);
    };
  }

  /** POST /api/images: checks the request, then downloads, verifies and stores as an `image.download` task. */
  start(body: CreateImageBody): { task: Task } {
    const url = this.url(body.url, 'url');
    const listUrl = body.checksumUrl === undefined ? null : this.url(body.checksumUrl, 'checksumUrl');
    const final = this.claimable(body.name);
    this.reserved.add(body.name);
    try {
      const task = this.deps.tasks.start('image.download', {}, async (tctx) => {
        try {
          return await this.fetch(url, listUrl, body, final, tctx);
        } finally {
          this.reserved.delete(body.name);
        }
      });
      return { task };
    } catch (err) {
      this.reserved.delete(body.name);
      throw err;
    }
  }

  /** PUT /api/images/upload/{name}: the body streamed to a temp file, checked, converted and listed. */
  async upload(name: string, body: Readable, declaredLength: number | null): Promise<Image> {
    const final = this.claimable(name);
    this.reserved.add(name);
    const tmp = path.join(this.deps.dir, `${UPLOAD_PREFIX}${crypto.randomUUID()}`);
    try {
      await receiveUpload(body, tmp, { maxBytes: this.deps.maxBytes, idleMs: this.deps.idleMs, declaredLength, what: 'image' });
      const sha256 = await hashFile(tmp);
      const image = await this.store(tmp, name, final, { sha256, source: 'upload', words: UPLOAD_WORDS });
      return this.public(image);
    } finally {
      fs.rmSync(tmp, { force: true });
      this.reserved.delete(name);
    }
  }

  /** DELETE /api/images/{name}: refused while a managed disk backs onto it or a task reads it. */
  delete(name: string): void {
    const image = this.require(name);
    if (image.usedBy.length > 0) {
      throw new AppError(
        'IMAGE_IN_USE',
        `Image ${name} is the backing file of ${image.usedBy.length === 1 ? 'disk' : 'disks'} ${image.usedBy.join(', ')}; delete ${image.usedBy.length === 1 ? 'that disk' : 'those disks'} first`,
      );
    }
    if (this.readers.has(name)) throw new AppError('IMAGE_IN_USE', `Image ${name} is being copied into a new VM's disk; try again when that task ends`);
    fs.rmSync(image.path, { force: true });
    this.deps.repo.delete(name);
  }

  // --- helpers -----------------------------------------------------------------------------

  private public(r: ImageRecord): Image {
    const { path: file, ...image } = r;
    let size = image.size;
    try {
      size = fs.statSync(file).blocks * 512;
    } catch {
      /* gone: the recorded size */
    }
    return { ...image, size };
  }

  private url(text: string, field: string): URL {
    try {
      return httpUrl(text, field);
    } catch (err) {
      throw new AppError('VALIDATION', (err as Error).message);
    }
  }

  /** The file a new image of that name takes; 409 NAME_TAKEN when the name or the file is taken. */
  private claimable(name: string): string {
    if (this.deps.repo.get(name) || this.reserved.has(name)) throw new AppError('NAME_TAKEN', `An image named ${name} already exists`);
    const final = path.join(this.deps.dir, `${name}.qcow2`);
    if (fs.existsSync(final) || fs.existsSync(final + PARTIAL)) throw new AppError('NAME_TAKEN', `A file named ${path.basename(final)} already exists in the image directory`);
    return final;
  }

  private async fetch(url: URL, listUrl: URL | null, body: CreateImageBody, final: string, tctx: TaskContext): Promise<Record<string, unknown>> {
    const { dir, maxBytes, idleMs } = this.deps;
    // The checksum list first (small, bounded): a file it does not name fails before the download.
    let listed: Checksum | null = null;
    if (listUrl) {
      const list = await download(listUrl, null, {
        signal: tctx.signal,
        maxBytes: MAX_CHECKSUM_LIST_BYTES,
        idleMs,
        tooLarge: `The checksum list is larger than ${MAX_CHECKSUM_LIST_BYTES} bytes`,
      });
      listed = lookupChecksum(list.body!.toString('utf8'), urlFileName(url));
    }
    const tmp = path.join(dir, `${DOWNLOAD_PREFIX}${crypto.randomUUID()}`);
    tctx.partial(tmp);
    try {
      const algorithms = listed && listed.algorithm !== 'sha256' ? ['sha256', listed.algorithm] : ['sha256'];
      const got = await download(url, tmp, { signal: tctx.signal, maxBytes, idleMs, algorithms, progress: (d, t) => tctx.progress(d, t) });
      const sha256 = got.hashes.sha256!;
      if (body.sha256 !== undefined && body.sha256.toLowerCase() !== sha256) throw new Error(`sha256 mismatch: expected ${body.sha256.toLowerCase()} got ${sha256}`);
      if (listed && got.hashes[listed.algorithm] !== listed.hex) {
        throw new Error(`${listed.algorithm} mismatch: the checksum list gives ${listed.hex}, the download has ${got.hashes[listed.algorithm]}`);
      }
      const image = await this.store(tmp, body.name, final, {
        sha256,
        source: url.href,
        words: DOWNLOAD_WORDS,
        ...(body.format !== undefined ? { claimed: body.format } : {}),
        tctx,
        done: got.bytes,
      });
      return { image: image.name };
    } finally {
      fs.rmSync(tmp, { force: true });
      tctx.kept(tmp);
    }
  }

  /**
   * Takes the received file `tmp`: format from its header (matching `claimed` when given),
   * self-contained, its virtual size read the safe way, converted to qcow2 at `<final>.part`, then
   * linked to `final` and listed.
   */
  private async store(
    tmp: string,
    name: string,
    final: string,
    o: { sha256: string; source: string; words: IntakeWords; claimed?: DiskFormat; tctx?: TaskContext; done?: number },
  ): Promise<ImageRecord> {
    const { repo, images, storage } = this.deps;
    const seen: SourceFormat = await intakeFormat(tmp, o.words);
    if (o.claimed !== undefined && o.claimed !== seen) throw new AppError('IMAGE_NOT_ALLOWED', `The image was said to be ${o.claimed}, but its header says ${seen}`);
    await checkSelfContained(storage, tmp, seen, o.words);
    const virtualSize = (await images.info(tmp, seen))['virtual-size'];
    const part = final + PARTIAL;
    o.tctx?.partial(part);
    try {
      const before = o.done ?? 0;
      const total = before + virtualSize;
      o.tctx?.progress(before, total);
      await images.copy({ file: tmp, format: seen }, part, {
        format: 'qcow2',
        ...(o.tctx ? { signal: o.tctx.signal, progress: (d: number) => o.tctx!.progress(before + Math.min(d, virtualSize), total) } : {}),
      });
      if (o.tctx?.signal.aborted) throw new Error('cancelled');
      fs.chmodSync(part, 0o600);
      if (repo.get(name)) throw new AppError('NAME_TAKEN', `An image named ${name} was created meanwhile`);
      o.tctx?.partial(final);
      try {
        fs.linkSync(part, final); // never over a file that appeared meanwhile
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new AppError('NAME_TAKEN', `A file named ${path.basename(final)} already exists in the image directory`);
        throw err;
      }
      try {
        repo.insert({ name, path: final, virtualSize, size: fs.statSync(final).size, sha256: o.sha256, source: o.source, createdAt: nowIso() });
      } catch (err) {
        fs.rmSync(final, { force: true });
        throw err;
      }
      o.tctx?.kept(final);
      return repo.get(name)!;
    } finally {
      fs.rmSync(part, { force: true });
      o.tctx?.kept(part);
    }
  }
}

/** SHA-256 (hex) of a file, read as a stream. */
async function hashFile(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
