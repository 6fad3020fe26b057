import { describe, expect, it } from 'vitest';
import { MAX_USER_DATA_BYTES } from '@qemu-manager/contract';
import { ApiError } from '../../api/client';
import { cloudInitBody, cloudInitErrors, cloudInitRefusalField, draftOfCloudInit, EMPTY_CLOUD_INIT, isBlankCloudInit } from './cloudInitForm';
import { cloudInitFieldError } from './CloudInitFields';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDhK me@laptop';
const stored = {
  hostname: 'web1', user: 'ops', password: '********' as const, sshAuthorizedKeys: [KEY], userData: '#cloud-config\nruncmd:\n  - echo hi\n',
  networkConfig: null, instanceId: 'i-1', updatedAt: '2025-11-28T14:00:00.000Z',
};

describe('cloud-init body', () => {
  it('trims the fields, splits keys one per line and leaves out what is empty', () => {
    const body = cloudInitBody({ ...EMPTY_CLOUD_INIT, hostname: ' web1 ', user: 'ops', sshKeys: `\n${KEY}\n  \nssh-rsa AAAAB3Nza x\n`, userData: '#cloud-config\n' });
    expect(body).toEqual({ hostname: 'web1', user: 'ops', sshAuthorizedKeys: [KEY, 'ssh-rsa AAAAB3Nza x'], userData: '#cloud-config\n' });
    expect(cloudInitBody(EMPTY_CLOUD_INIT)).toEqual({});
    expect(isBlankCloudInit(EMPTY_CLOUD_INIT)).toBe(true);
    expect(isBlankCloudInit({ ...EMPTY_CLOUD_INIT, hostname: 'a' })).toBe(false);
  });

  it('password: a stored one reads as set; blank keeps it (omitted), typed replaces it, Clear sends null', () => {
    const d = draftOfCloudInit(stored);
    expect(d).toMatchObject({ passwordSet: true, password: '', clearPassword: false, sshKeys: KEY });
    expect('password' in cloudInitBody(d)).toBe(false);
    expect(cloudInitBody({ ...d, password: 's3cret' }).password).toBe('s3cret');
    expect(cloudInitBody({ ...d, clearPassword: true }).password).toBeNull();
    expect(draftOfCloudInit({ ...stored, password: null }).passwordSet).toBe(false);
  });

  it('keeps a network-config set elsewhere, since a PUT replaces the whole config', () => {
    expect(cloudInitBody({ ...draftOfCloudInit({ ...stored, networkConfig: 'version: 2\n' }), hostname: 'new' }).networkConfig).toBe('version: 2\n');
  });

  it('the draft of a stored config gives back the same body (minus the password)', () => {
    expect(cloudInitBody(draftOfCloudInit(stored))).toEqual({ hostname: 'web1', user: 'ops', sshAuthorizedKeys: [KEY], userData: stored.userData });
  });
});

describe('cloud-init checks', () => {
  it('refuses a bad host name and user, names the lines of bad keys, and a too large user-data', () => {
    expect(cloudInitErrors({ ...EMPTY_CLOUD_INIT, hostname: '-web' }).hostname).toBe('invalid');
    expect(cloudInitErrors({ ...EMPTY_CLOUD_INIT, user: 'Root' }).user).toBe('invalid');
    const e = cloudInitErrors({ ...EMPTY_CLOUD_INIT, sshKeys: `${KEY}\nnot a key\n\nrsa AAAA` });
    expect(e.sshKeys).toEqual([2, 4]);
    expect(cloudInitFieldError({ ...EMPTY_CLOUD_INIT, sshKeys: `${KEY}\nnot a key` }, 'sshKeys')).toBe('Not an OpenSSH public key on line 2.');
    expect(cloudInitErrors({ ...EMPTY_CLOUD_INIT, userData: 'x'.repeat(MAX_USER_DATA_BYTES + 1) }).userData).toBe('tooLarge');
    expect(cloudInitErrors({ ...EMPTY_CLOUD_INIT, password: 'p'.repeat(257) }).password).toBe('tooLong');
    expect(cloudInitErrors({ ...EMPTY_CLOUD_INIT, hostname: 'web-1', user: 'ops', sshKeys: KEY, userData: '#cloud-config\n' })).toEqual({});
  });

  it('puts a server refusal about the YAML next to the user-data editor', () => {
    expect(cloudInitRefusalField(new ApiError(400, 'VALIDATION', 'userData: invalid YAML at line 3: bad indentation'))).toBe('userData');
    expect(cloudInitRefusalField(new ApiError(400, 'VALIDATION', 'user-data must be a mapping (line 1)'))).toBe('userData');
    expect(cloudInitRefusalField(new ApiError(400, 'VALIDATION', 'body/hostname must match pattern'))).toBe('hostname');
    expect(cloudInitRefusalField(new ApiError(409, 'VM_NOT_STOPPED', 'stop it'))).toBeNull();
    expect(cloudInitRefusalField(new ApiError(500, 'INTERNAL', 'userData'))).toBeNull();
    expect(cloudInitRefusalField('The task failed')).toBeNull();
  });
});
