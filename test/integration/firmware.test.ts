/**
 * Hardware options (issue 12) with real QEMU, OVMF and swtpm: a UEFI VM runs with the firmware
 * and its own variable store as pflash drives (no bootable disk: the firmware alone runs), a TPM
 * VM has a tpm-crb device backed by a swtpm that runs as the VM's unprivileged user, is gone after
 * stop and is adopted (not duplicated) across a server SIGKILL; the variable store is kept across
 * starts and removed with the VM. QMP is asked while the server is down (QEMU serves one client).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QmpClient } from '../../packages/server/src/qemu/qmp/client.js';
import { pidsWithCmdline } from '../kit/index.mjs';
import { TestServer, makeDataDir, qemuPidsOf, waitFor } from './harness.js';

const root = process.getuid?.() === 0;
const haveOvmf = fs.existsSync('/usr/share/OVMF/OVMF_CODE_4M.secboot.fd');

function uidOf(pid: number): number {
  return Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)![1]);
}

/** Live swtpm processes started for this VM (its control socket lies in the VM's run dir). */
function swtpmsOf(vmId: string): number[] {
  return pidsWithCmdline(`/run/${vmId}/qemu/swtpm.sock`)
    .filter((p) => path.basename(p.argv[0] ?? '') === 'swtpm')
    .filter((p) => {
      try {
        return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${p.pid}/status`, 'utf8'));
      } catch {
        return false;
      }
    })
    .map((p) => p.pid);
}

/** The files a process has open (the targets of /proc/<pid>/fd). */
function openFiles(pid: number): string[] {
  return fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
}

function snapshotsIn(file: string): string[] {
  const info = JSON.parse(execFileSync('qemu-img', ['info', '--force-share', '--output=json', file], { encoding: 'utf8' })) as {
    format: string;
    snapshots?: Array<{ name: string }>;
  };
  expect(info.format).toBe('qcow2');
  return (info.snapshots ?? []).map((s) => s.name);
}

let server: TestServer;
let dataDir: string;

beforeAll(async () => {
  dataDir = makeDataDir();
  server = await new TestServer(dataDir).start();
});
afterAll(async () => {
  await server?.dispose();
});

describe.skipIf(!haveOvmf)('UEFI, Secure Boot and TPM with real QEMU, OVMF and swtpm', () => {
  it('a UEFI VM runs the firmware from pflash with its own qcow2 variable store, kept across starts, removed with the VM', async () => {
    const vm = (await server.api('POST', '/vms', { name: 'fw-uefi', cpus: 1, memory: 128, firmware: 'uefi' })).body.vm;
    expect(vm).toMatchObject({ firmware: 'uefi', secureBoot: false, tpm: false });
    const started = await server.api('POST', `/vms/${vm.id}/start`);
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const pid = started.body.vm.pid as number;
    expect(started.body.command).toContain('q35,pflash0=fw-code,pflash1=fw-vars');
    expect(started.body.command).not.toContain('smm=on');
    const vars = path.join(dataDir, 'vms', vm.id, 'efivars.qcow2');
    // QEMU holds the firmware code and the VM's store by descriptor; neither path is in its argv
    const files = openFiles(pid);
    expect(files).toContain('/usr/share/OVMF/OVMF_CODE_4M.fd');
    expect(files).toContain(vars);
    expect(started.body.command).not.toContain('OVMF');
    expect(fs.statSync('/usr/share/OVMF/OVMF_CODE_4M.fd').uid).toBe(0); // never chowned
    expect(fs.statSync(vars).uid).toBe(0);
    expect(swtpmsOf(vm.id)).toEqual([]);
    expect((await server.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);

    // the store is the VM's: a mark made in it (an internal snapshot) is still there after the next start
    const inode = fs.statSync(vars).ino;
    execFileSync('qemu-img', ['snapshot', '-c', 'kept-mark', vars]);
    const again = await server.api('POST', `/vms/${vm.id}/start`);
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(snapshotsIn(vars)).toEqual(['kept-mark']);
    expect(fs.statSync(vars).ino).toBe(inode);
    expect((await server.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);

    // back to BIOS, with a TPM: no firmware drives, one swtpm
    expect((await server.api('PUT', `/vms/${vm.id}/hardware`, { firmware: 'bios', tpm: true })).status).toBe(200);
    const bios = await server.api('POST', `/vms/${vm.id}/start`);
    expect(bios.status, JSON.stringify(bios.body)).toBe(200);
    expect(bios.body.command).not.toContain('pflash');
    expect(bios.body.command).toContain('tpm-crb,tpmdev=tpm0');
    expect(openFiles(bios.body.vm.pid).some((f) => f.includes('OVMF'))).toBe(false);
    expect(swtpmsOf(vm.id)).toHaveLength(1);
    expect((await server.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    expect(swtpmsOf(vm.id)).toEqual([]);

    expect((await server.api('DELETE', `/vms/${vm.id}`)).status).toBe(200);
    expect(fs.existsSync(path.join(dataDir, 'vms', vm.id))).toBe(false);
  });

  it('a Secure Boot + TPM VM: swtpm as the VM user, tpm-crb over QMP, adopted across a server SIGKILL, gone after stop', async () => {
    const vm = (await server.api('POST', '/vms', { name: 'fw-win', cpus: 1, memory: 128, firmware: 'uefi', secureBoot: true, tpm: true })).body.vm;
    const started = await server.api('POST', `/vms/${vm.id}/start`);
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const pid = started.body.vm.pid as number;
    expect(started.body.command).toContain('q35,smm=on,pflash0=fw-code,pflash1=fw-vars');
    expect(started.body.command).toContain('driver=cfi.pflash01,property=secure,value=on');
    expect(started.body.command).toContain('tpm-crb,tpmdev=tpm0');
    expect(openFiles(pid)).toContain('/usr/share/OVMF/OVMF_CODE_4M.secboot.fd');
    expect(openFiles(pid)).toContain(path.join(dataDir, 'vms', vm.id, 'efivars-secboot.qcow2'));

    const tpms = swtpmsOf(vm.id);
    expect(tpms).toHaveLength(1);
    const swtpm = tpms[0];
    const tpmDir = path.join(dataDir, 'vms', vm.id, 'tpm');
    if (root) {
      expect(uidOf(pid)).not.toBe(0);
      expect(uidOf(swtpm)).toBe(uidOf(pid)); // the VM's own unprivileged user
      expect(fs.statSync(tpmDir).uid).toBe(uidOf(pid));
    }

    // the server dies; QEMU and its swtpm keep running, and QMP is free for us
    await server.kill('SIGKILL');
    expect(qemuPidsOf(dataDir)).toEqual([pid]);
    expect(swtpmsOf(vm.id)).toEqual([swtpm]);
    const qmp = await QmpClient.connect(path.join(dataDir, 'run', vm.id, 'qmp.sock'), { timeoutMs: 5000 });
    try {
      const tpm = await qmp.execute<Array<{ id: string; model: string; options: { type: string } }>>('query-tpm');
      expect(tpm).toEqual([expect.objectContaining({ id: 'tpm0', model: 'tpm-crb', options: expect.objectContaining({ type: 'emulator' }) })]);
      const nodes = await qmp.execute<Array<{ 'node-name': string; drv: string; ro: boolean }>>('query-named-block-nodes');
      const byName = Object.fromEntries(nodes.map((n) => [n['node-name'], n]));
      expect(byName['fw-code']).toMatchObject({ drv: 'raw', ro: true });
      expect(byName['fw-vars']).toMatchObject({ drv: 'qcow2', ro: false });
      expect((await qmp.execute<{ status: string }>('query-status')).status).toBe('running');
    } finally {
      qmp.close();
    }

    server = await new TestServer(dataDir).start();
    expect((await server.api('GET', `/vms/${vm.id}`)).body.vm).toMatchObject({ status: 'running', pid });
    expect(swtpmsOf(vm.id)).toEqual([swtpm]); // adopted, not a second one

    expect((await server.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    expect(qemuPidsOf(dataDir)).toEqual([]);
    expect(swtpmsOf(vm.id)).toEqual([]);
    // the TPM state stays with the VM, given back to the server
    expect(fs.readdirSync(tpmDir)).toContain('tpm2-00.permall');
    expect(fs.statSync(tpmDir).uid).toBe(process.getuid?.() ?? 0);

    // a change while it runs is refused and changes nothing
    expect((await server.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
    expect(swtpmsOf(vm.id)).toHaveLength(1);
    const refused = await server.api('PUT', `/vms/${vm.id}/hardware`, { tpm: false });
    expect(refused).toMatchObject({ status: 409, body: { code: 'VM_NOT_STOPPED' } });
    expect((await server.api('DELETE', `/vms/${vm.id}?force=true`)).status).toBe(200);
    expect(qemuPidsOf(dataDir)).toEqual([]);
    expect(swtpmsOf(vm.id)).toEqual([]);
    expect(fs.existsSync(path.join(dataDir, 'vms', vm.id))).toBe(false);
  });

  it('a running UEFI VM with a qcow2 disk takes a snapshot with memory and reverts to it', async () => {
    const task = async (r: { status: number; body: any }): Promise<any> => {
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      const id = r.body.task.id as string;
      return waitFor(async () => {
        const t = (await server.api('GET', `/tasks/${id}`)).body.task;
        return ['succeeded', 'failed', 'cancelled'].includes(t.status) && t;
      }, 120_000, `task ${id}`);
    };
    const disk = await server.api('POST', '/disks', { name: 'fw-disk', size: 1, format: 'qcow2' });
    expect(disk.status, JSON.stringify(disk.body)).toBe(201);
    expect(await task({ status: 202, body: disk.body })).toMatchObject({ status: 'succeeded' });
    const vm = (await server.api('POST', '/vms', { name: 'fw-snap', cpus: 1, memory: 128, firmware: 'uefi' })).body.vm;
    expect((await server.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: disk.body.disk.path })).status).toBe(200);
    expect((await server.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
    const saved = await task(await server.api('POST', `/vms/${vm.id}/snapshots`, { name: 'uefi-live', includeMemory: true }));
    expect(saved, JSON.stringify(saved)).toMatchObject({ status: 'succeeded' });
    const reverted = await task(await server.api('POST', `/vms/${vm.id}/snapshots/uefi-live/revert`));
    expect(reverted, JSON.stringify(reverted)).toMatchObject({ status: 'succeeded' });
    expect((await server.api('GET', `/vms/${vm.id}`)).body.vm.status).toBe('running');
    expect((await server.api('DELETE', `/vms/${vm.id}?force=true`)).status).toBe(200);
  });
});
