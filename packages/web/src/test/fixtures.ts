import type { Disk, Task, Vm } from '@qemu-manager/contract';

export function vm(over: Partial<Vm> = {}): Vm {
  return {
    id: '11111111-1111-4111-8111-111111111111',
    name: 'alpha',
    cpus: 1,
    memory: 512,
    status: 'stopped',
    vnc_port: 5900,
    disks: [],
    iso: null,
    createdAt: '2025-11-28T14:00:00.000Z',
    mac: '52:54:00:12:34:56',
    lastCommand: null,
    startedAt: null,
    pid: null,
    autostart: { enabled: false, order: 0, delayS: 0 }, // autostart (issue 15)
    firmware: 'bios', secureBoot: false, tpm: false, // hardware options (issue 12)
    machine: 'q35', diskBus: 'virtio', nicModel: 'virtio', bootOrder: ['disk', 'cdrom'], osType: 'other', driversIso: null,
    template: false, cloudInit: false,
    agent: { connected: false }, // the guest agent (issue 14)
    hint: null, // the stuck-boot hint (issue 14)
    nics: [{ id: '33333333-3333-4333-8333-333333333333', network: 'user', model: 'virtio', mac: '52:54:00:12:34:56', ip: '10.0.2.15', slot: 0 }], // networks (issue 11)
    addresses: [],
    ...over,
  };
}

export function disk(over: Partial<Disk> = {}): Disk {
  return {
    id: '22222222-2222-4222-8222-222222222222',
    name: 'alpha-disk',
    size: 10,
    format: 'qcow2',
    path: '/data/disks/alpha-disk.qcow2',
    status: 'ready',
    createdAt: '2025-11-28T14:00:00.000Z',
    createdAtCompleted: '2025-11-28T14:00:01.000Z',
    error: null,
    attachedTo: null,
    ...over,
  };
}

export function task(over: Partial<Task> = {}): Task {
  return {
    id: '44444444-4444-4444-8444-444444444444',
    kind: 'disk.create',
    status: 'running',
    progress: 0.25,
    bytesDone: 256 * 1024 * 1024,
    bytesTotal: 1024 * 1024 * 1024,
    target: { vm: null, disk: '22222222-2222-4222-8222-222222222222' },
    createdAt: '2025-11-28T14:00:00.000Z',
    startedAt: '2025-11-28T14:00:01.000Z',
    endedAt: null,
    error: null,
    result: null,
    ...over,
  };
}
