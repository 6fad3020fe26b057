import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { unmapIPv4 } from './lib/net.js';

export type AccelSetting = 'auto' | 'kvm' | 'tcg';

export interface Config {
  host: string;
  port: number;
  /** UI_PORT: a second port on HOST serving the same app (the web UI at http://localhost:3001 by default); null = off. */
  uiPort: number | null;
  dataDir: string;
  /** Extra storage roots (absolute, resolved) besides dataDir/disks and dataDir/isos. */
  storageRoots: string[];
  accel: AccelSetting;
  qemuBinary: string;
  qemuImgBinary: string;
  /** Largest ISO upload accepted, in bytes. */
  maxUploadBytes: number;
  /** Directory of the built web UI, or null to serve no UI. */
  webDir: string | null;
  logLevel: string;
  /** QEMU_USER: unset = a user per running VM (qm-vm-N) when root; a name = that one user; '' = don't drop. */
  qemuUser: string | undefined;
  /** AUTH=required, or automatically when HOST is not a loopback address. */
  authRequired: boolean;
  /** ADMIN_PASSWORD: sets (replaces) the admin password at start. */
  adminPassword: string | undefined;
  allowedHosts: string[];
  allowedOrigins: string[];
  tls: { cert: string; key: string } | null;
  /** TRUST_PROXY: which peers may tell the client address and scheme in X-Forwarded-* (null: none). */
  trustProxy: TrustProxy | null;
  /** VNC_TCP=1: each VM's VNC listens on TCP 127.0.0.1:<vnc_port> (for native clients) instead of its unix socket; any local user can connect, without a ticket. */
  vncTcp: boolean;
  /** GUEST_ISOLATION=off lets guests reach this host's services (default on: nftables keep them off). */
  guestIsolation: 'on' | 'off';
  /** Connection and request bounds of the HTTP server. */
  http: HttpLimits;
  /** Optional host-wide totals over all defined VMs (null: not limited). */
  totals: { maxVmMemoryMiB: number | null; memoryOvercommit: number | null };
  /** BOOT_ID_FILE: where the host's boot id is read (autostart runs once per host boot; issue 15). */
  bootIdFile: string;
  /** METRICS_INTERVAL_MS: how often every running VM is sampled (issue 14; default 5000). */
  metricsIntervalMs?: number;
  /** HINT_IDLE_MS: how long a screen unchanged with an idle CPU lasts before the stuck-boot hint (issue 14; default 3 min). */
  hintIdleMs?: number;
  /** NOTIFY_RETRY_BASE_MS: the first retry's delay of an undelivered alert (issue 14; default 30000, doubling). */
  notifyRetryBaseMs?: number;
  /** NOTIFY_STORAGE_CHECK_MS: how often free space is checked for storage.low alerts (issue 14; default 60000). */
  notifyStorageCheckMs?: number;
}

/**
 * `{ hops: n }`: n proxies, the nearest of which runs on this host (the peer is a loopback address).
 * `{ proxies: [...] }`: only peers with these addresses or in these CIDR ranges are proxies.
 */
type TrustProxy = { hops: number } | { proxies: string[] };

