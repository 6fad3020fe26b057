import { Type, type Static } from '@sinclair/typebox';
import { Timestamp } from './common.js';

export const Iso = Type.Object(
  { name: Type.String(), path: Type.String(), size: Type.Integer({ description: 'bytes' }), modifiedAt: Timestamp },
  { additionalProperties: false },
);
export type Iso = Static<typeof Iso>;
export const IsoListEnvelope = Type.Object({ isos: Type.Array(Iso) }, { additionalProperties: false });
export type IsoListEnvelope = Static<typeof IsoListEnvelope>;
export const IsoEnvelope = Type.Object({ iso: Iso }, { additionalProperties: false });
export type IsoEnvelope = Static<typeof IsoEnvelope>;
/** The file name of an ISO in the library. */
export const IsoNameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 210 }) }, { additionalProperties: false });
export type IsoNameParams = Static<typeof IsoNameParams>;

/** Host-wide totals over all defined VMs (extension of GET /api/health). */
export const HostTotals = Type.Object(
  {
    vmMemoryDeclaredMiB: Type.Integer({ description: 'Memory declared by all defined VMs together' }),
    vmMemoryTotalMiB: Type.Union([Type.Integer(), Type.Null()], {
      description: 'The bound on that total (MAX_VM_MEMORY_TOTAL, MEMORY_OVERCOMMIT × host memory), null if none',
    }),
    maxVmMemoryTotalMiB: Type.Union([Type.Integer(), Type.Null()], { description: 'MAX_VM_MEMORY_TOTAL' }),
    memoryOvercommit: Type.Union([Type.Number(), Type.Null()], { description: 'MEMORY_OVERCOMMIT' }),
  },
  { additionalProperties: false },
);
export type HostTotals = Static<typeof HostTotals>;

export const Health = Type.Object(
  {
    status: Type.Literal('ok'),
    timestamp: Timestamp,
    version: Type.Optional(Type.String({ description: 'QEMU Manager version (extension; with credentials when authentication is on)' })),
    qemu: Type.Optional(Type.Object(
      {
        version: Type.Union([Type.String(), Type.Null()], { description: 'qemu-system-x86_64 version' }),
        accel: Type.Union([Type.Literal('kvm'), Type.Literal('tcg')]),
        accelReason: Type.String({ description: 'Why this accelerator was chosen' }),
      },
      { additionalProperties: false },
    )),
    host: Type.Optional(Type.Object(
      { cpus: Type.Integer(), memoryMiB: Type.Integer() },
      { additionalProperties: false, description: 'Limits for VM resources' },
    )),
    limits: Type.Optional(HostTotals),
    guestIsolation: Type.Optional(
      Type.Object(
        { enforced: Type.Boolean(), reason: Type.String() },
        { additionalProperties: false, description: 'Whether guests are kept off this host\'s own services, and how or why not' },
      ),
    ),
  },
  { additionalProperties: false },
);
export type Health = Static<typeof Health>;
