import { Type, type Static } from '@sinclair/typebox';
import { Id, PathId, Timestamp } from './common.js';
import { DiskFormat } from './disks.js';
import { CloudInitBody } from './cloud-init.js';
import { NicModel, Nic, VmAddress } from './networks.js';

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
export const VmMachine = Type.Union([Type.Literal('q35'), Type.Literal('pc')], { description: 'q35 (PCIe, the default) | pc (i440FX)' });
export type VmMachine = Static<typeof VmMachine>;
export const VmDiskBus = Type.Union([Type.Literal('virtio'), Type.Literal('sata'), Type.Literal('scsi')], {
  description: 'virtio (virtio-blk, the default) | sata (AHCI on q35, IDE on pc) | scsi (virtio-scsi)',
});
export type VmDiskBus = Static<typeof VmDiskBus>;
export const BootDevice = Type.Union([Type.Literal('disk'), Type.Literal('cdrom'), Type.Literal('network')]);
export type BootDevice = Static<typeof BootDevice>;
export const BootOrder = Type.Array(BootDevice, {
  minItems: 1,
  maxItems: 3,
  uniqueItems: true,
  description: 'Boot devices in order; the ones left out are not booted from',
});
export type BootOrder = Static<typeof BootOrder>;
export const OsType = Type.Union([Type.Literal('linux'), Type.Literal('windows'), Type.Literal('other')], {
  description: 'Presets applied at create: linux = virtio everything; windows = UEFI + Secure Boot + TPM + SATA + e1000e + the virtio-win ISO; other = the defaults',
});
export type OsType = Static<typeof OsType>;
const hardwareFields = {
  firmware: VmFirmware,
  secureBoot: Type.Boolean({ description: 'UEFI only: Secure Boot firmware with the Microsoft-keyed variable store' }),
  tpm: Type.Boolean({ description: 'A TPM 2.0 (swtpm, its state kept with the VM)' }),
  machine: VmMachine,
  diskBus: VmDiskBus,
  nicModel: NicModel,
  bootOrder: BootOrder,
  osType: OsType,
  driversIso: Type.Union([Type.String({ minLength: 1, maxLength: 4096 }), Type.Null()], {
    description: 'A second, read-only CD-ROM (e.g. the virtio-win drivers ISO): a path under a storage root, or null',
  }),
};
/** `PUT /api/vms/{vm_id}/hardware` (extension, issue 12): while the VM is stopped; omitted fields keep their value. */
export const HardwareBody = Type.Object(
  {
    firmware: Type.Optional(hardwareFields.firmware),
    secureBoot: Type.Optional(hardwareFields.secureBoot),
    tpm: Type.Optional(hardwareFields.tpm),
    machine: Type.Optional(hardwareFields.machine),
    diskBus: Type.Optional(hardwareFields.diskBus),
    nicModel: Type.Optional(hardwareFields.nicModel),
    bootOrder: Type.Optional(hardwareFields.bootOrder),
    osType: Type.Optional(hardwareFields.osType),
    driversIso: Type.Optional(hardwareFields.driversIso),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type HardwareBody = Static<typeof HardwareBody>;

/** The stuck-boot hint (issue 14): what the server guesses from the screen, the CPU and the VM's media. */
export const VmHint = Type.Object(
  {
    kind: Type.Union([Type.Literal('no-boot-device'), Type.Literal('idle-screen')], {
      description: 'no-boot-device: the VM has no disk, no CD-ROM medium and no network boot, so the firmware finds nothing to boot; idle-screen: the screen has not changed and the CPU was idle (< 5 % of a core) for HINT_IDLE_MS (waiting at a boot menu or prompt)',
    }),
    since: Timestamp,
  },
  { additionalProperties: false, description: 'The stuck-boot hint (issue 14)' },
);
export type VmHint = Static<typeof VmHint>;

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
    template: Type.Boolean({ description: 'A template: its disks are read-only bases, it cannot start; new VMs are linked clones of it (issue 12)' }),
    cloudInit: Type.Boolean({ description: 'A cloud-init config is set: a NoCloud seed is attached at each start (issue 12)' }),
    agent: Type.Object(
      { connected: Type.Boolean({ description: 'The guest agent answered its last check (details: GET /api/vms/{vm_id}/agent)' }) },
      { additionalProperties: false, description: 'The guest agent (issue 14)' },
    ),
    hint: Type.Union([VmHint, Type.Null()], { description: 'A running VM that looks stuck at boot (issue 14); null otherwise' }),
    // networks (issue 11): `mac` and `nicModel` above are the first NIC's (kept when a VM has none)
    nics: Type.Array(Nic, { description: 'The VM\'s NICs in slot order (issue 11)' }),
    addresses: Type.Array(VmAddress, { description: 'What the server knows of the VM\'s addresses: DHCP leases, the user-mode address, the guest agent\'s (issue 11)' }),
  },
  { additionalProperties: false, $id: 'Vm' },
);
export type Vm = Static<typeof Vm>;

