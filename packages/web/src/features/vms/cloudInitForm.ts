// The cloud-init form (issue 12): what the fields hold, their checks (the contract's patterns) and
// the PUT /api/vms/{id}/cloud-init (or POST /api/vms `cloudInit`) body they make. The password is
// never shown: a stored one reads "set"; a blank field keeps it; Clear sends null.
import { HOSTNAME_PATTERN, MAX_USER_DATA_BYTES, UNIX_USER_PATTERN, type CloudInit, type CloudInitBody } from '@qemu-manager/contract';
import { ApiError } from '../../api/client';

const hostnameRe = new RegExp(HOSTNAME_PATTERN);
const userRe = new RegExp(UNIX_USER_PATTERN);
/** The contract's SSH key line pattern. */
const sshKeyRe = /^(ssh-|ecdsa-|sk-)[A-Za-z0-9@._-]+ [A-Za-z0-9+/=]+( [^\r\n]*)?$/;
export const MAX_SSH_KEYS = 32;
export const MAX_PASSWORD = 256;

export interface CloudInitDraft {
  hostname: string;
  user: string;
  /** A new password as typed; blank keeps the stored one (if any). */
  password: string;
  /** The server has a password stored (shown as "set"). */
  passwordSet: boolean;
  /** Remove the stored password (sends null). */
  clearPassword: boolean;
  /** One OpenSSH public key per line. */
  sshKeys: string;
  userData: string;
  /** A network-config set over the API or CLI: not edited here, but kept (a PUT replaces the whole config). */
  networkConfig?: string;
}

export const EMPTY_CLOUD_INIT: CloudInitDraft = { hostname: '', user: '', password: '', passwordSet: false, clearPassword: false, sshKeys: '', userData: '' };

export function draftOfCloudInit(c: CloudInit | null | undefined): CloudInitDraft {
  if (!c) return EMPTY_CLOUD_INIT;
  return {
    hostname: c.hostname ?? '', user: c.user ?? '', password: '', passwordSet: c.password !== null, clearPassword: false,
    sshKeys: c.sshAuthorizedKeys.join('\n'), userData: c.userData ?? '', ...(c.networkConfig ? { networkConfig: c.networkConfig } : {}),
  };
}

export type CloudInitField = 'hostname' | 'user' | 'password' | 'sshKeys' | 'userData';
export interface CloudInitErrors {
  hostname?: 'invalid';
  user?: 'invalid';
  password?: 'tooLong';
  /** 1-based line numbers of the keys that are not OpenSSH public key lines, or 'tooMany'. */
  sshKeys?: number[] | 'tooMany';
  userData?: 'tooLarge';
}

export const keyLines = (text: string): string[] => text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');

export function cloudInitErrors(d: CloudInitDraft): CloudInitErrors {
  const e: CloudInitErrors = {};
  if (d.hostname.trim() && !hostnameRe.test(d.hostname.trim())) e.hostname = 'invalid';
  if (d.user.trim() && !userRe.test(d.user.trim())) e.user = 'invalid';
  if (d.password.length > MAX_PASSWORD) e.password = 'tooLong';
  const lines = d.sshKeys.split(/\r?\n/);
  const bad = lines.flatMap((l, i) => (l.trim() && !sshKeyRe.test(l.trim()) ? [i + 1] : []));
  if (keyLines(d.sshKeys).length > MAX_SSH_KEYS) e.sshKeys = 'tooMany';
  else if (bad.length) e.sshKeys = bad;
  if (new TextEncoder().encode(d.userData).length > MAX_USER_DATA_BYTES) e.userData = 'tooLarge';
  return e;
}

/** Whether the form says nothing at all (a create then sends no `cloudInit`). */
export const isBlankCloudInit = (d: CloudInitDraft): boolean =>
  !d.hostname.trim() && !d.user.trim() && !d.password && !d.sshKeys.trim() && !d.userData.trim();

/** The body; empty fields are left out (PUT replaces the config, so they are then unset). */
export function cloudInitBody(d: CloudInitDraft): CloudInitBody {
  const body: CloudInitBody = {};
  if (d.hostname.trim()) body.hostname = d.hostname.trim();
  if (d.user.trim()) body.user = d.user.trim();
  if (d.clearPassword) body.password = null;
  else if (d.password) body.password = d.password;
  const keys = keyLines(d.sshKeys);
  if (keys.length) body.sshAuthorizedKeys = keys;
  if (d.userData.trim()) body.userData = d.userData;
  if (d.networkConfig) body.networkConfig = d.networkConfig;
  return body;
}

/** Which field a server refusal (400) is about, to show it there: the YAML checks name user-data. */
export function cloudInitRefusalField(err: unknown): CloudInitField | null {
  if (!(err instanceof ApiError) || err.status < 400 || err.status >= 500) return null;
  const m = err.message.toLowerCase();
  if (/user-?data|yaml|cloud-config/.test(m)) return 'userData';
  if (/ssh/.test(m)) return 'sshKeys';
  if (/hostname/.test(m)) return 'hostname';
  if (/password/.test(m)) return 'password';
  if (/\buser\b/.test(m)) return 'user';
  return null;
}