interface HttpLimits {
  /** HEADERS_TIMEOUT_MS: a request's headers must arrive within this time. */
  headersTimeoutMs: number;
  /** REQUEST_TIMEOUT_MS: a request body (other than an ISO upload) must arrive within this time. */
  requestTimeoutMs: number;
  /** KEEP_ALIVE_TIMEOUT_MS: an idle keep-alive connection is closed after this time. */
  keepAliveTimeoutMs: number;
  /** UPLOAD_IDLE_TIMEOUT_S: an ISO upload that sends no byte for this long is aborted. */
  uploadIdleTimeoutMs: number;
  /** MAX_CONNECTIONS: open connections the server accepts at once. */
  maxConnections: number;
  /** MAX_CONNECTIONS_PER_CLIENT: open connections one peer address may hold (configured proxies exempt). */
  maxConnectionsPerClient: number;
  /** MAX_SSE_PER_CLIENT: open GET /api/events streams per client address. */
  maxSsePerClient: number;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const list = (v: string | undefined) =>
  (v ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

function intEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** Reads the configuration from the environment. Throws with a clear message on bad values. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const accel = (env.ACCEL ?? 'auto').toLowerCase();
  if (accel !== 'auto' && accel !== 'kvm' && accel !== 'tcg') {
    throw new Error(`ACCEL must be auto, kvm or tcg, got ${JSON.stringify(env.ACCEL)}`);
  }
  const dataDir = path.resolve(cwd, env.DATA_DIR || './data');
  const storageRoots = (env.STORAGE_ROOTS ?? '')
    .split(':')
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p) => {
      if (!path.isAbsolute(p)) throw new Error(`STORAGE_ROOTS entries must be absolute paths, got ${JSON.stringify(p)}`);
      return path.resolve(p);
    });
  return {
    host: env.HOST || '127.0.0.1',
    port: intEnv(env, 'PORT', 5000, 0, 65535),
    uiPort: uiPortSetting(env),
    dataDir,
    storageRoots,
    accel,
    qemuBinary: env.QEMU_BINARY || 'qemu-system-x86_64',
    qemuImgBinary: env.QEMU_IMG_BINARY || 'qemu-img',
    maxUploadBytes: intEnv(env, 'MAX_UPLOAD_MB', 16384, 1, 1 << 22) * 1024 * 1024,
    webDir: env.WEB_DIR === '' ? null : path.resolve(cwd, env.WEB_DIR ?? defaultWebDir()),
    logLevel: env.LOG_LEVEL || 'info',
    qemuUser: env.QEMU_USER,
    authRequired: authSetting(env.AUTH, env.HOST || '127.0.0.1'),
    adminPassword: env.ADMIN_PASSWORD || undefined,
    allowedHosts: list(env.ALLOWED_HOSTS),
    allowedOrigins: list(env.ALLOWED_ORIGINS),
    tls: tlsSetting(env.TLS_CERT, env.TLS_KEY),
    trustProxy: trustProxySetting(env.TRUST_PROXY),
    vncTcp: env.VNC_TCP === '1' || env.VNC_TCP === 'true',
    bootIdFile: env.BOOT_ID_FILE || '/proc/sys/kernel/random/boot_id', // service and autostart (issue 15)
    guestIsolation: onOff(env, 'GUEST_ISOLATION'),
    http: {
      headersTimeoutMs: intEnv(env, 'HEADERS_TIMEOUT_MS', 15_000, 100, 600_000),
      requestTimeoutMs: intEnv(env, 'REQUEST_TIMEOUT_MS', 60_000, 100, 3_600_000),
      keepAliveTimeoutMs: intEnv(env, 'KEEP_ALIVE_TIMEOUT_MS', 10_000, 100, 600_000),
      uploadIdleTimeoutMs: intEnv(env, 'UPLOAD_IDLE_TIMEOUT_S', 60, 1, 3600) * 1000,
      maxConnections: intEnv(env, 'MAX_CONNECTIONS', 1024, 8, 1_000_000),
      maxConnectionsPerClient: intEnv(env, 'MAX_CONNECTIONS_PER_CLIENT', 256, 1, 1_000_000),
      maxSsePerClient: intEnv(env, 'MAX_SSE_PER_CLIENT', 8, 1, 10_000),
    },
    totals: {
      maxVmMemoryMiB: env.MAX_VM_MEMORY_TOTAL ? intEnv(env, 'MAX_VM_MEMORY_TOTAL', 0, 1, 1 << 30) : null,
      memoryOvercommit: ratioSetting('MEMORY_OVERCOMMIT', env.MEMORY_OVERCOMMIT),
    },
    metricsIntervalMs: intEnv(env, 'METRICS_INTERVAL_MS', 5000, 100, 3_600_000), // metrics (issue 14)
    hintIdleMs: intEnv(env, 'HINT_IDLE_MS', 180_000, 100, 86_400_000), // the stuck-boot hint (issue 14)
    notifyRetryBaseMs: intEnv(env, 'NOTIFY_RETRY_BASE_MS', 30_000, 10, 3_600_000), // alerts (issue 14)
    notifyStorageCheckMs: intEnv(env, 'NOTIFY_STORAGE_CHECK_MS', 60_000, 100, 86_400_000), // alerts (issue 14)
  };
}

