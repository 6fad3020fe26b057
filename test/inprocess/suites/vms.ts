/** The VM routes: definitions, power actions, disks and media, over the fake runtime. */
import { MessageBody, StartEnvelope, VmEnvelope, VmListEnvelope, ConsoleTicket, Health, type Vm } from '@qemu-manager/contract';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../packages/server/src/lib/errors.js';
import { startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

/** A buffer an ISO 9660 reader accepts: "CD001" in the descriptor at sector 16. */
export function isoBytes(size = 64 * 1024): Buffer {
  const b = Buffer.alloc(size);
  b.write('CD001', 16 * 2048 + 1, 'latin1');
  return b;
}

export function vmSuite(): void {
  describe('VM routes', () => {
    let s: InProcessServer;
    const create = async (name: string, cpus = 1, memory = 64): Promise<Vm> => {
      const r = await s.api('POST', '/vms', { name, cpus, memory });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return (r.body as VmEnvelope).vm;
    };
    const status = async (id: string) => ((await s.api('GET', `/vms/${id}`)).body as VmEnvelope).vm.status;

    beforeAll(async () => {
      s = await startInProcess();
    });
    afterAll(async () => {
      await s.close();
    });

    it('GET /health without authentication gives the details (v1 shape plus extensions)', async () => {
      const r = await s.api('GET', '/health');
      expect(r.status).toBe(200);
      expectShape(Health, r.body);
      expect(r.body).toMatchObject({ status: 'ok', qemu: { version: '7.2.0-fake', accel: 'tcg' }, host: { cpus: os.cpus().length } });
    });

    it('GET /vms lists nothing, then POST /vms creates a stopped VM in the v1 shape', async () => {
      const empty = await s.api('GET', '/vms');
      expect(empty.status).toBe(200);
      expect(empty.body).toEqual({ vms: [] });
      const r = await s.api('POST', '/vms', { name: 'web', cpus: 1, memory: 128 });
      expect(r.status).toBe(201);
      expectShape(VmEnvelope, r.body);
      const vm = (r.body as VmEnvelope).vm;
      expect(vm).toMatchObject({ name: 'web', cpus: 1, memory: 128, status: 'stopped', vnc_port: 5900, disks: [], iso: null, pid: null });
      const list = await s.api('GET', '/vms');
      expectShape(VmListEnvelope, list.body);
      expect((list.body as VmListEnvelope).vms.map((v) => v.id)).toEqual([vm.id]);
      const one = await s.api('GET', `/vms/${vm.id}`);
      expect(one.status).toBe(200);
      expect(one.body).toEqual({ vm });
      expectError(await s.api('POST', '/vms', { name: 'web', cpus: 1, memory: 64 }), 'NAME_TAKEN', 409, 'A VM named web already exists');
      expect((await create('web2')).vnc_port).toBe(5901);
    });

    it('refuses resources the host cannot give with 400 VALIDATION naming the bound', async () => {
      const cpus = os.cpus().length;
      expectError(await s.api('POST', '/vms', { name: 'huge', cpus: cpus + 1, memory: 64 }), 'VALIDATION', 400, `cpus must be at most ${cpus} (the host's logical CPUs)`);
      const mem = Math.floor(os.totalmem() / 1048576);
      expectError(await s.api('POST', '/vms', { name: 'huge', cpus: 1, memory: mem + 1 }), 'VALIDATION', 400, `memory must be at most ${mem} MiB (the host's memory)`);
      expect(((await s.api('GET', '/vms')).body as VmListEnvelope).vms.some((v) => v.name === 'huge')).toBe(false);
    });

    it('unknown ids of any form are 404 VM_NOT_FOUND on every VM route', async () => {
      expectError(await s.api('GET', '/vms/uuid-123'), 'VM_NOT_FOUND', 404, 'VM not found: uuid-123');
      expectError(await s.api('POST', '/vms/not-a-uuid/start'), 'VM_NOT_FOUND', 404, 'VM not found: not-a-uuid');
      const id = '6f1c1b2e-0d7e-4b8a-9b0a-3d2f1e0c9a77';
      const calls: Array<[string, string, unknown?]> = [
        ['GET', ''],
        ['DELETE', ''],
        ['DELETE', '?force=true'],
        ['POST', '/start'],
        ['POST', '/stop'],
        ['POST', '/shutdown', {}],
        ['POST', '/reboot', {}],
        ['POST', '/reset'],
        ['POST', '/pause'],
        ['POST', '/resume'],
        ['PATCH', '/resources', { cpus: 1 }],
        ['POST', '/disks/attach', { diskPath: '/nowhere.img' }],
        ['POST', '/disks/detach', { diskPath: '/nowhere.img' }],
        ['POST', '/iso/mount', { isoPath: '/nowhere.iso' }],
        ['POST', '/iso/unmount'],
        ['POST', '/console'],
      ];
      for (const vmId of [id, 'x', '..%2F..', '0']) {
        for (const [method, suffix, body] of calls) {
          const r = await s.api(method, `/vms/${vmId}${suffix}`, body);
          expect({ route: `${method} ${suffix}`, status: r.status }).toEqual({ route: `${method} ${suffix}`, status: 404 });
          expectError(r, 'VM_NOT_FOUND', 404, `VM not found: ${decodeURIComponent(vmId)}`);
        }
      }
      expect(s.runtime.launches).toEqual([]);
    });

    it('regression: validation messages replaced by a generic word (unknown field, missing field, bad name, wrong type)', async () => {
      const before = ((await s.api('GET', '/vms')).body as VmListEnvelope).vms.length;
      const cases: Array<[unknown, string]> = [
        [{ name: 'ok', cpus: 1, memory: 64, color: 'red' }, 'body has an unknown field: color'],
        [{ name: 'ok', cpus: 1 }, 'body is missing the field: memory'],
        [{ name: '-leading-dash', cpus: 1, memory: 64 }, 'body.name may only contain letters, digits, dot, dash and underscore, starting with a letter or digit (max 63)'],
        [{ name: 'has space', cpus: 1, memory: 64 }, 'body.name may only contain letters, digits, dot, dash and underscore, starting with a letter or digit (max 63)'],
        [{ name: 'ok', cpus: '2', memory: 64 }, 'body.cpus must be integer'],
        [{ name: 'ok', cpus: 1, memory: 8 }, 'body.memory must be >= 16'],
      ];
      for (const [body, message] of cases) expectError(await s.api('POST', '/vms', body), 'VALIDATION', 400, message);
      expectError(await s.api('POST', '/disks', { name: 'd', size: 1 }), 'VALIDATION', 400, 'body is missing the field: format');
      expectError(await s.api('POST', '/disks', { name: 'd e', size: 1, format: 'raw' }), 'VALIDATION', 400, 'body.name may only contain letters, digits, dot, dash and underscore, starting with a letter or digit (max 63)');
      expectError(await s.api('POST', '/disks', { name: 'd', size: 1.5, format: 'raw' }), 'VALIDATION', 400, 'body.size must be integer');
      expectError(await s.api('POST', '/vms/x/disks/attach', { diskPath: '/a.img', path: '/a.img' }), 'VALIDATION', 400, 'body has an unknown field: path');
      expectError(await s.api('POST', '/vms/x/iso/mount', {}), 'VALIDATION', 400, 'body is missing the field: isoPath');
      expect(((await s.api('GET', '/vms')).body as VmListEnvelope).vms.length).toBe(before);
    });

    it('an unknown route is 404 NOT_FOUND naming it', async () => {
      expectError(await s.api('GET', '/nope'), 'NOT_FOUND', 404, 'Not found: GET /api/nope');
      expectError(await s.api('POST', '/vms/x/teleport'), 'NOT_FOUND', 404, 'Not found: POST /api/vms/x/teleport');
    });

    it('malformed bodies: bad JSON 400 BAD_REQUEST, text/plain 415, over 1 MiB 413, nothing created', async () => {
      const before = ((await s.api('GET', '/vms')).body as VmListEnvelope).vms.length;
      const post = (type: string, payload: string) => s.inject({ method: 'POST', url: '/api/vms', headers: { 'content-type': type }, payload });
      expectError(await post('application/json', '{"name": "x",'), 'BAD_REQUEST', 400, 'Body is not valid JSON');
      expectError(await post('text/plain', '{"name":"x","cpus":1,"memory":64}'), 'UNSUPPORTED_MEDIA_TYPE', 415, 'Unsupported Media Type');
      expectError(await post('application/json', JSON.stringify({ name: 'x'.repeat(1 << 20), cpus: 1, memory: 64 })), 'PAYLOAD_TOO_LARGE', 413, 'Request body is too large');
      expect(((await s.api('GET', '/vms')).body as VmListEnvelope).vms.length).toBe(before);
    });

    it('the power cycle: start, pause, resume, reset, console, stop, each in the v1 shape and refused by state', async () => {
      const vm = await create('power');
      const started = await s.api('POST', `/vms/${vm.id}/start`);
      expect(started.status).toBe(200);
      expectShape(StartEnvelope, started.body);
      const st = started.body as StartEnvelope;
      expect(st.vm).toMatchObject({ status: 'running', pid: s.runtime.process(vm.id)!.pid });
      expect(st.command).toContain(`-uuid ${vm.id}`);
      expect(st.vm.lastCommand).toBe(st.command);
      expect(s.runtime.launches.at(-1)).toMatchObject({ vmId: vm.id, name: 'power', cpus: 1, memoryMiB: 64, vncDisplay: vm.vnc_port - 5900, accel: 'tcg', iso: null });

      expectError(await s.api('POST', `/vms/${vm.id}/start`), 'VM_NOT_STOPPED', 409, 'VM is already running');
      expectError(await s.api('PATCH', `/vms/${vm.id}/resources`, { cpus: 1 }), 'VM_NOT_STOPPED', 409, 'Cannot change CPU or memory while the VM is running; stop it first');
      expectError(await s.api('DELETE', `/vms/${vm.id}`), 'VM_NOT_STOPPED', 409, 'VM is running; stop it first, or delete with ?force=true to power it off');
      expectError(await s.api('POST', `/vms/${vm.id}/resume`), 'VM_BUSY', 409, 'Cannot resume a VM that is running');

      const paused = await s.api('POST', `/vms/${vm.id}/pause`);
      expect(paused.status).toBe(200);
      expectShape(VmEnvelope, paused.body);
      expect((paused.body as VmEnvelope).vm.status).toBe('paused');
      expectError(await s.api('POST', `/vms/${vm.id}/pause`), 'VM_BUSY', 409, 'Cannot pause a VM that is paused');
      const resumed = await s.api('POST', `/vms/${vm.id}/resume`);
      expect((resumed.body as VmEnvelope).vm.status).toBe('running');

      const reset = await s.api('POST', `/vms/${vm.id}/reset`);
      expect(reset.status).toBe(200);
      expect((reset.body as VmEnvelope).vm.status).toBe('running');
      expect(s.runtime.count('reset')).toBe(1);

      const ticket = await s.api('POST', `/vms/${vm.id}/console`);
      expect(ticket.status).toBe(200);
      expectShape(ConsoleTicket, ticket.body);

      const stopped = await s.api('POST', `/vms/${vm.id}/stop`);
      expect(stopped.status).toBe(200);
      expectShape(MessageBody, stopped.body);
      expect(stopped.body).toEqual({ message: 'VM stopped successfully' });
      expect(s.runtime.running(vm.id)).toBe(false);
      expect(((await s.api('GET', `/vms/${vm.id}`)).body as VmEnvelope).vm).toMatchObject({ status: 'stopped', pid: null, startedAt: null });

      expectError(await s.api('POST', `/vms/${vm.id}/stop`), 'VM_NOT_RUNNING', 409, 'VM is not running');
      expectError(await s.api('POST', `/vms/${vm.id}/pause`), 'VM_NOT_RUNNING', 409, 'Cannot pause a VM that is stopped');
      expectError(await s.api('POST', `/vms/${vm.id}/reset`), 'VM_NOT_RUNNING', 409, 'Cannot reset a VM that is stopped');
      expectError(await s.api('POST', `/vms/${vm.id}/shutdown`), 'VM_NOT_RUNNING', 409, 'VM is stopped');
      expectError(await s.api('POST', `/vms/${vm.id}/console`), 'VM_NOT_RUNNING', 409, 'VM is stopped; its console is available while it runs');
    });

    it('a guest that powers off on its own is reported stopped (exited event)', async () => {
      const vm = await create('crashy');
      await s.api('POST', `/vms/${vm.id}/start`);
      s.runtime.emit({ vmId: vm.id, type: 'paused' });
      expect(await status(vm.id)).toBe('paused');
      s.runtime.emit({ vmId: vm.id, type: 'resumed' });
      expect(await status(vm.id)).toBe('running');
      s.runtime.exit(vm.id);
      expect(await status(vm.id)).toBe('stopped');
    });

    it('shutdown: the guest obeys (200, stopped); ignores it (409 TIMEOUT, still running); force powers it off', async () => {
      const vm = await create('acpi');
      await s.api('POST', `/vms/${vm.id}/start`);
      const ok = await s.api('POST', `/vms/${vm.id}/shutdown`, { timeout: 5 });
      expect(ok.status).toBe(200);
      expectShape(VmEnvelope, ok.body);
      expect((ok.body as VmEnvelope).vm.status).toBe('stopped');

      await s.api('POST', `/vms/${vm.id}/start`);
      s.runtime.powerdownEffect = 'ignore';
      try {
        expectError(await s.api('POST', `/vms/${vm.id}/shutdown`, { timeout: 1 }), 'TIMEOUT', 409, 'The guest did not power off within 1 s; it is still running');
        expect(await status(vm.id)).toBe('running');
        expect(s.runtime.running(vm.id)).toBe(true);
        const forced = await s.api('POST', `/vms/${vm.id}/shutdown`, { timeout: 1, force: true });
        expect(forced.status).toBe(200);
        expect((forced.body as VmEnvelope).vm.status).toBe('stopped');
        expect(s.runtime.running(vm.id)).toBe(false);
      } finally {
        s.runtime.powerdownEffect = 'exit';
      }
      expectError(await s.api('POST', `/vms/${vm.id}/shutdown`, { timeout: 0 }), 'VALIDATION', 400, 'body.timeout must be >= 1');
    });

    it('reboot: shutdown then start under one lock (new process); a power-off meanwhile ends it with 409 VM_BUSY', async () => {
      const vm = await create('reboot');
      await s.api('POST', `/vms/${vm.id}/start`);
      const pid = s.runtime.process(vm.id)!.pid;
      const r = await s.api('POST', `/vms/${vm.id}/reboot`, {});
      expect(r.status).toBe(200);
      expectShape(StartEnvelope, r.body);
      expect((r.body as StartEnvelope).vm.status).toBe('running');
      expect((r.body as StartEnvelope).vm.pid).not.toBe(pid);

      s.runtime.powerdownEffect = 'ignore';
      const pressed = s.runtime.hold('powerdown');
      try {
        const reboot = s.api('POST', `/vms/${vm.id}/reboot`, { timeout: 30 });
        await pressed.reached;
        expectError(await s.api('POST', `/vms/${vm.id}/start`), 'VM_BUSY', 409, 'VM is busy: reboot is in progress');
        const stop = await s.api('POST', `/vms/${vm.id}/stop`);
        expect(stop.status).toBe(200);
        pressed.release();
        expectError(await reboot, 'VM_BUSY', 409, 'A power-off cut the reboot short; the VM is stopped');
        expect(await status(vm.id)).toBe('stopped');
        expect(s.runtime.running(vm.id)).toBe(false);
      } finally {
        s.runtime.powerdownEffect = 'exit';
        pressed.release();
      }
    });

    it('a VM caught starting is 409 VM_BUSY for other actions; a refused start is 422 and leaves it stopped', async () => {
      const vm = await create('slow');
      const gate = s.runtime.hold('start');
      let start: ReturnType<InProcessServer['api']> | undefined;
      try {
        start = s.api('POST', `/vms/${vm.id}/start`);
        await gate.reached;
        expect(await status(vm.id)).toBe('starting');
        expectError(await s.api('POST', `/vms/${vm.id}/pause`), 'VM_BUSY', 409, 'VM is busy: start is in progress');
        expectError(await s.api('POST', `/vms/${vm.id}/iso/unmount`), 'VM_BUSY', 409, 'VM is busy: start is in progress');
      } finally {
        gate.release();
      }
      expect((await start).status).toBe(200);
      await s.api('POST', `/vms/${vm.id}/stop`);

      s.runtime.failNext('start', new AppError('QEMU_START_FAILED', 'QEMU failed to start: -m 64: cannot allocate memory'));
      expectError(await s.api('POST', `/vms/${vm.id}/start`), 'QEMU_START_FAILED', 422, 'QEMU failed to start: -m 64: cannot allocate memory');
      expect(((await s.api('GET', `/vms/${vm.id}`)).body as VmEnvelope).vm).toMatchObject({ status: 'stopped', pid: null });
    });

    it('QEMU refusing (409 QEMU_ERROR), not answering (502 QEMU_UNREACHABLE) or failing unexpectedly (500, no detail) leaves the state alone', async () => {
      const vm = await create('flaky');
      await s.api('POST', `/vms/${vm.id}/start`);
      s.runtime.failNext('pause', new AppError('QEMU_ERROR', 'QEMU refused pause: the guest is migrating'));
      expectError(await s.api('POST', `/vms/${vm.id}/pause`), 'QEMU_ERROR', 409, 'QEMU refused pause: the guest is migrating');
      expect(await status(vm.id)).toBe('running');
      s.runtime.failNext('reset', new AppError('QEMU_UNREACHABLE', 'QEMU did not answer reset'));
      expectError(await s.api('POST', `/vms/${vm.id}/reset`), 'QEMU_UNREACHABLE', 502, 'QEMU did not answer reset');
      s.runtime.failNext('reset', new Error('socket /secret/path: EPIPE'));
      const r = await s.api('POST', `/vms/${vm.id}/reset`);
      expectError(r, 'INTERNAL', 500, 'Internal server error');
      expect(JSON.stringify(r.body)).not.toContain('secret');
      expect(await status(vm.id)).toBe('running');
      const del = await s.api('DELETE', `/vms/${vm.id}?force=true`);
      expect(del.status).toBe(200);
      expect(del.body).toEqual({ message: 'VM deleted successfully' });
      expect(s.runtime.running(vm.id)).toBe(false);
      expect(s.runtime.discarded).toContain(vm.id);
      expectError(await s.api('GET', `/vms/${vm.id}`), 'VM_NOT_FOUND', 404, `VM not found: ${vm.id}`);
    });

    it('PATCH /resources changes a stopped VM; DELETE removes it', async () => {
      const vm = await create('resize');
      const r = await s.api('PATCH', `/vms/${vm.id}/resources`, { cpus: 1, memory: 256 });
      expect(r.status).toBe(200);
      expectShape(VmEnvelope, r.body);
      expect((r.body as VmEnvelope).vm).toMatchObject({ cpus: 1, memory: 256 });
      expectError(await s.api('PATCH', `/vms/${vm.id}/resources`, {}), 'VALIDATION', 400, 'body must NOT have fewer than 1 properties');
      expectError(await s.api('DELETE', `/vms/${vm.id}?force=yes`), 'VALIDATION', 400, 'querystring.force must be equal to constant');
      const del = await s.api('DELETE', `/vms/${vm.id}`);
      expect(del.status).toBe(200);
      expectShape(MessageBody, del.body);
      expectError(await s.api('GET', `/vms/${vm.id}`), 'VM_NOT_FOUND', 404, `VM not found: ${vm.id}`);
    });

    it('attach: path checks (400 BAD_REQUEST / PATH_NOT_ALLOWED / NOT_A_REGULAR_FILE, 404 FILE_NOT_FOUND) and format rules', async () => {
      const vm = await create('attach');
      const disksDir = path.join(s.dataDir, 'disks');
      const attach = (diskPath: string, format?: string) => s.api('POST', `/vms/${vm.id}/disks/attach`, format ? { diskPath, format } : { diskPath });
      expectError(await attach('relative.img'), 'BAD_REQUEST', 400, 'disk path must be absolute: relative.img');
      expectError(await attach('/etc/passwd'), 'PATH_NOT_ALLOWED', 400, /^disk path is outside the storage roots \(.*\): \/etc\/passwd$/);
      expectError(await attach(path.join(disksDir, 'none.img')), 'FILE_NOT_FOUND', 404, `disk file not found: ${path.join(disksDir, 'none.img')}`);
      fs.mkdirSync(path.join(disksDir, 'adir'));
      expectError(await attach(path.join(disksDir, 'adir')), 'NOT_A_REGULAR_FILE', 400, `disk path is not a regular file: ${path.join(disksDir, 'adir')}`);
      const qcow = path.join(disksDir, 'ext.qcow2');
      const header = Buffer.alloc(512);
      header.writeUInt32BE(0x514649fb, 0);
      fs.writeFileSync(qcow, header);
      expectError(await attach(qcow), 'IMAGE_NOT_ALLOWED', 400, `${qcow} looks like a qcow2 image: formats are never guessed, pass "format": "qcow2" to attach it as one`);
      expectError(await attach(qcow, 'vhdx'), 'VALIDATION', 400, /^body\.format /);
      const iso = path.join(s.dataDir, 'isos', 'lib.iso');
      fs.writeFileSync(iso, isoBytes());
      expectError(await attach(iso), 'IMAGE_NOT_ALLOWED', 400, /lib\.iso/);
      expect(((await s.api('GET', `/vms/${vm.id}`)).body as VmEnvelope).vm.disks).toEqual([]);

      const raw = path.join(disksDir, 'ext.img');
      fs.writeFileSync(raw, Buffer.alloc(4096));
      const ok = await attach(raw);
      expect(ok.status).toBe(200);
      expectShape(VmEnvelope, ok.body);
      expect((ok.body as VmEnvelope).vm.disks).toMatchObject([{ path: raw, format: 'raw', diskId: null }]);
      expectError(await attach(raw), 'DISK_IN_USE', 409, `Disk is already attached to this VM: ${raw}`);
      const other = await create('attach2');
      expectError(await s.api('POST', `/vms/${other.id}/disks/attach`, { diskPath: raw }), 'DISK_IN_USE', 409, `Disk is attached to another VM (${vm.id}): ${raw}`);
      expectError(await s.api('POST', `/vms/${other.id}/iso/mount`, { isoPath: raw }), 'DISK_IN_USE', 409, `${raw} is attached as a disk to VM ${vm.id}; it cannot be CD media`);

      await s.api('POST', `/vms/${vm.id}/start`);
      expectError(await attach(qcow, 'qcow2'), 'VM_NOT_STOPPED', 409, 'Cannot attach a disk while the VM is running; stop it first');
      expectError(await s.api('POST', `/vms/${vm.id}/disks/detach`, { diskPath: raw }), 'VM_NOT_STOPPED', 409, 'Cannot detach a disk while the VM is running; stop it first');
      await s.api('POST', `/vms/${vm.id}/stop`);
      const off = await s.api('POST', `/vms/${vm.id}/disks/detach`, { diskPath: raw });
      expect(off.status).toBe(200);
      expectShape(VmEnvelope, off.body);
      expect((off.body as VmEnvelope).vm.disks).toEqual([]);
    });

    it('a start with a file gone from the host is 409 FILE_MISSING; media go live to a running VM', async () => {
      const vm = await create('media');
      const iso = path.join(s.dataDir, 'isos', 'gone.iso');
      fs.writeFileSync(iso, isoBytes());
      const mounted = await s.api('POST', `/vms/${vm.id}/iso/mount`, { isoPath: iso });
      expect(mounted.status).toBe(200);
      expectShape(VmEnvelope, mounted.body);
      expect((mounted.body as VmEnvelope).vm.iso).toBe(iso);
      fs.rmSync(iso);
      expectError(await s.api('POST', `/vms/${vm.id}/start`), 'FILE_MISSING', 409, `The ISO file is missing: ${iso}`);
      expect(s.runtime.running(vm.id)).toBe(false);
      const un = await s.api('POST', `/vms/${vm.id}/iso/unmount`);
      expect(un.status).toBe(200);
      expect((un.body as VmEnvelope).vm.iso).toBeNull();

      fs.writeFileSync(iso, isoBytes());
      await s.api('POST', `/vms/${vm.id}/start`);
      const live = await s.api('POST', `/vms/${vm.id}/iso/mount`, { isoPath: iso });
      expect(live.status).toBe(200);
      expect(s.runtime.medium(vm.id)).toBe(iso);
      s.runtime.failNext('ejectMedium', new AppError('QEMU_ERROR', 'QEMU refused eject: Device cd0 is locked'));
      expectError(await s.api('POST', `/vms/${vm.id}/iso/unmount`), 'QEMU_ERROR', 409, 'QEMU refused eject: Device cd0 is locked');
      expect(((await s.api('GET', `/vms/${vm.id}`)).body as VmEnvelope).vm.iso).toBe(iso);
      await s.api('POST', `/vms/${vm.id}/iso/unmount`);
      expect(s.runtime.medium(vm.id)).toBeNull();
      await s.api('POST', `/vms/${vm.id}/stop`);
    });
  });
}
