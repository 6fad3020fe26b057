import { Type, type Static } from '@sinclair/typebox';
import { Timestamp } from './common.js';
import { Disk } from './disks.js';
import { Vm } from './vms.js';

export const Iso = Type.Object(
  { name: Type.String(), path: Type.String(), size: Type.Integer({ description: 'bytes' }), modifiedAt: Timestamp },
  { additionalProperties: false },
);
export type Iso = Static<typeof Iso>;
export const IsoListEnvelope = Type.Object({ isos: Type.Array(Iso) }, { additionalProperties: false });
export type IsoListEnvelope = Static<typeof IsoListEnvelope>;

export const Health = Type.Object(
  {
    status: Type.Literal('ok'),
    timestamp: Timestamp,
    version: Type.String({ description: 'QEMU Manager version (extension)' }),
    qemu: Type.Object(
      {
        version: Type.Union([Type.String(), Type.Null()], { description: 'qemu-system-x86_64 version' }),
        accel: Type.Union([Type.Literal('kvm'), Type.Literal('tcg')]),
        accelReason: Type.String({ description: 'Why this accelerator was chosen' }),
      },
      { additionalProperties: false },
    ),
    host: Type.Object(
      { cpus: Type.Integer(), memoryMiB: Type.Integer() },
      { additionalProperties: false, description: 'Limits for VM resources' },
    ),
  },
  { additionalProperties: false },
);
export type Health = Static<typeof Health>;

/** Server-Sent Events on GET /api/events. Each SSE `event:` name is the `type` below; `data` is the JSON. */
export type ServerEvent =
  | { type: 'vm.created'; vm: Vm }
  | { type: 'vm.updated'; vm: Vm }
  | { type: 'vm.deleted'; id: string }
  | { type: 'disk.created'; disk: Disk }
  | { type: 'disk.updated'; disk: Disk }
  | { type: 'disk.deleted'; id: string }
  | { type: 'iso.changed' };
export type ServerEventType = ServerEvent['type'];
