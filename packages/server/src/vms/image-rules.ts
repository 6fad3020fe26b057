import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../lib/errors.js';
import type { VmContext } from './context.js';

/** Files of the ISO library ($DATA_DIR/isos) are CD media only: never a disk, never a backing file. */
export function refuseIsoLibrary(ctx: Pick<VmContext, 'config'>, real: string, what: string): void {
  let lib: string;
  try {
    lib = fs.realpathSync(path.join(ctx.config.dataDir, 'isos'));
  } catch {
    return;
  }
  if (real === lib || real.startsWith(lib + path.sep)) {
    throw new AppError('IMAGE_NOT_ALLOWED', `${real} is in the ISO library: ISO files are CD media only, never a ${what} (mount it with iso/mount)`);
  }
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
