import { HOSTNAME_PATTERN, MAX_NETWORK_CONFIG_BYTES, MAX_USER_DATA_BYTES, type CloudInit, type CloudInitBody } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import { Document, isMap, isScalar, isSeq, parseDocument, YAMLSeq } from 'yaml';
import { AppError } from '../lib/errors.js';
import { hashPassword } from '../lib/sha512-crypt.js';
import { nowIso } from '../lib/time.js';
import type { LaunchSeed } from '../runtime/port.js';
import type { Db } from '../store/sqlite.js';
import { emitVm, requireVm, type VmContext } from './context.js';

/**
 * Cloud-init (NoCloud, issue 12): a VM's config as stored, its checks, and the seed documents it
 * renders (`user-data`, `meta-data`, `network-config`). The runtime writes them as a `cidata`
 * volume at each start; a changed config gets a new instance-id, so cloud-init runs again.
 */

/** A VM's config as stored: the password only as its SHA-512 crypt hash. */
export interface CloudInitConfig {
  hostname: string | null;
  user: string | null;
  passwordHash: string | null;
  sshAuthorizedKeys: string[];
  userData: string | null;
  networkConfig: string | null;
}

export const MASKED_PASSWORD = '********';
const HEADER = '#cloud-config';
/** What the user a config names may do: every command, as cloud images' default user does. */
const SUDO_RULE = 'ALL=(ALL) NOPASSWD:ALL';
/** First lines that make user-data something other than a #cloud-config document. */
const OTHER_FORMAT = /^(#!|#include|#cloud-(?!config\s*$)|#part-handler|#upstart-job|## template|content-type:|mime-version:)/i;

/** Parses a YAML document that must be a mapping (empty counts as an empty one); 400 with the line otherwise. */
function parseMapping(text: string, field: 'userData' | 'networkConfig'): Document {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0]?.line;
    const message = err.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '');
    throw new AppError('VALIDATION', `${field}${line ? ` line ${line}` : ''}: ${message}`);
  }
  if (doc.contents === null) return new Document({}); // empty, or comments only
  if (!isMap(doc.contents)) {
    const line = lineOf(text, doc.contents.range?.[0] ?? 0);
    const kind = isSeq(doc.contents) ? 'a list' : 'a single value';
    throw new AppError('VALIDATION', `${field} line ${line}: the document is ${kind}; it must be a mapping (key: value lines)`);
  }
  return doc;
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function checkBytes(text: string | undefined, max: number, field: string): void {
  if (text !== undefined && Buffer.byteLength(text, 'utf8') > max) {
    throw new AppError('VALIDATION', `${field} is ${Buffer.byteLength(text, 'utf8')} bytes; at most ${max} are accepted`);
  }
}

/** Checks a request body (400 VALIDATION on the first problem); the schema checked the shapes already. */
export function checkCloudInitBody(body: CloudInitBody): void {
  checkBytes(body.userData, MAX_USER_DATA_BYTES, 'userData');
  checkBytes(body.networkConfig, MAX_NETWORK_CONFIG_BYTES, 'networkConfig');
  if (body.userData !== undefined) {
    const first = body.userData.split('\n', 1)[0]!.trim();
    if (first !== HEADER && OTHER_FORMAT.test(first)) {
      throw new AppError('VALIDATION', `userData line 1: only #cloud-config documents are accepted (this one starts with ${JSON.stringify(first.slice(0, 40))})`);
    }
    const doc = parseMapping(body.userData, 'userData');
    const users = doc.get('users', true);
    if (body.user !== undefined && users !== undefined && !isSeq(users)) {
      throw new AppError('VALIDATION', 'userData: "users" must be a list when "user" is given (the user is added to it)');
    }
  }
  if (body.networkConfig !== undefined) parseMapping(body.networkConfig, 'networkConfig');
  if (body.password !== undefined && body.password !== null && /[\r\n]/.test(body.password)) {
    throw new AppError('VALIDATION', 'password: line breaks are not allowed');
  }
  if (new Set(body.sshAuthorizedKeys ?? []).size !== (body.sshAuthorizedKeys ?? []).length) {
    throw new AppError('VALIDATION', 'sshAuthorizedKeys: a key is listed twice');
  }
}

