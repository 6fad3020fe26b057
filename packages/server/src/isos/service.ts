import type { Iso } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { EventBus } from '../events/bus.js';
import { AppError } from '../lib/errors.js';
import { looksLikeIso } from '../lib/iso.js';
import { receiveUpload } from '../lib/upload.js';

export const ISO_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.iso$/i;

/** The ISO library: the files in $DATA_DIR/isos. */
export class IsoService {
  /** Partial uploads removed at start (a crash mid-upload leaves its `.upload-*` file). */
  readonly swept: number;

  constructor(
    private readonly dir: string,
    private readonly bus: EventBus,
    private readonly maxBytes: number,
    /** An upload that sends no byte for this long is aborted. */
    private readonly idleTimeoutMs = 60_000,
  ) {
    this.swept = this.sweepPartialUploads();
  }

  /** Removes leftover `.upload-*` temp files. Only the one server holding the data dir lock builds this. */
  private sweepPartialUploads(): number {
    let n = 0;
    for (const ent of fs.readdirSync(this.dir, { withFileTypes: true })) {
      if (!ent.name.startsWith('.upload-') || ent.isDirectory()) continue;
      fs.rmSync(path.join(this.dir, ent.name), { force: true });
      n++;
    }
    return n;
  }

  list(): Iso[] {
    const out: Iso[] = [];
    for (const ent of fs.readdirSync(this.dir, { withFileTypes: true })) {
      if (!ent.name.toLowerCase().endsWith('.iso') || ent.name.startsWith('.')) continue;
      const file = path.join(this.dir, ent.name);
      try {
        const st = fs.statSync(file);
        if (st.isFile()) out.push({ name: ent.name, path: file, size: st.size, modifiedAt: st.mtime.toISOString() });
      } catch {
        /* vanished or dangling link */
      }
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Streams an upload to a hidden temp file, checks size and ISO signature, then renames it into
   * place. A failed or refused upload leaves nothing behind.
   */
  async upload(name: string, body: Readable, declaredLength: number | null): Promise<Iso> {
    if (!ISO_NAME_PATTERN.test(name)) {
      throw new AppError('VALIDATION', 'ISO name must be letters, digits, dot, dash or underscore, ending in .iso');
    }
    const final = path.join(this.dir, name);
    if (fs.existsSync(final)) throw new AppError('NAME_TAKEN', `An ISO named ${name} already exists`);
    const tmp = path.join(this.dir, `.upload-${crypto.randomUUID()}`);
    await receiveUpload(body, tmp, { maxBytes: this.maxBytes, idleMs: this.idleTimeoutMs, declaredLength, what: 'ISO', mode: 0o644 });
    try {
      if (!isoFile(tmp)) throw new AppError('VALIDATION', 'The file is not an ISO 9660 or UDF image');
      fs.linkSync(tmp, final); // fails if the name appeared meanwhile: never overwrite
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new AppError('NAME_TAKEN', `An ISO named ${name} already exists`);
      }
      throw err;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    this.bus.publish({ type: 'iso.changed' });
    const st = fs.statSync(final);
    return { name, path: final, size: st.size, modifiedAt: st.mtime.toISOString() };
  }

  delete(name: string, inUse: (file: string) => boolean): void {
    if (!ISO_NAME_PATTERN.test(name)) throw new AppError('VALIDATION', 'Invalid ISO name');
    const file = path.join(this.dir, name);
    if (!fs.existsSync(file)) throw new AppError('FILE_NOT_FOUND', `ISO not found: ${name}`);
    if (inUse(fs.realpathSync(file))) throw new AppError('ISO_IN_USE', `ISO ${name} is mounted in a VM; unmount it first`);
    fs.rmSync(file);
    this.bus.publish({ type: 'iso.changed' });
  }
}

/** The upload just written, checked through its own descriptor. */
function isoFile(file: string): boolean {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    return looksLikeIso(fd);
  } finally {
    fs.closeSync(fd);
  }
}
