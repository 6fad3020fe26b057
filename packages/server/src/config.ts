import os from 'node:os';
import path from 'node:path';

export type AccelSetting = 'auto' | 'kvm' | 'tcg';

export interface Config {
  host: string;
  port: number;
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
  /** TRUST_PROXY=1: take the client address and scheme from X-Forwarded-* (behind nginx/Caddy). */
  trustProxy: boolean;
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
    trustProxy: env.TRUST_PROXY === '1' || env.TRUST_PROXY === 'true',
  };
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
