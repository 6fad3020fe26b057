/**
 * Hardware options (issue 12): firmware, Secure Boot and TPM at create and while stopped, what
 * the runtime is given at start, and the refusals (Secure Boot without UEFI, a change while the
 * VM runs, unknown fields), each leaving the VM as it was.
 */
import { VmEnvelope, type Vm } from '@qemu-manager/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

export function hardwareSuite(): void {
  describe('hardware options (issue 12)', () => {
    let s: InProcessServer;
    const get = async (id: string): Promise<Vm> => ((await s.api('GET', `/vms/${id}`)).body as VmEnvelope).vm;
    beforeAll(async () => {
      s = await startInProcess();
    });
    afterAll(async () => {
      await s.close();
    });

    it('a new VM is BIOS without Secure Boot or TPM; POST /vms takes the three fields', async () => {
      const plain = await s.api('POST', '/vms', { name: 'hw-plain', cpus: 1, memory: 64 });
      expect(plain.status).toBe(201);
      expectShape(VmEnvelope, plain.body);
      expect((plain.body as VmEnvelope).vm).toMatchObject({ firmware: 'bios', secureBoot: false, tpm: false });
      const win = await s.api('POST', '/vms', { name: 'hw-win', cpus: 1, memory: 64, firmware: 'uefi', secureBoot: true, tpm: true });
      expect(win.status).toBe(201);
      expectShape(VmEnvelope, win.body);
      const vm = (win.body as VmEnvelope).vm;
      expect(vm).toMatchObject({ firmware: 'uefi', secureBoot: true, tpm: true });
      expect(await get(vm.id)).toEqual(vm);
      // the start hands the setting to the runtime
      expect((await s.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
      expect(s.runtime.launches.filter((l) => l.vmId === vm.id).at(-1)?.hardware).toMatchObject({ firmware: 'uefi', secureBoot: true, tpm: true });
      expect((await s.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    });

    it('a clone of a UEFI + Secure Boot + TPM VM has the same hardware', async () => {
      const src = (await s.api('POST', '/vms', { name: 'hw-src', cpus: 1, memory: 64, firmware: 'uefi', secureBoot: true, tpm: true })).body as VmEnvelope;
      const disk = (await s.api('POST', '/disks', { name: 'hw-src-d', size: 1, format: 'qcow2' })).body.disk as { path: string };
      await s.built.tasks.idle();
      expect((await s.api('POST', `/vms/${src.vm.id}/disks/attach`, { diskPath: disk.path })).status).toBe(200);
      const r = await s.api('POST', `/vms/${src.vm.id}/clone`, { name: 'hw-copy', mode: 'linked' });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      await s.built.tasks.idle();
      const copy = ((await s.api('GET', '/vms')).body.vms as Vm[]).find((v) => v.name === 'hw-copy');
      expect(copy).toMatchObject({ firmware: 'uefi', secureBoot: true, tpm: true });
    });

    it('POST /vms refuses Secure Boot without UEFI and unknown values; nothing is created', async () => {
      expectError(await s.api('POST', '/vms', { name: 'hw-bad', cpus: 1, memory: 64, secureBoot: true }), 'VALIDATION', 400, /Secure Boot needs UEFI/);
      expectError(await s.api('POST', '/vms', { name: 'hw-bad', cpus: 1, memory: 64, firmware: 'bios', secureBoot: true }), 'VALIDATION', 400, /Secure Boot needs UEFI/);
      const bad = await s.api('POST', '/vms', { name: 'hw-bad', cpus: 1, memory: 64, firmware: 'efi' });
      expect(bad.status).toBe(400);
      expect((await s.api('GET', '/vms')).body.vms.map((v: Vm) => v.name)).not.toContain('hw-bad');
    });

    it('PUT /vms/{id}/hardware changes the named fields of a stopped VM and keeps the others', async () => {
      const vm = ((await s.api('POST', '/vms', { name: 'hw-edit', cpus: 1, memory: 64 })).body as VmEnvelope).vm;
      const r = await s.api('PUT', `/vms/${vm.id}/hardware`, { firmware: 'uefi' });
      expect(r.status).toBe(200);
      expectShape(VmEnvelope, r.body);
      expect((r.body as VmEnvelope).vm).toMatchObject({ firmware: 'uefi', secureBoot: false, tpm: false, name: 'hw-edit', cpus: 1 });
      expect((await s.api('PUT', `/vms/${vm.id}/hardware`, { secureBoot: true, tpm: true })).body.vm).toMatchObject({ firmware: 'uefi', secureBoot: true, tpm: true });
      // back to BIOS only with Secure Boot off in the same request
      expectError(await s.api('PUT', `/vms/${vm.id}/hardware`, { firmware: 'bios' }), 'VALIDATION', 400, /pass "secureBoot": false too/);
      expect(await get(vm.id)).toMatchObject({ firmware: 'uefi', secureBoot: true, tpm: true });
      expect((await s.api('PUT', `/vms/${vm.id}/hardware`, { firmware: 'bios', secureBoot: false })).body.vm).toMatchObject({ firmware: 'bios', secureBoot: false, tpm: true });
      // the next start uses the new setting
      expect((await s.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
      expect(s.runtime.launches.filter((l) => l.vmId === vm.id).at(-1)?.hardware).toMatchObject({ firmware: 'bios', secureBoot: false, tpm: true });
      expect((await s.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    });

    it('PUT /vms/{id}/hardware refuses: Secure Boot on BIOS, a running VM, unknown or empty bodies, an unknown VM', async () => {
      const vm = ((await s.api('POST', '/vms', { name: 'hw-refuse', cpus: 1, memory: 64 })).body as VmEnvelope).vm;
      const before = await get(vm.id);
      expectError(await s.api('PUT', `/vms/${vm.id}/hardware`, { secureBoot: true }), 'VALIDATION', 400, /Secure Boot needs UEFI/);
      for (const body of [{ firmware: 'uefi', chipset: 'pc' }, {}, { tpm: 'yes' }, { firmware: 'coreboot' }]) {
        const r = await s.api('PUT', `/vms/${vm.id}/hardware`, body);
        expect(r.status, JSON.stringify(body)).toBe(400);
        expect(r.body).toMatchObject({ code: expect.any(String), error: expect.any(String), timestamp: expect.any(String) });
      }
      expect(await get(vm.id)).toEqual(before);
      expect((await s.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
      expectError(await s.api('PUT', `/vms/${vm.id}/hardware`, { tpm: true }), 'VM_NOT_STOPPED', 409, 'Cannot change the hardware while the VM is running; stop it first');
      expect((await get(vm.id)).tpm).toBe(false);
      expect((await s.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
      expectError(await s.api('PUT', '/vms/00000000-0000-4000-8000-000000000000/hardware', { tpm: true }), 'VM_NOT_FOUND', 404, /not found/i);
    });
  });
}