/** UI_PORT: unset = 3001; empty = off; else a port (1-65535). The same port as PORT means off. */
export function uiPortSetting(env: NodeJS.ProcessEnv): number | null {
  if (env.UI_PORT === '') return null;
  const port = env.UI_PORT === undefined ? 3001 : intEnv(env, 'UI_PORT', 3001, 1, 65535);
  return port === intEnv(env, 'PORT', 5000, 0, 65535) ? null : port;
}

/**
 * TRUST_PROXY: unset, 0, false or off = no proxy (X-Forwarded-* ignored). A number n = n proxy hops,
 * the nearest on this host (it connects from a loopback address); `true` = 1. A comma-separated list of
 * addresses or CIDRs = only those peers are proxies (and only those addresses along the chain).
 */
export function trustProxySetting(v: string | undefined): TrustProxy | null {
  const raw = (v ?? '').trim();
  if (raw === '' || raw === '0' || raw === 'false' || raw === 'off') return null;
  if (raw === 'true') return { hops: 1 };
  if (/^[0-9]+$/.test(raw)) {
    const hops = Number(raw);
    if (hops > 10) throw new Error(`TRUST_PROXY hop count must be at most 10, got ${raw}`);
    return { hops };
  }
  const proxies = list(raw);
  for (const p of proxies) {
    const [addr, bits, ...rest] = p.split('/');
    const family = net.isIP(addr ?? '');
    const max = family === 6 ? 128 : 32;
    const okBits = bits === undefined || (/^[0-9]{1,3}$/.test(bits) && Number(bits) <= max);
    if (!family || rest.length > 0 || !okBits) {
      throw new Error(`TRUST_PROXY must be a hop count or a comma-separated list of IP addresses/CIDRs, got ${JSON.stringify(p)}`);
    }
  }
  return { proxies };
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback addresses. */
function isLoopbackAddress(addr: string | undefined): boolean {
  return addr !== undefined && addr !== 'localhost' && isLoopback(unmapIPv4(addr));
}

/** The trust function for Fastify's `trustProxy` option (false: X-Forwarded-* is never read). */
export function trustProxyOption(t: TrustProxy | null): false | string[] | ((addr: string, hop: number) => boolean) {
  if (!t) return false;
  if ('proxies' in t) return t.proxies;
  const { hops } = t;
  return (addr, hop) => hop < hops && (hop > 0 || isLoopbackAddress(addr));
}

function ratioSetting(name: string, v: string | undefined): number | null {
  if (v === undefined || v === '') return null;
  const n = Number(v);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(v) || !(n > 0) || n > 100) throw new Error(`${name} must be a number above 0 and at most 100, got ${JSON.stringify(v)}`);
  return n;
}

function onOff(env: NodeJS.ProcessEnv, name: string): 'on' | 'off' {
  const v = (env[name] ?? 'on').toLowerCase();
  if (v === '' || v === 'on') return 'on';
  if (v === 'off') return 'off';
  throw new Error(`${name} must be on or off, got ${JSON.stringify(env[name])}`);
}

function authSetting(v: string | undefined, host: string): boolean {
  if (v === undefined || v === '' || v === 'auto') return !isLoopback(host);
  if (v === 'required') return true;
  if (v === 'off') {
    if (!isLoopback(host)) throw new Error('AUTH=off is only allowed on a loopback HOST');
    return false;
  }
  throw new Error(`AUTH must be auto, required or off, got ${JSON.stringify(v)}`);
}

function tlsSetting(cert: string | undefined, key: string | undefined): Config['tls'] {
  if (!cert && !key) return null;
  if (!cert || !key) throw new Error('TLS_CERT and TLS_KEY must be set together');
  return { cert: path.resolve(cert), key: path.resolve(key) };
}

function defaultWebDir(): string {
  // packages/server/dist/config.js -> packages/web/dist
  return path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../web/dist');
}

export function hostLimits(): { cpus: number; memoryMiB: number } {
  return { cpus: os.cpus().length, memoryMiB: Math.floor(os.totalmem() / (1024 * 1024)) };
}
