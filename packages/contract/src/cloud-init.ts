import { Type, type Static } from '@sinclair/typebox';
import { Timestamp } from './common.js';

/**
 * Cloud-init (extension, issue 12): a NoCloud seed (an ISO 9660 volume labelled `cidata`) the
 * server writes at each start and attaches as an extra read-only CD-ROM. `userData` is a full
 * `#cloud-config` document (valid YAML, a mapping); the simple fields merge into it.
 */
export const HOSTNAME_PATTERN = '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$';
export const UNIX_USER_PATTERN = '^[a-z_][a-z0-9_-]{0,31}$';
export const MAX_USER_DATA_BYTES = 262144;
export const MAX_NETWORK_CONFIG_BYTES = 65536;

const SshKey = Type.String({
  minLength: 1,
  maxLength: 16384,
  pattern: '^(ssh-|ecdsa-|sk-)[A-Za-z0-9@._-]+ [A-Za-z0-9+/=]+( [^\\r\\n]*)?$',
  description: 'One OpenSSH public key line',
});

/**
 * PUT /api/vms/{vm_id}/cloud-init: replaces the VM's cloud-init config, except `password`: omitted
 * keeps the stored one, `null` removes it. The password is stored hashed (SHA-512 crypt).
 */
export const CloudInitBody = Type.Object(
  {
    hostname: Type.Optional(Type.String({ pattern: HOSTNAME_PATTERN, minLength: 1, maxLength: 63 })),
    user: Type.Optional(Type.String({ pattern: UNIX_USER_PATTERN, minLength: 1, maxLength: 32, description: 'A user to create (with sudo), given the password and keys' })),
    password: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 256 }), Type.Null()])),
    sshAuthorizedKeys: Type.Optional(Type.Array(SshKey, { maxItems: 32 })),
    userData: Type.Optional(Type.String({ maxLength: MAX_USER_DATA_BYTES, description: 'A #cloud-config document' })),
    networkConfig: Type.Optional(Type.String({ maxLength: MAX_NETWORK_CONFIG_BYTES, description: 'A network-config (v1 or v2) YAML document' })),
  },
  { additionalProperties: false },
);
export type CloudInitBody = Static<typeof CloudInitBody>;

/** GET /api/vms/{vm_id}/cloud-init: the config, the password masked. */
export const CloudInit = Type.Object(
  {
    hostname: Type.Union([Type.String(), Type.Null()]),
    user: Type.Union([Type.String(), Type.Null()]),
    password: Type.Union([Type.Literal('********'), Type.Null()], { description: 'Masked when a password is set; never returned' }),
    sshAuthorizedKeys: Type.Array(Type.String()),
    userData: Type.Union([Type.String(), Type.Null()]),
    networkConfig: Type.Union([Type.String(), Type.Null()]),
    instanceId: Type.String({ description: 'The NoCloud instance-id; a changed config gets a new one, so cloud-init runs again' }),
    updatedAt: Timestamp,
  },
  { additionalProperties: false, $id: 'CloudInit' },
);
export type CloudInit = Static<typeof CloudInit>;
export const CloudInitEnvelope = Type.Object({ cloudInit: CloudInit }, { additionalProperties: false });
export type CloudInitEnvelope = Static<typeof CloudInitEnvelope>;
