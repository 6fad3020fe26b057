import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../lib/errors.js';
import type { VmContext } from './context.js';

/** Files of the ISO library ($DATA_DIR/isos) are CD media only: never a disk, never a backing file. */
export function refuseIsoLibrary(ctx: Pick<VmContext, 'config'>, real: string, what: string): void {
  if (inLibrary(ctx, 'isos', real)) {
    throw new AppError('IMAGE_NOT_ALLOWED', `${real} is in the ISO library: ISO files are CD media only, never a ${what} (mount it with iso/mount)`);
  }
  if (what !== 'backing file') refuseImageLibrary(ctx, real, what); // images (issue 12)
}

/**
 * images (issue 12): files of the images library ($DATA_DIR/images) are only ever the backing
 * file of the disks made from them (backingRule): never a disk, a medium or a source a request names.
 */
export function refuseImageLibrary(ctx: Pick<VmContext, 'config'>, real: string, what: string): void {
  if (inLibrary(ctx, 'images', real)) {
    throw new AppError('IMAGE_NOT_ALLOWED', `${real} is in the images library: an image is never used as a ${what}; create a VM from it (POST /api/vms with "image")`);
  }
}

function inLibrary(ctx: Pick<VmContext, 'config'>, dir: 'isos' | 'images', real: string): boolean {
  let lib: string;
  try {
    lib = fs.realpathSync(path.join(ctx.config.dataDir, dir));
  } catch {
    return false;
  }
  return real === lib || real.startsWith(lib + path.sep);
}

/**
 * The check every backing layer of `top` passes (imageLayers' checkBacking): a backing file is
 * shared read-only by whoever names it, so it must be nobody's disk: not a managed disk, not an
 * image attached to any VM (this one included), and not an ISO library file. Otherwise an imported
 * qcow2 naming another VM's disk as its backing would read that disk.
 */
export function backingRule(ctx: Pick<VmContext, 'config' | 'disks' | 'repo'>, top: string): (real: string) => void {
  // clones and backing chains (issue 10): the layers come top first, so `above` is the image whose
  // backing file `real` is. A managed disk recorded as a linked clone of exactly this managed disk
  // may back onto it (the base can then be neither deleted nor started); nothing else may.
  let above = top;
  return (real) => {
    refuseIsoLibrary(ctx, real, 'backing file');
    const child = ctx.disks.byPath(above);
    above = real;
    // images (issue 12): an image backs exactly the managed disks recorded as made from it.
    if (inLibrary(ctx, 'images', real)) {
      if (child?.backingFile === real) return;
      throw new AppError('IMAGE_NOT_ALLOWED', `${top} has ${real}, an image of the library, as a backing file; only disks made from the image may back onto it`);
    }
    if (child?.backingFile === real && ctx.disks.byPath(real)?.children?.includes(child.id)) return;
    const managed = ctx.disks.byPath(real);
    if (managed) {
      throw new AppError('IMAGE_NOT_ALLOWED', `${top} has the managed disk ${managed.name} as a backing file; a VM's disk is never another image's backing file`);
    }
    const owner = ctx.repo.diskOwner(real);
    if (owner) {
      throw new AppError('IMAGE_NOT_ALLOWED', `${top} has ${real}, a disk attached to VM ${owner}, as a backing file; a VM's disk is never another image's backing file`);
    }
  };
}
