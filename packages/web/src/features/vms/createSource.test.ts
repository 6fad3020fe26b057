import { describe, expect, it } from 'vitest';
import { EMPTY_CLOUD_INIT } from './cloudInitForm';
import { imageCreateBody, imageMinGb, templateCreateBody } from './createSource';
import { presetFor } from './hardwareRules';

describe('create from an image or a template', () => {
  it('the smallest disk is the image’s virtual size in GB, rounded up', () => {
    expect(imageMinGb({ virtualSize: 2 * 1024 ** 3 })).toBe(2);
    expect(imageMinGb({ virtualSize: 2 * 1024 ** 3 + 1 })).toBe(3);
    expect(imageMinGb({ virtualSize: 1 })).toBe(1);
  });

  it('an image create carries the hardware, the disk and the cloud-init in one body', () => {
    const body = imageCreateBody(
      { name: 'web', cpus: 2, memory: 1024, hardware: presetFor('linux'), cloudInit: { ...EMPTY_CLOUD_INIT, hostname: 'web' } },
      'debian-12', 10, true,
    );
    expect(body).toEqual({
      name: 'web', cpus: 2, memory: 1024, osType: 'linux', firmware: 'bios', secureBoot: false, tpm: false, machine: 'q35', diskBus: 'virtio', nicModel: 'virtio',
      bootOrder: ['disk', 'cdrom'], image: 'debian-12', diskSize: 10, linkedDisk: true, cloudInit: { hostname: 'web' },
    });
  });

  it('leaves out an empty cloud-init, and a template create sends only the name (and cloud-init)', () => {
    expect('cloudInit' in imageCreateBody({ name: 'a', cpus: 1, memory: 256, hardware: presetFor('other'), cloudInit: EMPTY_CLOUD_INIT }, 'img', 1, false)).toBe(false);
    expect(templateCreateBody({ name: 'b', cloudInit: EMPTY_CLOUD_INIT }, 'tpl-id')).toEqual({ name: 'b', template: 'tpl-id' });
    expect(templateCreateBody({ name: 'b', cloudInit: { ...EMPTY_CLOUD_INIT, user: 'ops', password: 'pw' } }, 'tpl-id'))
      .toEqual({ name: 'b', template: 'tpl-id', cloudInit: { user: 'ops', password: 'pw' } });
  });
});
