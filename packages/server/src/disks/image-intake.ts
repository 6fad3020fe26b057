import fs from 'node:fs';
import { AppError } from '../lib/errors.js';
import { detectFormat, imageLayers, nextLayer, vmdkStreamOptimized, type SourceFormat } from '../lib/image-check.js';
import type { StorageRoots } from '../lib/storage.js';

/**
 * The checks an image from outside passes before the server takes it (an upload, an import): its
 * format read from its own header (never guessed from a name or a claim), and self-contained. The
 * messages speak of `label` ("the uploaded image", "the downloaded image"), never of a temp name.
 * raw, qcow2, vmdk, vdi and vhdx are taken; vdi and vhdx only ever as the source of a conversion.
 */

/** The intake-only formats, by what they announce in their first bytes. */
function intakeOnly(head: Buffer): 'vdi' | 'vhdx' | null {
  if (head.subarray(0, 8).toString('latin1') === 'vhdxfile') return 'vhdx';
  if (head.length >= 0x44 && head.readUInt32LE(0x40) === 0xbeda107f) return 'vdi';
  return null;
}

/** What other image formats announce in their first bytes (named in the refusal). */
function otherFormat(head: Buffer): string | null {
  if (head.subarray(0, 8).toString('latin1') === 'conectix') return 'vpc';
  if (head.subarray(0, 4).toString('latin1') === 'QED\0') return 'qed';
  return null;
}

/** How the refusals name the image and what they advise. */
export interface IntakeWords {
  /** "the uploaded image" */
  label: string;
  /** Said of an ISO: "The uploaded file is an ISO 9660 image: <isoAdvice>" */
  isoLabel: string;
  isoAdvice: string;
  /** Said after "… has a backing file; " */
  backingAdvice: string;
}

/** raw, qcow2, vmdk, vdi or vhdx, from the header; an ISO or another format is refused with what to do. */
export async function intakeFormat(file: string, words: IntakeWords): Promise<SourceFormat> {
  const label = words.label;
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const head = Buffer.alloc(512);
    fs.readSync(fd, head, 0, head.length, 0);
    const only = intakeOnly(head);
    if (only) return only;
    const other = otherFormat(head);
    if (other) {
      throw new AppError(
        'IMAGE_NOT_ALLOWED',
        `${capitalized(label)} is ${other}; raw, qcow2, vmdk, vdi and vhdx are accepted (convert it first: qemu-img convert -f ${other} -O qcow2 <image> <new.qcow2>)`,
      );
    }
    const seen = await detectFormat(fd);
    if (seen === 'iso') throw new AppError('IMAGE_NOT_ALLOWED', `${capitalized(words.isoLabel)} is an ISO 9660 image: ${words.isoAdvice}`);
    return seen;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The image names no other file: no backing file (wherever it is), no external data file, no vmdk
 * extent, no vdi or vhdx parent (the header checks), said of `words.label`, not of its temp name.
 * `mustConvert`: the image cannot be a VM's disk as it is (vdi, vhdx, a stream-optimized vmdk), so
 * an upload converts it to qcow2.
 */
export async function checkSelfContained(storage: StorageRoots, file: string, format: SourceFormat, words: IntakeWords): Promise<{ mustConvert: boolean }> {
  const label = words.label;
  try {
    let mustConvert = format === 'vdi' || format === 'vhdx';
    const opened = storage.openFile(file, 'disk', fs.constants.O_RDONLY);
    try {
      if (await nextLayer(opened.fd, opened.real, format, { intake: true })) {
        throw new AppError('IMAGE_NOT_ALLOWED', `${capitalized(label)} has a backing file; ${words.backingAdvice}`);
      }
      // QEMU opens a stream-optimized vmdk read-only (or append-only): no VM can run on it.
      if (format === 'vmdk' && (await vmdkStreamOptimized(opened.fd, opened.real))) mustConvert = true;
    } finally {
      fs.closeSync(opened.fd);
    }
    await imageLayers(storage, file, format, { intake: true });
    return { mustConvert };
  } catch (err) {
    if (err instanceof AppError) {
      const said = err.message.split(file).join(label);
      throw new AppError(err.code, said.startsWith(label) ? capitalized(said) : said);
    }
    throw err;
  }
}

function capitalized(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
