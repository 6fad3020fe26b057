// hardware options (issue 12): the argv of BIOS, UEFI, Secure Boot and TPM VMs.
import { describe, expect, it } from 'vitest';
import { buildArgv, type ArgvInput } from './argv.js';
import { ovmfFiles, varsFile } from './firmware.js';
import { swtpmArgs } from './swtpm.js';

const base: ArgvInput = {
  qemuBinary: 'qemu-system-x86_64',
  vmId: '0b7e6c1e-2f4a-4a8e-9a43-2d5c1c0e9f10',
  name: 'fw',
  cpus: 1,
  memoryMiB: 256,
  mac: '52:54:00:aa:bb:cc',
  vnc: { socket: '/data/run/x/qemu/vnc.sock' },
  accel: 'tcg',
  disks: [{ layers: [{ format: 'qcow2', fd: 4 }] }],
  iso: null,
  qmpSocket: '/data/run/x/qemu/qmp.sock',
  pidFile: '/data/run/x/qemu/qemu.pid',
  serialFd: 3,
};

const after = (argv: string[], flag: string) => argv.filter((_, i) => argv[i - 1] === flag);
const blockdevs = (argv: string[]) => after(argv, '-blockdev').map((j) => JSON.parse(j) as Record<string, unknown>);

describe('buildArgv: firmware and TPM', () => {
  it('BIOS (the default): plain q35, no pflash, no TPM, no secure global', () => {
    for (const argv of [buildArgv(base), buildArgv({ ...base, uefi: null, tpm: null })]) {
      expect(after(argv, '-machine')).toEqual(['q35']);
      expect(argv).not.toContain('-global');
      expect(argv).not.toContain('-tpmdev');
      expect(blockdevs(argv).map((b) => b['node-name'])).toEqual(['disk0']);
    }
  });

  it('UEFI: pflash0 = the code (raw, read-only), pflash1 = the VM store (qcow2, writable, no backing), both by descriptor', () => {
    const argv = buildArgv({ ...base, uefi: { codeFd: 5, varsFd: 6, secureBoot: false } });
    expect(after(argv, '-machine')).toEqual(['q35,pflash0=fw-code,pflash1=fw-vars']);
    expect(argv).not.toContain('-global');
    expect(after(argv, '-add-fd')).toEqual(['fd=3,set=3', 'fd=4,set=4', 'fd=5,set=5', 'fd=6,set=6']);
    const [code, vars] = blockdevs(argv).filter((b) => String(b['node-name']).startsWith('fw-'));
    expect(code).toEqual({ driver: 'raw', 'node-name': 'fw-code', 'read-only': true, file: { driver: 'file', filename: '/dev/fdset/5', 'read-only': true } });
    expect(vars).toEqual({ driver: 'qcow2', 'node-name': 'fw-vars', file: { driver: 'file', filename: '/dev/fdset/6', discard: 'unmap' }, backing: null });
    // no path of the firmware ever reaches QEMU
    expect(argv.join(' ')).not.toMatch(/OVMF|\/usr\/share/);
  });

  it('Secure Boot: SMM on and the pflash secure property', () => {
    const argv = buildArgv({ ...base, uefi: { codeFd: 5, varsFd: 6, secureBoot: true } });
    expect(after(argv, '-machine')).toEqual(['q35,smm=on,pflash0=fw-code,pflash1=fw-vars']);
    expect(after(argv, '-global')).toEqual(['driver=cfi.pflash01,property=secure,value=on']);
  });

  it('a firmware descriptor may not collide with another', () => {
    expect(() => buildArgv({ ...base, uefi: { codeFd: 4, varsFd: 6, secureBoot: false } })).toThrow(/distinct/);
    expect(() => buildArgv({ ...base, uefi: { codeFd: 5, varsFd: 5, secureBoot: false } })).toThrow(/distinct/);
  });

  it('TPM: the swtpm control socket as a chardev, the emulator backend and a tpm-crb device', () => {
    const argv = buildArgv({ ...base, tpm: { socket: '/data/run/x,y/qemu/swtpm.sock' } });
    expect(after(argv, '-chardev')).toContain('socket,id=chrtpm,path=/data/run/x,,y/qemu/swtpm.sock');
    expect(after(argv, '-tpmdev')).toEqual(['emulator,id=tpm0,chardev=chrtpm']);
    expect(after(argv, '-device')).toContain('tpm-crb,tpmdev=tpm0');
  });

  it('the Debian OVMF files and the per-VM store names', () => {
    expect(ovmfFiles('/usr/share/OVMF', false)).toEqual({ code: '/usr/share/OVMF/OVMF_CODE_4M.fd', varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.fd' });
    expect(ovmfFiles('/usr/share/OVMF', true)).toEqual({ code: '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd', varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd' });
    expect(varsFile('/d/vms/1', false)).toBe('/d/vms/1/efivars.qcow2');
    expect(varsFile('/d/vms/1', true)).toBe('/d/vms/1/efivars-secboot.qcow2');
    expect(swtpmArgs('/d/vms/1/tpm', '/d/run/1/qemu/swtpm.sock')).toEqual([
      'socket', '--tpm2', '--tpmstate', 'dir=/d/vms/1/tpm,mode=0600', '--ctrl', 'type=unixio,path=/d/run/1/qemu/swtpm.sock,mode=0600', '--terminate',
    ]);
  });
});
