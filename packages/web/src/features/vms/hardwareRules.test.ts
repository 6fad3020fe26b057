import { describe, expect, it } from 'vitest';
import type { Iso } from '@qemu-manager/contract';
import { vm } from '../../test/fixtures';
import {
  bootEntries, bootOrderOf, changeDraft, DEFAULT_DRAFT, draftOfVm, hardwareChange, hardwareErrors, hardwareSummary, moveBoot, presetFor, toggleBoot,
} from './hardwareRules';

const iso = (name: string): Iso => ({ name, path: `/data/isos/${name}`, size: 1, modifiedAt: '2025-11-28T14:00:00.000Z' });

describe('OS presets', () => {
  it('windows fills UEFI, Secure Boot, TPM, SATA, e1000e and the virtio-win ISO of the library', () => {
    const d = presetFor('windows', [iso('debian.iso'), iso('virtio-win-0.1.262.iso')]);
    expect(d).toMatchObject({ osType: 'windows', firmware: 'uefi', secureBoot: true, tpm: true, machine: 'q35', diskBus: 'sata', nicModel: 'e1000e', driversIso: '/data/isos/virtio-win-0.1.262.iso' });
    expect(hardwareErrors(d)).toEqual([]);
  });
  it('windows without a drivers ISO in the library leaves the second CD-ROM empty', () => {
    expect(presetFor('windows', [iso('debian.iso')]).driversIso).toBeNull();
    expect(presetFor('windows').driversIso).toBeNull();
  });
  it('linux is virtio everything on BIOS; other is the defaults', () => {
    expect(presetFor('linux')).toMatchObject({ osType: 'linux', firmware: 'bios', secureBoot: false, tpm: false, diskBus: 'virtio', nicModel: 'virtio' });
    expect(presetFor('other')).toEqual({ ...DEFAULT_DRAFT, osType: 'other' });
    expect(bootOrderOf(DEFAULT_DRAFT.boot)).toEqual(['disk', 'cdrom']);
  });
});

describe('field rules', () => {
  it('Secure Boot goes off with BIOS and with the pc machine', () => {
    const win = presetFor('windows');
    expect(changeDraft(win, { firmware: 'bios' }).secureBoot).toBe(false);
    expect(changeDraft(win, { machine: 'pc' }).secureBoot).toBe(false);
    expect(changeDraft(win, { tpm: false })).toMatchObject({ secureBoot: true, tpm: false });
    // A draft set by hand that breaks the rule is refused.
    expect(hardwareErrors({ ...DEFAULT_DRAFT, secureBoot: true })).toEqual(['secureBoot']);
  });
  it('turning Secure Boot on is ignored without UEFI', () => {
    expect(changeDraft(DEFAULT_DRAFT, { secureBoot: true }).secureBoot).toBe(false);
    expect(changeDraft({ ...DEFAULT_DRAFT, firmware: 'uefi' }, { secureBoot: true }).secureBoot).toBe(true);
  });
});

describe('boot order editing', () => {
  it('lists every device, the VM’s in order first', () => {
    expect(bootEntries(['cdrom'])).toEqual([{ device: 'cdrom', on: true }, { device: 'disk', on: false }, { device: 'network', on: false }]);
  });
  it('moves up and down, and not past the ends', () => {
    const b = bootEntries(['disk', 'cdrom', 'network']);
    expect(bootOrderOf(moveBoot(b, 2, -1))).toEqual(['disk', 'network', 'cdrom']);
    expect(bootOrderOf(moveBoot(b, 0, 1))).toEqual(['cdrom', 'disk', 'network']);
    expect(bootOrderOf(moveBoot(b, 0, -1))).toEqual(['disk', 'cdrom', 'network']);
    expect(bootOrderOf(moveBoot(b, 2, 1))).toEqual(['disk', 'cdrom', 'network']);
  });
  it('an unchecked device is left out; none checked is an error', () => {
    const b = toggleBoot(bootEntries(['disk', 'cdrom']), 0, false);
    expect(bootOrderOf(b)).toEqual(['cdrom']);
    const none = toggleBoot(b, 1, false);
    expect(bootOrderOf(none)).toEqual([]);
    expect(hardwareErrors({ ...DEFAULT_DRAFT, boot: none })).toEqual(['bootOrder']);
  });
});

describe('the hardware PUT body', () => {
  it('sends only what changed, nothing when nothing did', () => {
    const v = vm();
    expect(hardwareChange(draftOfVm(v), v)).toBeNull();
    expect(hardwareChange(changeDraft(draftOfVm(v), { firmware: 'uefi', tpm: true }), v)).toEqual({ firmware: 'uefi', tpm: true });
    expect(hardwareChange({ ...draftOfVm(v), boot: moveBoot(draftOfVm(v).boot, 1, -1) }, v)).toEqual({ bootOrder: ['cdrom', 'disk'] });
    expect(hardwareChange({ ...draftOfVm(v), driversIso: '/data/isos/virtio-win.iso' }, v)).toEqual({ driversIso: '/data/isos/virtio-win.iso' });
  });
});

describe('summary line', () => {
  it('names firmware, Secure Boot, TPM and a template', () => {
    expect(hardwareSummary(vm({ firmware: 'uefi', secureBoot: true, tpm: true }))).toBe('UEFI · Secure Boot · TPM 2.0');
    expect(hardwareSummary(vm({ firmware: 'uefi', tpm: true }))).toBe('UEFI · TPM 2.0');
    expect(hardwareSummary(vm())).toBe('BIOS');
    expect(hardwareSummary(vm({ template: true }))).toBe('BIOS · Template');
  });
  it('the list’s brief line says nothing for a plain BIOS VM', () => {
    expect(hardwareSummary(vm(), true)).toBe('');
    expect(hardwareSummary(vm({ tpm: true }), true)).toBe('TPM 2.0');
    expect(hardwareSummary(vm({ template: true }), true)).toBe('Template');
  });
});
