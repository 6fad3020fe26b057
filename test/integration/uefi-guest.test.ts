/**
 * The test guest under the hardware options (issue 12), through the real server with real QEMU,
 * OVMF and swtpm under TCG: a UEFI VM boots the guest ISO (TESTGUEST UEFI) and its variable store
 * keeps what the guest wrote across a restart (EFIVAR 1, then 2); a snapshot with memory taken
 * while it runs is reverted to (the guest goes on, and the variable store is back to the
 * snapshot's: the next boot counts 2, not 3); a TPM VM booted from the guest's qcow2 cloud image
 * under BIOS prints TESTGUEST TPM 2, finds a hand-made NoCloud seed (cidata CD-ROM: its hostname,
 * instance-id and runcmd lines) and leaves the image's sector 0 alone; a Secure Boot VM starts with
 * the Microsoft-keyed store and its firmware refuses the guest's unsigned GRUB.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CIDATA_MARKER,
  EFIVAR_MARKER,
  INSTANCE_MARKER,
  RUNCMD_DONE_MARKER,
  READY_MARKER,
  SECUREBOOT_MARKER,
  TPM_MARKER,
  UEFI_MARKER,
  ensureTestGuestCloudImage,
  lastEfivarCount,
  readDiskMarker,
} from '../guest/index.js';
import { TestServer, makeDataDir, qemuPidsOf, serialLog, waitFor } from './harness.js';

const haveOvmf = fs.existsSync('/usr/share/OVMF/OVMF_CODE_4M.secboot.fd') && fs.existsSync('/usr/share/OVMF/OVMF_VARS_4M.ms.fd');
const BOOT_MS = 120_000;

let server: TestServer;
let isoPath: string;

beforeAll(async () => {
  const cloud = await ensureTestGuestCloudImage(); // builds the ISO too
  server = await new TestServer(makeDataDir()).start();
  isoPath = path.join(server.dataDir, 'isos', 'testguest.iso');
  fs.copyFileSync(path.join(path.dirname(cloud), 'testguest.iso'), isoPath);
}, 300_000);
afterAll(async () => {
  await server?.dispose();
});

const serial = (id: string): string => serialLog(server.dataDir, id);
const ready = (id: string, what: string): Promise<unknown> => waitFor(() => serial(id).includes(READY_MARKER), BOOT_MS, what);

async function task(r: { status: number; body: any }): Promise<any> {
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  const id = r.body.task.id as string;
  return waitFor(async () => {
    const t = (await server.api('GET', `/tasks/${id}`)).body.task;
    return ['succeeded', 'failed', 'cancelled'].includes(t.status) && t;
  }, 120_000, `task ${id}`);
}

describe.skipIf(!haveOvmf)('the test guest under UEFI, Secure Boot and TPM', () => {
  it('a UEFI VM boots the guest ISO, its variable store persists across a restart, and a snapshot with memory reverts it', async () => {
    const disk = await server.api('POST', '/disks', { name: 'uefi-disk', size: 1, format: 'qcow2' });
    expect(disk.status, JSON.stringify(disk.body)).toBe(201);
    expect(await task({ status: 202, body: disk.body })).toMatchObject({ status: 'succeeded' });
    const created = await server.api('POST', '/vms', { name: 'uefi-guest', cpus: 1, memory: 512, firmware: 'uefi' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.vm.id as string;
    expect((await server.api('POST', `/vms/${id}/disks/attach`, { diskPath: disk.body.disk.path })).status).toBe(200);
    expect((await server.api('POST', `/vms/${id}/iso/mount`, { isoPath })).status).toBe(200);

    // first boot of a fresh variable store
    expect((await server.api('POST', `/vms/${id}/start`)).status).toBe(200);
    await ready(id, 'UEFI guest READY (boot 1)');
    expect(serial(id)).toContain(UEFI_MARKER);
    expect(serial(id)).toContain(`${SECUREBOOT_MARKER} 0`);
    expect(serial(id)).toContain(`${EFIVAR_MARKER} 1`);
    expect(lastEfivarCount(serial(id))).toBe(1);
    // a snapshot with memory of the running guest (the store holds 1 variable) ...
    const saved = await task(await server.api('POST', `/vms/${id}/snapshots`, { name: 'uefi-live', includeMemory: true }));
    expect(saved, JSON.stringify(saved)).toMatchObject({ status: 'succeeded' });
    // ... then a restart (a graceful power-off, a new QEMU): the second boot finds the variable
    // the first one wrote, and adds one
    const rebooted = await server.api('POST', `/vms/${id}/reboot`, { timeout: 60 });
    expect(rebooted.status, JSON.stringify(rebooted.body)).toBe(200);
    await ready(id, 'UEFI guest READY (boot 2)');
    expect(lastEfivarCount(serial(id))).toBe(2);

    // the revert brings back the running guest of boot 1 with its store of 1 variable
    const reverted = await task(await server.api('POST', `/vms/${id}/snapshots/uefi-live/revert`));
    expect(reverted, JSON.stringify(reverted)).toMatchObject({ status: 'succeeded' });
    expect((await server.api('GET', `/vms/${id}`)).body.vm.status).toBe('running');
    // the restored guest is alive: it answers the ACPI power button and powers itself off
    const off = await server.api('POST', `/vms/${id}/shutdown`, { timeout: 60 });
    expect(off.status, JSON.stringify(off.body)).toBe(200);
    expect(off.body.vm.status).toBe('stopped');
    expect(qemuPidsOf(server.dataDir)).toEqual([]);
    // the next boot counts 2 again: boot 2's variable went with the revert
    expect((await server.api('POST', `/vms/${id}/start`)).status).toBe(200);
    await ready(id, 'UEFI guest READY (after the revert)');
    expect(lastEfivarCount(serial(id))).toBe(2);
    expect((await server.api('DELETE', `/vms/${id}?force=true`)).status).toBe(200);
  }, 420_000);

  it('a TPM VM booted from the qcow2 cloud image (BIOS) prints TESTGUEST TPM 2, reads a cidata seed and runs its runcmd, and does not mark the image', async () => {
    const image = path.join(server.dataDir, 'disks', 'testguest-cloud.qcow2');
    fs.copyFileSync(await ensureTestGuestCloudImage(), image);
    const created = await server.api('POST', '/vms', { name: 'tpm-guest', cpus: 1, memory: 256, tpm: true });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.vm.id as string;
    const attached = await server.api('POST', `/vms/${id}/disks/attach`, { diskPath: image, format: 'qcow2' });
    expect(attached.status, JSON.stringify(attached.body)).toBe(200);
    // a hand-made NoCloud seed as its CD-ROM (not bootable: the firmware boots the disk)
    const seedDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-seed-'));
    const seed = path.join(server.dataDir, 'isos', 'seed.iso');
    try {
      fs.writeFileSync(path.join(seedDir, 'meta-data'), 'instance-id: iid-uefi-guest-1\nlocal-hostname: seeded-host\n');
      fs.writeFileSync(path.join(seedDir, 'user-data'), '#cloud-config\nruncmd:\n  - echo "RUNCMD_OK $(hostname)"\n  - [echo, RUNCMD_LIST]\n');
      execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-V', 'cidata', '-r', '-J', '-o', seed, seedDir], { stdio: 'ignore' });
    } finally {
      fs.rmSync(seedDir, { recursive: true, force: true });
    }
    expect((await server.api('POST', `/vms/${id}/iso/mount`, { isoPath: seed })).status).toBe(200);
    expect((await server.api('POST', `/vms/${id}/start`)).status).toBe(200);
    await ready(id, 'TPM guest READY');
    expect(serial(id)).toContain(`${TPM_MARKER} 2`);
    expect(serial(id)).toContain(`${CIDATA_MARKER} seeded-host`);
    expect(serial(id)).toContain(`${INSTANCE_MARKER} iid-uefi-guest-1`);
    await waitFor(() => serial(id).includes(RUNCMD_DONE_MARKER), 30_000, 'runcmd done');
    expect(serial(id)).toMatch(/^RUNCMD_OK seeded-host\r?$/m);
    expect(serial(id)).toMatch(/^RUNCMD_LIST\r?$/m);
    expect(serial(id)).not.toContain(UEFI_MARKER);
    expect(serial(id)).not.toContain('TESTGUEST_DISK_WRITTEN');
    expect((await server.api('POST', `/vms/${id}/shutdown`, { timeout: 60 })).body.vm.status).toBe('stopped');
    expect(await readDiskMarker(image)).toBeNull(); // sector 0 is still the boot code
    expect((await server.api('DELETE', `/vms/${id}`)).status).toBe(200);
  }, 240_000);

  it('Secure Boot: the Microsoft-keyed store is on and the firmware refuses the unsigned GRUB', async () => {
    const created = await server.api('POST', '/vms', { name: 'sb-guest', cpus: 1, memory: 512, firmware: 'uefi', secureBoot: true });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.vm.id as string;
    expect((await server.api('POST', `/vms/${id}/iso/mount`, { isoPath })).status).toBe(200);
    expect((await server.api('POST', `/vms/${id}/start`)).status).toBe(200);
    // OVMF's boot manager reports the refused image on the console (serial)
    await waitFor(() => /Access Denied/i.test(serial(id)), BOOT_MS, 'the firmware refusing the unsigned loader');
    const log = serial(id);
    expect(log).toMatch(/BdsDxe: failed to load Boot\d+ "UEFI QEMU DVD-ROM[^"]*" .*Access Denied/);
    expect(log).not.toContain('Welcome to GRUB');
    expect(log).not.toContain('TESTGUEST_BOOT');
    expect(log).not.toContain(READY_MARKER);
    expect((await server.api('GET', `/vms/${id}`)).body.vm.status).toBe('running');
    expect((await server.api('DELETE', `/vms/${id}?force=true`)).status).toBe(200);
    expect(qemuPidsOf(server.dataDir)).toEqual([]);
  }, 240_000);
});
