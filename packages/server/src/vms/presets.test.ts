// OS presets (issue 12): pure data and the merge order (defaults < preset < the body's fields).
import { describe, expect, it } from 'vitest';
import { DEFAULT_HARDWARE, mergeHardware, type HardwareSetting } from './hardware.js';
import { OS_PRESETS, pickDriversIso, presetBase } from './presets.js';

const create = (body: Partial<HardwareSetting>, lib: string | null = null) => mergeHardware(presetBase(DEFAULT_HARDWARE, body, lib), body);

describe('OS presets', () => {
  it('windows: UEFI + Secure Boot + TPM + SATA + e1000e on q35, the library virtio-win ISO as the drivers CD-ROM', () => {
    expect(create({ osType: 'windows' }, '/d/isos/virtio-win.iso')).toEqual({
      ...DEFAULT_HARDWARE,
      firmware: 'uefi',
      secureBoot: true,
      tpm: true,
      machine: 'q35',
      diskBus: 'sata',
      nicModel: 'e1000e',
      osType: 'windows',
      driversIso: '/d/isos/virtio-win.iso',
    });
    // no virtio-win ISO in the library: no drivers CD-ROM
    expect(create({ osType: 'windows' }).driversIso).toBeNull();
  });

  it('linux: virtio disk and NIC; other: the defaults', () => {
    expect(create({ osType: 'linux' }, '/d/isos/virtio-win.iso')).toEqual({ ...DEFAULT_HARDWARE, osType: 'linux' });
    expect(create({ osType: 'other' })).toEqual({ ...DEFAULT_HARDWARE, osType: 'other' });
    expect(create({})).toEqual(DEFAULT_HARDWARE);
  });

  it('explicit fields always win over the preset, a driversIso of null included', () => {
    const h = create({ osType: 'windows', tpm: false, diskBus: 'virtio', nicModel: 'virtio', driversIso: null }, '/d/isos/virtio-win.iso');
    expect(h).toMatchObject({ firmware: 'uefi', secureBoot: true, tpm: false, diskBus: 'virtio', nicModel: 'virtio', driversIso: null });
    expect(create({ osType: 'windows', driversIso: '/d/isos/other.iso' }, '/d/isos/virtio-win.iso').driversIso).toBe('/d/isos/other.iso');
    expect(create({ osType: 'windows', secureBoot: false, firmware: 'bios' })).toMatchObject({ firmware: 'bios', secureBoot: false, tpm: true });
  });

  it('a preset field the body contradicts is refused in words, not switched off (windows on pc keeps Secure Boot)', () => {
    expect(() => create({ osType: 'windows', machine: 'pc' })).toThrow(/Secure Boot on, which needs the q35 machine/);
    expect(create({ osType: 'windows', machine: 'pc', secureBoot: false }).machine).toBe('pc');
  });

  it('the table is plain data the UI can show', () => {
    expect(JSON.parse(JSON.stringify(OS_PRESETS))).toEqual(OS_PRESETS);
    expect(Object.keys(OS_PRESETS).sort()).toEqual(['linux', 'other', 'windows']);
  });

  it('the virtio-win ISO: a name matching virtio-win*.iso, the highest version first', () => {
    expect(pickDriversIso(['debian.iso', 'virtio-win-0.1.240.iso', 'VIRTIO-WIN-0.1.262.ISO', 'virtio-win-0.1.99.iso'])).toBe('VIRTIO-WIN-0.1.262.ISO');
    expect(pickDriversIso(['debian.iso', 'virtio-win.img', 'my-virtio.iso'])).toBeNull();
    expect(pickDriversIso([])).toBeNull();
  });
});

describe('mergeHardware (issue 12 fields)', () => {
  it('Secure Boot needs q35; omitted fields keep their value', () => {
    const q35sb = { ...DEFAULT_HARDWARE, firmware: 'uefi' as const, secureBoot: true };
    expect(() => mergeHardware(q35sb, { machine: 'pc' })).toThrow(/pass "secureBoot": false too to switch to pc/);
    expect(() => mergeHardware({ ...DEFAULT_HARDWARE, machine: 'pc', firmware: 'uefi' }, { secureBoot: true })).toThrow(/Secure Boot needs the q35 machine/);
    expect(mergeHardware(DEFAULT_HARDWARE, { bootOrder: ['cdrom', 'disk'] })).toEqual({ ...DEFAULT_HARDWARE, bootOrder: ['cdrom', 'disk'] });
    expect(mergeHardware({ ...DEFAULT_HARDWARE, driversIso: '/x.iso' }, { nicModel: 'rtl8139' })).toMatchObject({ driversIso: '/x.iso', nicModel: 'rtl8139' });
    expect(mergeHardware({ ...DEFAULT_HARDWARE, driversIso: '/x.iso' }, { driversIso: null }).driversIso).toBeNull();
  });
});