/** The config a body makes of the stored one: everything replaced, except an omitted password (kept). */
export function configFromBody(body: CloudInitBody, current: CloudInitConfig | null): CloudInitConfig {
  return {
    hostname: body.hostname ?? null,
    user: body.user ?? null,
    passwordHash: body.password === undefined ? (current?.passwordHash ?? null) : body.password === null ? null : hashPassword(body.password),
    sshAuthorizedKeys: body.sshAuthorizedKeys ?? [],
    userData: body.userData ?? null,
    networkConfig: body.networkConfig ?? null,
  };
}

/**
 * The seed documents of a config. The simple fields win over the same keys of `userData`:
 * `hostname`; with `user`, the entry of that name in `users` (sudo, `passwd` hash, keys; the
 * distro's `default` user is kept first when `users` is not given); without `user`, the keys go to
 * the default user (`ssh_authorized_keys`) and the password too (`password` as a hash,
 * `chpasswd.expire: false`). `ssh_pwauth` is left to `userData`.
 */
export function renderSeed(vmId: string, vmName: string, c: CloudInitConfig): LaunchSeed & { instanceId: string } {
  const doc = parseMapping(c.userData ?? '', 'userData');
  if (c.hostname !== null) doc.set('hostname', c.hostname);
  if (c.user !== null) {
    const entry: Record<string, unknown> = { name: c.user, sudo: SUDO_RULE, shell: '/bin/bash', lock_passwd: c.passwordHash === null };
    if (c.passwordHash !== null) entry.passwd = c.passwordHash;
    if (c.sshAuthorizedKeys.length > 0) entry.ssh_authorized_keys = c.sshAuthorizedKeys;
    const found = doc.get('users', true);
    const users = isSeq(found) ? found : (doc.createNode(['default']) as YAMLSeq);
    users.items = users.items.filter((item) => !(isMap(item) && item.get('name') === c.user) && !(isScalar(item) && item.value === c.user));
    users.items.push(doc.createNode(entry));
    doc.set('users', users);
  } else {
    if (c.sshAuthorizedKeys.length > 0) doc.set('ssh_authorized_keys', c.sshAuthorizedKeys);
    if (c.passwordHash !== null) {
      doc.set('password', c.passwordHash);
      doc.setIn(['chpasswd', 'expire'], false);
    }
  }
  let userData = doc.toString({ lineWidth: 0 });
  if (!userData.startsWith(`${HEADER}\n`)) userData = `${HEADER}\n${userData}`;

  const fromUserData = doc.get('hostname');
  const hostname = c.hostname ?? (typeof fromUserData === 'string' && new RegExp(HOSTNAME_PATTERN).test(fromUserData) ? fromUserData : null);
  const localHostname = hostname ?? (new RegExp(HOSTNAME_PATTERN).test(vmName) ? vmName : null);
  const networkConfig = c.networkConfig === null ? null : c.networkConfig.endsWith('\n') ? c.networkConfig : `${c.networkConfig}\n`;
  const digest = crypto.createHash('sha256').update(JSON.stringify([userData, localHostname, networkConfig])).digest('hex');
  const instanceId = `${vmId}-${digest.slice(0, 12)}`;
  const meta = new Document({ 'instance-id': instanceId, ...(localHostname ? { 'local-hostname': localHostname } : {}) });
  return { userData, metaData: meta.toString(), networkConfig, instanceId };
}

interface CloudInitRow {
  vm_id: string;
  hostname: string | null;
  user_name: string | null;
  password_hash: string | null;
  ssh_keys: string;
  user_data: string | null;
  network_config: string | null;
  instance_id: string;
  updated_at: string;
}

/** The `vm_cloud_init` table (migration 012): one row per VM that has a config, gone with the VM. */
export class CloudInitRepo {
  private readonly q;

  constructor(db: Db) {
    this.q = {
      get: db.prepare<[string], CloudInitRow>('SELECT * FROM vm_cloud_init WHERE vm_id = ?'),
      put: db.prepare<[CloudInitRow]>(
        `INSERT INTO vm_cloud_init (vm_id, hostname, user_name, password_hash, ssh_keys, user_data, network_config, instance_id, updated_at)
         VALUES (@vm_id, @hostname, @user_name, @password_hash, @ssh_keys, @user_data, @network_config, @instance_id, @updated_at)
         ON CONFLICT (vm_id) DO UPDATE SET hostname = excluded.hostname, user_name = excluded.user_name,
           password_hash = excluded.password_hash, ssh_keys = excluded.ssh_keys, user_data = excluded.user_data,
           network_config = excluded.network_config, instance_id = excluded.instance_id, updated_at = excluded.updated_at`,
      ),
      del: db.prepare<[string]>('DELETE FROM vm_cloud_init WHERE vm_id = ?'),
    };
  }

