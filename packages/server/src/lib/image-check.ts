import fs from 'node:fs';
import path from 'node:path';
import { AppError } from './errors.js';
import { checkVdi, checkVhdx } from './image-check-intake.js';
import { readAt, refuse, show } from './image-bytes.js';
import { looksLikeIso } from './iso.js';
import type { OpenedFile, StorageRoots } from './storage.js';

/**
 * What an image refers to, read from its headers by the server itself (no qemu-img, no process), so
 * nothing an image says can make the host open, probe or connect to anything before it is checked.
 *
 * The rules, the same as QEMU's reading of these formats but stricter:
 * - raw: the file itself, nothing else.
 * - qcow2: the file, then its backing file (if any), recursively. A backing file name must be a plain
 *   path (absolute, or relative to the image's directory), never `json:` nor a protocol (anything with
 *   a `:` before the first `/`), and its format must be recorded in the header (no probing). A qcow2
 *   with an external data file is refused, wherever the data file is.
 * - vmdk: only a self-contained sparse vmdk (`KDMV`, descriptor embedded, no parent). A text
 *   descriptor (whose extents are other files) is refused. A stream-optimized vmdk whose header
 *   is in a footer at the end (gdOffset "at end", as VMware writes them) is read where QEMU reads
 *   it: the footer is checked like the header (markers, magic) and its header is the one used.
 * - vdi and vhdx, only when the caller says the image is the source of a conversion (`intake`,
 *   uploads and imports; never a VM's disk nor a managed disk): a dynamic or fixed vdi (a
 *   differencing vdi names a parent: refused), a vhdx whose file parameters have no parent and
 *   that has no parent locator. Both refer to no other file.
 * - any other format: refused (convert the image).
 * Every layer is opened with StorageRoots.openFile (or the caller's opener), so each one is a regular
 * file whose real path lies under a storage root, reached without following a symlink after the
 * check, and the descriptor checked is the one the caller keeps.
 */
export type ImageFormat = 'raw' | 'qcow2' | 'vmdk';
const IMAGE_FORMATS: readonly ImageFormat[] = ['raw', 'qcow2', 'vmdk'];
/** Formats taken only as the source of a conversion (upload, import): never a VM's or a managed disk's. */
export type IntakeFormat = 'vdi' | 'vhdx';
const INTAKE_FORMATS: readonly IntakeFormat[] = ['vdi', 'vhdx'];
/** What an image read as the source of a copy may be. */
export type SourceFormat = ImageFormat | IntakeFormat;

interface ImageLayer {
  /** The real, absolute path of the layer (under a storage root). */
  path: string;
  /** raw, qcow2 or vmdk; the image itself may be vdi or vhdx when opened with `intake`. */
  format: SourceFormat;
}

/** Backing chains longer than this are refused (QEMU itself has no useful limit). */
const MAX_LAYERS = 16;

const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
const VMDK4_MAGIC = 0x4b444d56; // "KDMV"
const QCOW2_EXT_END = 0x00000000;
const QCOW2_EXT_BACKING_FORMAT = 0xe2792aca;
const QCOW2_EXT_DATA_FILE = 0x44415441;
const QCOW2_INCOMPAT_DATA_FILE = 1n << 2n;
const QCOW2_AUTOCLEAR_DATA_FILE_RAW = 1n << 1n;
const QCOW2_MAX_BACKING_NAME = 1023;
/** QEMU's vmdk driver reads the embedded descriptor (and looks for a parent) at this offset, this long. */
const VMDK_DESC_OFFSET = 0x200;
const VMDK_DESC_SIZE = 20 * 512;
const VMDK_GD_AT_END = 0xffffffffffffffffn;
const VMDK_MARKER_EOS = 0;
const VMDK_MARKER_FOOTER = 3;
const VMDK_FLAG_COMPRESS = 1 << 16;
const VMDK_HEADER_BYTES = 80;
/** vdi (VirtualBox): the pre-header text, then the header proper at 0x40, all in the first sector. */

/** One layer opened and checked: `fd` is the very descriptor whose bytes were checked. */
interface OpenedLayer extends ImageLayer {
  fd: number;
}

