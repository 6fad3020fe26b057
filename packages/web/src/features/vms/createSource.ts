// The create dialog's sources (issue 12): an empty disk (+ ISO) as before, an image, or a template.
// The image and template creates are one request each (202 { task }); this builds their body.
import type { CreateVmBody, Image } from '@qemu-manager/contract';
import { hardwareValues, type HardwareDraft } from './hardwareRules';
import { cloudInitBody, isBlankCloudInit, type CloudInitDraft } from './cloudInitForm';

export type CreateSource = 'empty' | 'image' | 'template';
export const CREATE_SOURCES: readonly CreateSource[] = ['empty', 'image', 'template'];

const GIB = 1024 ** 3;
/** The smallest disk (GB) a VM from this image can have: the image's virtual size, rounded up. */
export const imageMinGb = (image: Pick<Image, 'virtualSize'>): number => Math.max(1, Math.ceil(image.virtualSize / GIB));

/** The hardware fields for POST /api/vms; a null drivers ISO is left out. */
export function hardwareForCreate(d: HardwareDraft): Partial<CreateVmBody> {
  const { driversIso, ...rest } = hardwareValues(d);
  return driversIso ? { ...rest, driversIso } : rest;
}

export interface SourceForm {
  name: string;
  cpus: number;
  memory: number;
  hardware: HardwareDraft;
  cloudInit: CloudInitDraft;
}

/** POST /api/vms from an image: a linked (or full) copy grown to diskSize, hardware and cloud-init, as one task. */
export function imageCreateBody(f: SourceForm, image: string, diskSize: number, linked: boolean): CreateVmBody {
  const body: CreateVmBody = { name: f.name, cpus: f.cpus, memory: f.memory, ...hardwareForCreate(f.hardware), image, diskSize, linkedDisk: linked };
  if (!isBlankCloudInit(f.cloudInit)) body.cloudInit = cloudInitBody(f.cloudInit);
  return body;
}

/** POST /api/vms from a template: its CPUs, memory and hardware; only the name and cloud-init are new. */
export function templateCreateBody(f: Pick<SourceForm, 'name' | 'cloudInit'>, template: string): CreateVmBody {
  const body: CreateVmBody = { name: f.name, template };
  if (!isBlankCloudInit(f.cloudInit)) body.cloudInit = cloudInitBody(f.cloudInit);
  return body;
}