  get(vmId: string): { config: CloudInitConfig; instanceId: string; updatedAt: string } | null {
    const r = this.q.get.get(vmId);
    if (!r) return null;
    return {
      config: {
        hostname: r.hostname,
        user: r.user_name,
        passwordHash: r.password_hash,
        sshAuthorizedKeys: JSON.parse(r.ssh_keys) as string[],
        userData: r.user_data,
        networkConfig: r.network_config,
      },
      instanceId: r.instance_id,
      updatedAt: r.updated_at,
    };
  }

  put(vmId: string, c: CloudInitConfig, instanceId: string, updatedAt: string): void {
    this.q.put.run({
      vm_id: vmId,
      hostname: c.hostname,
      user_name: c.user,
      password_hash: c.passwordHash,
      ssh_keys: JSON.stringify(c.sshAuthorizedKeys),
      user_data: c.userData,
      network_config: c.networkConfig,
      instance_id: instanceId,
      updated_at: updatedAt,
    });
  }

  delete(vmId: string): boolean {
    return this.q.del.run(vmId).changes > 0;
  }
}

/**
 * A VM's cloud-init config: read, replaced, removed. Allowed in any state: a running VM gets it
 * at its next start. `set` is also what POST /api/vms with `cloudInit` calls, right after the VM
 * is made (its body checked by `checkCloudInitBody` before).
 */
export class CloudInitService {
  constructor(
    private readonly ctx: VmContext,
    private readonly repo: CloudInitRepo,
  ) {}

  get(vmId: string): CloudInit {
    requireVm(this.ctx, vmId);
    const stored = this.repo.get(vmId);
    if (!stored) throw new AppError('NOT_FOUND', `VM ${vmId} has no cloud-init config`);
    return this.view(stored);
  }

  /** `emit: false`: no `vm.updated` (the caller is making the VM and announces it itself). */
  set(vmId: string, body: CloudInitBody, opts: { emit?: boolean } = {}): CloudInit {
    const vm = requireVm(this.ctx, vmId);
    checkCloudInitBody(body);
    const current = this.repo.get(vmId);
    const config = configFromBody(body, current?.config ?? null);
    const { instanceId } = renderSeed(vmId, vm.name, config);
    this.repo.put(vmId, config, instanceId, nowIso());
    this.ctx.repo.version++; // the VM's `cloudInit` flag is part of the cached list
    if (!current && opts.emit !== false) emitVm(this.ctx, vmId);
    return this.view(this.repo.get(vmId)!);
  }

  /**
   * Gives `toVmId` (a VM just made from `fromVmId`: a clone, a VM from a template) the same config,
   * the password hash included, under its own instance-id; false when the source has none.
   */
  copy(fromVmId: string, toVmId: string): boolean {
    const stored = this.repo.get(fromVmId);
    if (!stored) return false;
    const vm = requireVm(this.ctx, toVmId);
    this.repo.put(toVmId, stored.config, renderSeed(toVmId, vm.name, stored.config).instanceId, nowIso());
    this.ctx.repo.version++;
    return true;
  }

  delete(vmId: string): void {
    requireVm(this.ctx, vmId);
    if (!this.repo.delete(vmId)) throw new AppError('NOT_FOUND', `VM ${vmId} has no cloud-init config`);
    this.ctx.runtime.discardSeed?.(vmId);
    this.ctx.repo.version++;
    emitVm(this.ctx, vmId);
  }

  /** The seed documents for a start, or null when the VM has no config. */
  seed(vmId: string, vmName: string): LaunchSeed | null {
    const stored = this.repo.get(vmId);
    if (!stored) return null;
    const { userData, metaData, networkConfig } = renderSeed(vmId, vmName, stored.config);
    return { userData, metaData, networkConfig };
  }

  private view(s: { config: CloudInitConfig; instanceId: string; updatedAt: string }): CloudInit {
    const c = s.config;
    return {
      hostname: c.hostname,
      user: c.user,
      password: c.passwordHash === null ? null : MASKED_PASSWORD,
      sshAuthorizedKeys: c.sshAuthorizedKeys,
      userData: c.userData,
      networkConfig: c.networkConfig,
      instanceId: s.instanceId,
      updatedAt: s.updatedAt,
    };
  }
}