interface LayerOptions {
  /**
   * Opens layer `index` (0: the image itself, then its backing files in order). Default:
   * StorageRoots.openFile read-only. Whatever it returns is what gets checked, so a caller that
   * hands the descriptors on (QEMU's -add-fd) opens them here with the access it needs.
   */
  open?: (file: string, index: number) => OpenedFile;
  /** Called with each backing layer's real path (index 1 on) once opened: throws to refuse it. */
  checkBacking?: (real: string, index: number) => void;
  /**
   * The image is the source of a conversion (an upload, an import): it may also be a vdi or a vhdx
   * (which have no backing layers here). Never set for what a VM or a managed disk opens.
   */
  intake?: boolean;
}

/**
 * The image and every file it refers to, top layer first, each still open: the caller owns the
 * descriptors (closes them, or hands them on). On any refusal every descriptor opened so far is
 * closed and a 4xx AppError says why.
 */
export async function openImageLayers(storage: StorageRoots, file: string, format: string, opts: LayerOptions = {}): Promise<OpenedLayer[]> {
  const open = opts.open ?? ((f: string) => storage.openFile(f, 'disk', fs.constants.O_RDONLY));
  const layers: OpenedLayer[] = [];
  try {
    let current: { file: string; format: SourceFormat } | null = { file, format: knownFormat(format, file, opts.intake === true) };
    while (current) {
      if (layers.length >= MAX_LAYERS) {
        throw refuse(`Image ${file} has more than ${MAX_LAYERS} layers in its backing chain`);
      }
      const index = layers.length;
      const opened = openLayer(() => open(current!.file, index), layers.at(-1)?.path);
      const layer = { path: opened.real, format: current.format, fd: opened.fd };
      const loops = layers.some((l) => l.path === opened.real);
      layers.push(layer);
      if (loops) throw refuse(`Image ${file} has a backing chain that loops through ${opened.real}`);
      if (index > 0) opts.checkBacking?.(opened.real, index);
      current = await nextLayer(opened.fd, opened.real, current.format, { intake: opts.intake === true && index === 0 });
    }
    return layers;
  } catch (err) {
    for (const l of layers) fs.closeSync(l.fd);
    throw err;
  }
}

/** The image and every file it refers to, top layer first (opened, checked and closed again). */
export async function imageLayers(storage: StorageRoots, file: string, format: string, opts: LayerOptions = {}): Promise<ImageLayer[]> {
  const layers = await openImageLayers(storage, file, format, opts);
  for (const l of layers) fs.closeSync(l.fd);
  return layers.map(({ path: p, format: f }) => ({ path: p, format: f }));
}

/**
 * A format the server reads itself. Anything else (vdi, qed, vpc, vhdx..., which an earlier
 * version may have recorded by probing) is refused: nothing would check what it refers to.
 */
function knownFormat(format: string, file: string, intake = false): SourceFormat {
  if ((IMAGE_FORMATS as readonly string[]).includes(format)) return format as ImageFormat;
  if (intake && (INTAKE_FORMATS as readonly string[]).includes(format)) return format as IntakeFormat;
  throw refuse(
    `${file} is recorded as a ${show(format)} image; only raw, qcow2 and vmdk are accepted ` +
      `(convert it, e.g. qemu-img convert -f ${/^[a-z0-9]{1,16}$/.test(format) ? format : '<format>'} -O qcow2 ${file} <new.qcow2>, and attach the new image)`,
  );
}

/** Opens a layer; a backing file that cannot be used says so, and whose backing file it is. */
function openLayer(open: () => OpenedFile, parent: string | undefined): OpenedFile {
  try {
    return open();
  } catch (err) {
    if (parent === undefined || !(err instanceof AppError)) throw err;
    throw new AppError(err.code === 'FILE_NOT_FOUND' ? 'IMAGE_NOT_ALLOWED' : err.code, `Image ${parent} has a backing file that cannot be used: ${err.message}`);
  }
}

