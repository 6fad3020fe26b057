// The guest agent channel (issue 14) in the argv.
import { describe, expect, it } from 'vitest';
import { buildArgv, type ArgvInput } from './argv.js';

const base: ArgvInput = {
  qemuBinary: 'qemu-system-x86_64', vmId: '11111111-2222-3333-4444-555555555555', name: 'vm', cpus: 1, memoryMiB: 256,
  mac: '52:54:00:00:00:01', vnc: { socket: '/run/x/vnc.sock' }, accel: 'tcg', disks: [{ layers: [{ format: 'qcow2', fd: 4 }] }],
  iso: null, qmpSocket: '/run/x/qmp.sock', pidFile: '/run/x/qemu.pid', serialFd: 3,
};

describe('argv: guest agent channel', () => {
  it('adds virtio-serial, the socket chardev and the org.qemu.guest_agent.0 port, after every other device', () => {
    const argv = buildArgv({ ...base, agentSocket: '/run/a,b/qemu/qga.sock' });
    const devices = argv.flatMap((a, i) => (argv[i - 1] === '-device' ? [a] : []));
    expect(devices.slice(-2)).toEqual(['virtio-serial-pci,id=vserial0', 'virtserialport,bus=vserial0.0,chardev=qga0,name=org.qemu.guest_agent.0']);
    expect(argv).toContain('socket,id=qga0,path=/run/a,,b/qemu/qga.sock,server=on,wait=off');
    // the PCI devices that were there before keep their order (and so their slots)
    const without = buildArgv(base).flatMap((a, i, all) => (all[i - 1] === '-device' ? [a] : []));
    expect(devices.slice(0, -2)).toEqual(without);
  });
  it('has no channel without a socket', () => {
    expect(buildArgv(base).join(' ')).not.toContain('guest_agent');
  });
});

describe('argv: balloon (metrics, issue 14)', () => {
  it('adds the balloon device last, leaving every other device where it was', () => {
    const devices = (a: string[]) => a.flatMap((x, i) => (a[i - 1] === '-device' ? [x] : []));
    const withAgent = buildArgv({ ...base, agentSocket: '/run/x/qga.sock' });
    const argv = buildArgv({ ...base, agentSocket: '/run/x/qga.sock', balloon: true });
    expect(devices(argv).at(-1)).toBe('virtio-balloon-pci,id=balloon0');
    expect(devices(argv).slice(0, -1)).toEqual(devices(withAgent));
    expect(buildArgv(base).join(' ')).not.toContain('balloon');
  });
});