export const VmIdParams = Type.Object({ vm_id: PathId }, { additionalProperties: false });
export type VmIdParams = Static<typeof VmIdParams>;

export const CreateVmBody = Type.Object(
  {
    name: Type.String({ pattern: VM_NAME_PATTERN, minLength: 1, maxLength: 63 }),
    // v1: required. Only a create from a template may omit them (it takes the template's).
    cpus: Type.Optional(Type.Integer({ minimum: 1, description: 'At most the host logical CPUs; required unless `template` is given' })),
    memory: Type.Optional(Type.Integer({ minimum: MIN_MEMORY_MIB, description: 'MiB, at most the host memory; required unless `template` is given' })),
    // hardware options (issue 12, extension): when omitted, the osType preset's (or the defaults:
    // bios, no Secure Boot, no TPM, q35, virtio disk and NIC, boot from disk then cdrom)
    firmware: Type.Optional(hardwareFields.firmware),
    secureBoot: Type.Optional(hardwareFields.secureBoot),
    tpm: Type.Optional(hardwareFields.tpm),
    machine: Type.Optional(hardwareFields.machine),
    diskBus: Type.Optional(hardwareFields.diskBus),
    nicModel: Type.Optional(hardwareFields.nicModel),
    bootOrder: Type.Optional(hardwareFields.bootOrder),
    osType: Type.Optional(hardwareFields.osType),
    driversIso: Type.Optional(hardwareFields.driversIso),
    // from an image (issue 12): a copy of the image (linked unless linkedDisk is false) grown to
    // diskSize GB becomes the VM's first disk; the answer is then 202 { task } (kind vm.create)
    image: Type.Optional(Type.String({ minLength: 1, maxLength: 63, description: 'Name of an image in GET /api/images' })),
    diskSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 65536, description: 'GB; at least the image\'s size (default: the image\'s size)' })),
    linkedDisk: Type.Optional(Type.Boolean({ description: 'true (default): a qcow2 overlay on the image; false: a full copy' })),
    cloudInit: Type.Optional(CloudInitBody),
    // from a template (issue 12): a linked clone with a new MAC, VNC port and instance-id; 202 { task }
    template: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Id of a template VM' })),
    // networks (issue 11): the first NIC's network (id or name); default `user`
    network: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Network id or name of the VM\'s first NIC (default: user)' })),
  },
  {
    additionalProperties: false,
    // v1 requires cpus and memory; only a create from a template may leave them out.
    if: { not: { required: ['template'] } },
    then: { required: ['cpus', 'memory'] },
  },
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
    // the guest agent (issue 14)
    mode: Type.Optional(Type.Union([Type.Literal('agent'), Type.Literal('acpi')], {
      description: 'agent: guest-shutdown through the guest agent (409 AGENT_UNAVAILABLE when it does not answer); acpi: the power button. Default: the agent when it answers, else the power button',
    })),
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