/** Reads the first bytes of an open file and names the format they announce (raw when none). */
export async function detectFormat(fd: number): Promise<ImageFormat | 'iso'> {
  const head = await readAt(fd, 0, 64);
  if (head.length >= 4 && head.readUInt32BE(0) === QCOW2_MAGIC) return 'qcow2';
  if (head.length >= 4 && head.readUInt32BE(0) === VMDK4_MAGIC) return 'vmdk';
  // A vmdk text descriptor (its data lives in other files): raw would read the text, surely not meant.
  if (/^\s*# Disk DescriptorFile/.test(head.toString('latin1'))) return 'vmdk';
  if (looksLikeIso(fd)) return 'iso';
  return 'raw';
}

/**
 * What one opened layer refers to next (its backing file), after checking it refers to nothing else;
 * throws as imageLayers does. For a check on the very descriptor a tool is then given.
 */
export async function nextLayer(fd: number, real: string, format: string, opts: { intake?: boolean } = {}): Promise<{ file: string; format: ImageFormat } | null> {
  switch (knownFormat(format, real, opts.intake === true)) {
    case 'raw':
      return null;
    case 'vmdk':
      await vmdkHeader(fd, real);
      return null;
    case 'qcow2':
      return qcow2Backing(fd, real);
    case 'vdi':
      await checkVdi(fd, real);
      return null;
    case 'vhdx':
      await checkVhdx(fd, real);
      return null;
  }
}

async function qcow2Backing(fd: number, real: string): Promise<{ file: string; format: ImageFormat } | null> {
  const h = await readAt(fd, 0, 112);
  if (h.length < 72 || h.readUInt32BE(0) !== QCOW2_MAGIC) throw refuse(`${real} is not a qcow2 image`);
  const version = h.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw refuse(`${real} has an unsupported qcow2 version (${version})`);
  const backingOffset = h.readBigUInt64BE(8);
  const backingSize = h.readUInt32BE(16);
  const clusterBits = h.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) throw refuse(`${real} has an invalid qcow2 cluster size`);
  const clusterSize = 1 << clusterBits;
  let headerLength = 72;
  if (version === 3) {
    if (h.length < 104) throw refuse(`${real} has a truncated qcow2 header`);
    const incompatible = h.readBigUInt64BE(72);
    const autoclear = h.readBigUInt64BE(88);
    headerLength = h.readUInt32BE(100);
    if (headerLength < 104 || headerLength > clusterSize) throw refuse(`${real} has an invalid qcow2 header length`);
    if (incompatible & QCOW2_INCOMPAT_DATA_FILE || autoclear & QCOW2_AUTOCLEAR_DATA_FILE_RAW) {
      throw refuse(`${real} is a qcow2 with an external data file; only self-contained qcow2 images are accepted (convert it with qemu-img convert)`);
    }
  }
  if (backingOffset > BigInt(clusterSize)) throw refuse(`${real} has an invalid qcow2 backing file offset`);

  // Header extensions, read where QEMU reads them: from the end of the header up to the backing
  // file name (or the end of the first cluster).
  const extEnd = backingOffset !== 0n ? Number(backingOffset) : clusterSize;
  const area = await readAt(fd, 0, extEnd);
  let backingFormat: string | null = null;
  let offset = headerLength;
  while (offset < extEnd) {
    if (offset + 8 > area.length) throw refuse(`${real} has a truncated qcow2 header extension`);
    const type = area.readUInt32BE(offset);
    const len = area.readUInt32BE(offset + 4);
    offset += 8;
    if (len > extEnd - offset || offset + len > area.length) throw refuse(`${real} has a qcow2 header extension that is too large`);
    if (type === QCOW2_EXT_END) break;
    if (type === QCOW2_EXT_DATA_FILE) {
      throw refuse(`${real} is a qcow2 that names an external data file; only self-contained qcow2 images are accepted`);
    }
    if (type === QCOW2_EXT_BACKING_FORMAT) {
      if (backingFormat !== null) throw refuse(`${real} records its backing format twice`);
      backingFormat = area.subarray(offset, offset + len).toString('latin1').replace(/\0.*$/s, '');
    }
    offset += (len + 7) & ~7;
  }

  if (backingOffset === 0n || backingSize === 0) return null;
  if (backingSize > QCOW2_MAX_BACKING_NAME) throw refuse(`${real} has a backing file name that is too long`);
  const nameBuf = await readAt(fd, Number(backingOffset), backingSize);
  if (nameBuf.length !== backingSize) throw refuse(`${real} has a truncated backing file name`);
  const name = nameBuf.toString('utf8');
  const shown = show(name);
  if (/[\0-\x1f\x7f]/.test(name)) throw refuse(`${real} has a backing file name with control characters: ${shown}`);
  if (name.startsWith('json:')) throw refuse(`${real} has a json: backing file specification (${shown}); only plain file paths are accepted`);
  const slash = name.indexOf('/');
  const colon = name.indexOf(':');
  if (colon !== -1 && (slash === -1 || colon < slash)) {
    throw refuse(`${real} has a protocol backing file (${shown}); only plain file paths under the storage roots are accepted`);
  }
  if (backingFormat === null || backingFormat === '') {
    throw refuse(
      `${real} has a backing file (${shown}) with no recorded format; record it with ` +
        `qemu-img rebase -u -f qcow2 -b <backing> -F <raw|qcow2|vmdk> ${real}`,
    );
  }
  if (!(IMAGE_FORMATS as readonly string[]).includes(backingFormat)) {
    throw refuse(`${real} has a backing file of format ${show(backingFormat)}; only raw, qcow2 and vmdk are accepted`);
  }
  return { file: path.resolve(path.dirname(real), name), format: backingFormat as ImageFormat };
}

