/**
 * Power actions and what QEMU reports, on real QEMU: ACPI shutdown of a real guest, reboot, a QEMU
 * that dies, pause/resume/reset, concurrent starts (also during a reboot), failed starts, a VNC port taken by another program.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READY_MARKER } from '../guest/index.js';
import { EventLog, TestServer, holdPort, startGuestServer, qemuPidsOf, serialLog, vncBanner, waitFor } from './harness.js';

let server: TestServer;
let events: EventLog;
let isoPath: string;

beforeAll(async () => {
  ({ server, events, isoPath } = await startGuestServer());
});

afterAll(async () => {
  await events?.close();
  await server?.dispose();
});

let n = 0;
async function tinyVm(memory = 96): Promise<any> {
  const r = await server.api('POST', '/vms', { name: `tiny-${++n}`, cpus: 1, memory });
  expect(r.status).toBe(201);
  return r.body.vm;
}

const getVm = async (id: string) => (await server.api('GET', `/vms/${id}`)).body.vm;

describe('a real guest', () => {
  let id: string;

  it('ACPI shutdown makes the guest power off and the VM stopped', async () => {
    const vm = await tinyVm(256);
    id = vm.id;
    await server.api('POST', `/vms/${id}/iso/mount`, { isoPath });
    expect((await server.api('POST', `/vms/${id}/start`)).status).toBe(200);
    await waitFor(() => serialLog(server.dataDir, id).includes(READY_MARKER), 90_000, 'guest READY');
    const r = await server.api('POST', `/vms/${id}/shutdown`, { timeout: 30, mode: 'acpi' }); // the button itself (the default tries the guest agent first)
    expect(r.status).toBe(200);
    expect(r.body.vm.status).toBe('stopped');
    expect(serialLog(server.dataDir, id)).toContain('TESTGUEST_POWEROFF'); // the guest's power-button handler ran
    expect(qemuPidsOf(server.dataDir)).toEqual([]);
    await waitFor(() => events.statusesOf(id).at(-1) === 'stopped', 2000, 'stopped event');
    const seen = events.statusesOf(id);
    // the guest's power-off is seen through QMP's SHUTDOWN event, then the exit
    expect(seen.lastIndexOf('stopping')).toBeGreaterThan(seen.lastIndexOf('running'));
  });

  it('reboot: shuts the guest down gracefully and starts it again', async () => {
    expect((await server.api('POST', `/vms/${id}/start`)).status).toBe(200);
    const firstPid = (await getVm(id)).pid;
    await waitFor(() => serialLog(server.dataDir, id).includes(READY_MARKER), 90_000, 'guest READY');
    let rebooted: { status: number; body: any } | null = null;
    const rebooting = server.api('POST', `/vms/${id}/reboot`, { timeout: 30 }).then((x) => (rebooted = x));
    // Starts, one after the other, while the reboot runs: the reboot holds the VM's lock from the
    // guest's power-off through the new QEMU's start, so each one is refused with 409 VM_BUSY (a
    // start before the reboot takes the lock, or after it answered, finds the VM running).
    const answers: string[] = [];
    const afterwards: string[] = [];
    while (rebooted === null) {
      const s = await server.api('POST', `/vms/${id}/start`);
      (rebooted === null ? answers : afterwards).push(`${s.status} ${s.body.code}`);
      await new Promise((res) => setTimeout(res, 20));
    }
    const r = await rebooting;
    expect(r.status).toBe(200);
    expect(r.body.vm.status).toBe('running');
    expect(r.body.vm.pid).not.toBe(firstPid);
    expect(answers.join(',')).toMatch(/^(409 VM_NOT_STOPPED,)*409 VM_BUSY(,409 VM_BUSY)*$/);
    for (const a of afterwards) expect(a).toMatch(/^409 (VM_BUSY|VM_NOT_STOPPED)$/);
    await waitFor(() => events.statusesOf(id).at(-1) === 'running', 5000, 'running event');
    const seen = events.statusesOf(id);
    expect(seen.slice(seen.lastIndexOf('stopping'))).toEqual(expect.arrayContaining(['stopped', 'starting', 'running']));
    expect(qemuPidsOf(server.dataDir)).toEqual([r.body.vm.pid]);
    await waitFor(() => serialLog(server.dataDir, id).includes(READY_MARKER), 90_000, 'guest READY after reboot');
    expect((await server.api('POST', `/vms/${id}/stop`)).status).toBe(200);
  });
});

describe('power actions on a VM without an OS', () => {
  it('a QEMU that dies makes the VM stopped, seen through QMP', async () => {
    const vm = await tinyVm();
    const started = await server.api('POST', `/vms/${vm.id}/start`);
    process.kill(started.body.vm.pid, 'SIGKILL');
    await waitFor(async () => (await getVm(vm.id)).status === 'stopped', 5000, 'stopped after kill');
    expect((await getVm(vm.id)).pid).toBeNull();
  });

  it('pause, resume and reset follow QMP; actions that do not fit the state get 409', async () => {
    const vm = await tinyVm();
    expect((await server.api('POST', `/vms/${vm.id}/pause`)).body.code).toBe('VM_NOT_RUNNING');
    await server.api('POST', `/vms/${vm.id}/start`);
    expect((await server.api('POST', `/vms/${vm.id}/resume`)).status).toBe(409);
    const p = await server.api('POST', `/vms/${vm.id}/pause`);
    expect(p.status).toBe(200);
    expect(p.body.vm.status).toBe('paused');
    const banner = await vncBanner(server.url, vm.id); // the console works while paused
    expect(banner).toMatch(/^RFB/);
    const r = await server.api('POST', `/vms/${vm.id}/resume`);
    expect(r.body.vm.status).toBe('running');
    const reset = await server.api('POST', `/vms/${vm.id}/reset`);
    expect(reset.status).toBe(200);
    expect(reset.body.vm.status).toBe('running');
    expect((await server.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    expect((await server.api('POST', `/vms/${vm.id}/stop`)).body.code).toBe('VM_NOT_RUNNING');
  });

  it('shutdown of a guest that ignores ACPI: 409 after the timeout, power-off with force', async () => {
    const vm = await tinyVm();
    await server.api('POST', `/vms/${vm.id}/start`);
    const soft = await server.api('POST', `/vms/${vm.id}/shutdown`, { timeout: 1 });
    expect(soft.status).toBe(409);
    expect(soft.body.code).toBe('TIMEOUT');
    expect((await getVm(vm.id)).status).toBe('running');
    const forced = await server.api('POST', `/vms/${vm.id}/shutdown`, { timeout: 1, force: true });
    expect(forced.status).toBe(200);
    expect(forced.body.vm.status).toBe('stopped');
  });

  it('concurrent starts give one QEMU and clean 409s', async () => {
    const vm = await tinyVm();
    const results = await Promise.all(Array.from({ length: 6 }, () => server.api('POST', `/vms/${vm.id}/start`)));
    const codes = results.map((r) => r.status).sort();
    expect(codes).toEqual([200, 409, 409, 409, 409, 409]);
    for (const r of results.filter((x) => x.status === 409)) expect(['VM_BUSY', 'VM_NOT_STOPPED']).toContain(r.body.code);
    const mine = qemuPidsOf(server.dataDir).filter((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(vm.id));
    expect(mine).toHaveLength(1);
    await server.api('POST', `/vms/${vm.id}/stop`);
  });

  it('a failed start says why in QEMU words, and the VM stays stopped', async () => {
    const vm = await tinyVm();
    const d = await server.api('POST', '/disks', { name: 'broken', size: 1, format: 'qcow2' });
    const disk = await waitFor(async () => {
      const x = (await server.api('GET', `/disks/${d.body.disk.id}`)).body.disk;
      return x.status === 'ready' && x;
    }, 10_000, 'disk ready');
    expect((await server.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: disk.path })).status).toBe(200);
    // corrupt the qcow2 header after attaching, where only QEMU looks: an unaligned L1 table offset (offset 40)
    const fd = fs.openSync(disk.path, 'r+');
    fs.writeSync(fd, Buffer.from([0, 0, 0, 0, 0, 3, 0, 1]), 0, 8, 40);
    fs.closeSync(fd);
    const before = qemuPidsOf(server.dataDir).length;
    const r = await server.api('POST', `/vms/${vm.id}/start`);
    expect(r.status).toBe(422);
    expect(r.body.code).toBe('QEMU_START_FAILED');
    expect(r.body.error).toMatch(/L1 table offset invalid/i);
    expect((await getVm(vm.id)).status).toBe('stopped');
    expect(qemuPidsOf(server.dataDir).length).toBe(before);
  });

  it('a TCP port taken by another program does not matter: VNC is on a unix socket, vnc_port is kept', async () => {
    const vm = await tinyVm();
    const blocker = await holdPort(vm.vnc_port);
    try {
      const r = await server.api('POST', `/vms/${vm.id}/start`);
      expect(r.status).toBe(200);
      expect(r.body.vm.vnc_port).toBe(vm.vnc_port);
      expect(await vncBanner(server.url, vm.id)).toMatch(/^RFB/);
      expect((await server.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    } finally {
      if (blocker.listening) await new Promise((r) => blocker.close(r));
    }
  });

  it('delete refuses a running VM, and ?force=true powers it off first', async () => {
    const vm = await tinyVm();
    await server.api('POST', `/vms/${vm.id}/start`);
    const refused = await server.api('DELETE', `/vms/${vm.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('VM_NOT_STOPPED');
    const forced = await server.api('DELETE', `/vms/${vm.id}?force=true`);
    expect(forced.status).toBe(200);
    expect((await server.api('GET', `/vms/${vm.id}`)).status).toBe(404);
    expect(qemuPidsOf(server.dataDir).filter((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(vm.id))).toEqual([]);
  });

  it('the console of a stopped VM is refused before the upgrade', async () => {
    const vm = await tinyVm();
    await expect(vncBanner(server.url, vm.id)).rejects.toThrow(/409/);
  });
});
