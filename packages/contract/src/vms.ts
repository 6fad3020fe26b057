import { Type, type Static } from '@sinclair/typebox';
import { Id, PathId, Timestamp } from './common.js';
import { DiskFormat } from './disks.js';

/** Allowed VM names: letters, digits, dot, dash, underscore; must start with a letter or digit. */
export const VM_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$';
export const MIN_MEMORY_MIB = 16;

export const VmStatus = Type.Union(
  [
    Type.Literal('stopped'),
    Type.Literal('starting'),
    Type.Literal('running'),
    Type.Literal('paused'),
    Type.Literal('stopping'),
  ],
  { description: 'stopped | starting | running | paused | stopping' },
);
export type VmStatus = Static<typeof VmStatus>;

export const VmDisk = Type.Object(
  {
    path: Type.String({ description: 'Absolute path of the image on the host' }),
    attachedAt: Timestamp,
    format: Type.Optional(Type.String({ description: 'Image format read from the image (extension)' })),
    diskId: Type.Union([Type.String(), Type.Null()], {
      description: 'Id of the managed disk with this path, or null for an external image (extension)',
    }),
  },
  { additionalProperties: false },
);
export type VmDisk = Static<typeof VmDisk>;

/** Autostart (extension, issue 15): started after a host boot in `order`, `delayS` before the next. */
export const VmAutostart = Type.Object(
  {
    enabled: Type.Boolean({ description: 'Start this VM when the server comes up after a host boot' }),
    order: Type.Integer({ minimum: 0, maximum: 10000, description: 'Lower starts first (ties by name); host shutdown goes in the reverse order' }),
    delayS: Type.Integer({ minimum: 0, maximum: 3600, description: 'Seconds to wait after this VM started before starting the next' }),
  },
  { additionalProperties: false },
);
export type VmAutostart = Static<typeof VmAutostart>;

// hardware options (issue 12): firmware, Secure Boot and TPM
export const VmFirmware = Type.Union([Type.Literal('bios'), Type.Literal('uefi')], {
  description: 'bios (SeaBIOS, the default) | uefi (OVMF, with a variable store of the VM\'s own)',
});
export type VmFirmware = Static<typeof VmFirmware>;
const hardwareFields = {
  firmware: VmFirmware,
  secureBoot: Type.Boolean({ description: 'UEFI only: Secure Boot firmware with the Microsoft-keyed variable store' }),
  tpm: Type.Boolean({ description: 'A TPM 2.0 (swtpm, its state kept with the VM)' }),
};
/** `PUT /api/vms/{vm_id}/hardware` (extension, issue 12): while the VM is stopped; omitted fields keep their value. */
export const HardwareBody = Type.Object(
  {
    firmware: Type.Optional(hardwareFields.firmware),
    secureBoot: Type.Optional(hardwareFields.secureBoot),
    tpm: Type.Optional(hardwareFields.tpm),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type HardwareBody = Static<typeof HardwareBody>;

export const Vm = Type.Object(
  {
    id: Id,
    name: Type.String(),
    cpus: Type.Integer(),
    memory: Type.Integer({ description: 'MiB' }),
    status: VmStatus,
    vnc_port: Type.Integer({ description: '5900 + VNC display; bound to 127.0.0.1 only' }),
    disks: Type.Array(VmDisk),
    iso: Type.Union([Type.String(), Type.Null()]),
    createdAt: Timestamp,
    mac: Type.String({ description: 'MAC address of the VM NIC (extension)' }),
    lastCommand: Type.Union([Type.String(), Type.Null()], {
      description: 'Command line of the last start (extension)',
    }),
    startedAt: Type.Union([Timestamp, Type.Null()], { description: 'When the running QEMU started (extension)' }),
    pid: Type.Union([Type.Integer(), Type.Null()], { description: 'QEMU pid while running (extension)' }),
    autostart: VmAutostart, // autostart (issue 15)
    ...hardwareFields, // hardware options (issue 12)
  },
  { additionalProperties: false, $id: 'Vm' },
);
export type Vm = Static<typeof Vm>;

export const VmIdParams = Type.Object({ vm_id: PathId }, { additionalProperties: false });
export type VmIdParams = Static<typeof VmIdParams>;

export const CreateVmBody = Type.Object(
  {
    name: Type.String({ pattern: VM_NAME_PATTERN, minLength: 1, maxLength: 63 }),
    cpus: Type.Integer({ minimum: 1, description: 'At most the host logical CPUs' }),
    memory: Type.Integer({ minimum: MIN_MEMORY_MIB, description: 'MiB, at most the host memory' }),
    // hardware options (issue 12, extension): bios, no Secure Boot, no TPM when omitted
    firmware: Type.Optional(hardwareFields.firmware),
    secureBoot: Type.Optional(hardwareFields.secureBoot),
    tpm: Type.Optional(hardwareFields.tpm),
  },
  { additionalProperties: false },
);
export type CreateVmBody = Static<typeof CreateVmBody>;

export const UpdateResourcesBody = Type.Object(
  {
    cpus: Type.Optional(Type.Integer({ minimum: 1 })),
    memory: Type.Optional(Type.Integer({ minimum: MIN_MEMORY_MIB })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateResourcesBody = Static<typeof UpdateResourcesBody>;

export const DeleteVmQuery = Type.Object(
  {
    force: Type.Optional(
      Type.Union([Type.Literal('true'), Type.Literal('false')], { description: 'true: power off a running VM before deleting it' }),
    ),
  },
  { additionalProperties: false },
);
export type DeleteVmQuery = Static<typeof DeleteVmQuery>;

export const DiskPathBody = Type.Object(
  { diskPath: Type.String({ minLength: 1, maxLength: 4096 }) },
  { additionalProperties: false },
);
export type DiskPathBody = Static<typeof DiskPathBody>;

/** v1's `{ diskPath }`, plus the image format (extension): required for an external qcow2 or vmdk. */
export const AttachDiskBody = Type.Object(
  {
    diskPath: Type.String({ minLength: 1, maxLength: 4096 }),
    // An external image's format, never probed. Omitted: a managed disk uses its own; an external
    // image is raw, or refused with a message naming the format to pass.
    format: Type.Optional(DiskFormat),
  },
  { additionalProperties: false },
);
export type AttachDiskBody = Static<typeof AttachDiskBody>;

export const IsoPathBody = Type.Object(
  { isoPath: Type.String({ minLength: 1, maxLength: 4096 }) },
  { additionalProperties: false },
);
export type IsoPathBody = Static<typeof IsoPathBody>;

export const ShutdownBody = Type.Object(
  {
    timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 600, description: 'Seconds to wait (default 60)' })),
    force: Type.Optional(Type.Boolean({ description: 'Power off if the guest has not stopped by the timeout' })),
  },
  { additionalProperties: false },
);
export type ShutdownBody = Static<typeof ShutdownBody>;
/** Shutdown and reboot take an optional body: none, `null` or a ShutdownBody. */
export const OptionalShutdownBody = Type.Union([ShutdownBody, Type.Null()]);
export type OptionalShutdownBody = Static<typeof OptionalShutdownBody>;

export const VmEnvelope = Type.Object({ vm: Vm }, { additionalProperties: false });
export type VmEnvelope = Static<typeof VmEnvelope>;
export const VmListEnvelope = Type.Object({ vms: Type.Array(Vm) }, { additionalProperties: false });
export type VmListEnvelope = Static<typeof VmListEnvelope>;
export const StartEnvelope = Type.Object({ vm: Vm, command: Type.String() }, { additionalProperties: false });
export type StartEnvelope = Static<typeof StartEnvelope>;