/**
 * Checks a sparse vmdk as QEMU opens one and returns the header QEMU then uses: the first one, or,
 * when it says its grain directory is at the end (stream-optimized, as VMware writes them), the one
 * in the footer (a footer marker 1536 bytes before the end, the header with its magic 1024 before,
 * an end-of-stream marker in the last sector), checked the same way.
 */
async function vmdkHeader(fd: number, real: string): Promise<{ header: Buffer; atEnd: boolean }> {
  const h = await readAt(fd, 0, VMDK_HEADER_BYTES);
  if (h.length < 4 || h.readUInt32BE(0) !== VMDK4_MAGIC) {
    throw refuse(`${real} is not a self-contained (sparse) vmdk; vmdk descriptors that refer to other files are not accepted`);
  }
  if (h.length < VMDK_HEADER_BYTES) throw refuse(`${real} has a truncated vmdk header`);
  // A zero capacity makes QEMU read the embedded descriptor as a full one, with its own extents.
  if (h.readBigUInt64LE(12) === 0n) throw refuse(`${real} is a vmdk whose embedded descriptor lists extents; only self-contained vmdk images are accepted`);
  let header = h;
  const atEnd = h.readBigUInt64LE(56) === VMDK_GD_AT_END;
  if (atEnd) {
    const size = fs.fstatSync(fd).size;
    // QEMU finds the footer from the size in sectors: a size that is not whole sectors is refused.
    if (size % 512 !== 0 || size < 512 + 1536) throw refuse(`${real} is a stream-optimized vmdk with a truncated or misplaced footer`);
    const f = await readAt(fd, size - 1536, 1536);
    if (
      f.length !== 1536 ||
      f.readUInt32LE(8) !== 0 ||
      f.readUInt32LE(12) !== VMDK_MARKER_FOOTER ||
      f.readUInt32BE(512) !== VMDK4_MAGIC ||
      f.readBigUInt64LE(1024) !== 0n ||
      f.readUInt32LE(1032) !== 0 ||
      f.readUInt32LE(1036) !== VMDK_MARKER_EOS
    ) {
      throw refuse(`${real} is a stream-optimized vmdk with an invalid footer`);
    }
    header = f.subarray(512, 512 + VMDK_HEADER_BYTES);
    if (header.readBigUInt64LE(12) === 0n) throw refuse(`${real} is a vmdk whose footer has a zero capacity`);
    if (header.readBigUInt64LE(56) === VMDK_GD_AT_END) throw refuse(`${real} is a vmdk whose footer does not say where its grain directory is`);
  }
  const desc = await readAt(fd, VMDK_DESC_OFFSET, VMDK_DESC_SIZE);
  if (desc.includes('parentFileNameHint')) throw refuse(`${real} is a vmdk with a parent image; only self-contained vmdk images are accepted`);
  return { header, atEnd };
}

/**
 * Whether a (checked) sparse vmdk is stream-optimized: its header in a footer, or its grains
 * compressed. QEMU opens such an image read-only or append-only, so a VM cannot run on it.
 */
export async function vmdkStreamOptimized(fd: number, real: string): Promise<boolean> {
  const { header, atEnd } = await vmdkHeader(fd, real);
  return atEnd || (header.readUInt32LE(8) & VMDK_FLAG_COMPRESS) !== 0 || header.readUInt16LE(77) !== 0;
}

export { crc32c } from './image-check-intake.js';
