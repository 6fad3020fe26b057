import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import fs from 'node:fs';
import path from 'node:path';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { registerAudit } from './audit/hook.js';
import { auditRoutes } from './audit/routes.js';
import { AuditStore } from './audit/store.js';
import { authRoutes } from './auth/routes.js';
import { AuthService } from './auth/service.js';
import { AuthStore } from './auth/store.js';
import { hostLimits, isLoopback, trustProxyOption, type Config } from './config.js';
import { Guard, checkTarget, registerGuard, type Refusal } from './http/guard.js';
import { registerConnectionLimits, serverOptions } from './http/limits.js';
import { createVncProxy } from './console/proxy.js';
import { DiskRepo } from './disks/repo.js';
import { diskRoutes } from './disks/routes.js';
import { QemuImg } from './disks/qemu-img.js';
import { DiskService } from './disks/service.js';
import { EventBus } from './events/bus.js';
import { eventRoutes } from './events/routes.js';
import { clientErrorHandler, registerErrorHandling } from './http/errors.js';
import { isoRoutes } from './isos/routes.js';
import { IsoService } from './isos/service.js';
import { isAppError } from './lib/errors.js';
import { run } from './lib/exec.js';
import { StorageRoots } from './lib/storage.js';
import { chooseAccel } from './qemu/accel.js';
import { GuestIsolation } from './qemu/guest-isolation.js';
import { IdentityPool, allowTraverse } from './qemu/identity.js';
import { Supervisor } from './qemu/supervisor.js';
import { lockDataDir } from './store/lock.js';
import { openDb } from './store/sqlite.js';
import { systemRoutes } from './system/routes.js';
import { OpLocks } from './vms/locks.js';
import { PowerService } from './vms/power.js';
import { VmRepo } from './vms/repo.js';
import { vmRoutes } from './vms/routes.js';
import { VmService } from './vms/service.js';
import { memoryTotals } from './vms/context.js';

const VERSION = '0.1.0';

/** A configuration the server refuses to run with; main prints the message and exits. */
export class StartupError extends Error {}

function rejectUpgrade(socket: Duplex, r: Refusal): void {
  const body = JSON.stringify({ error: r.message, timestamp: new Date().toISOString(), code: r.code });
  socket.end(
    `HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? 'Error'}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

interface BuiltApp {
  app: FastifyInstance;
  vms: VmService;
  power: PowerService;
  disks: DiskService;
}

async function qemuVersion(binary: string): Promise<string | null> {
  try {
    const r = await run(binary, ['--version'], { timeoutMs: 10_000 });
    return r.stdout.match(/version (\S+)/)?.[1] ?? null;
  } catch {
    return null;
  }
}

/** Builds the whole server (no listen): state, QEMU supervision, routes, console proxy, UI. */
export async function buildApp(config: Config): Promise<BuiltApp> {
  const dirs = { disks: path.join(config.dataDir, 'disks'), isos: path.join(config.dataDir, 'isos'), run: path.join(config.dataDir, 'run') };
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });

  const app = Fastify({
    logger: {
      level: config.logLevel,
      redact: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'],
      // URLs are logged without their query string: console tickets travel there.
      serializers: { req: (req: { method: string; url: string }) => ({ method: req.method, url: req.url.split('?')[0] }) },
    },
    ...(config.tls
      ? { https: { cert: fs.readFileSync(config.tls.cert), key: fs.readFileSync(config.tls.key), ...serverOptions(config) } }
      : { http: serverOptions(config) }),
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    trustProxy: trustProxyOption(config.trustProxy),
    bodyLimit: 1 << 20,
    clientErrorHandler, // what the HTTP parser refuses, in the v1 error shape
    logController: new LogController({ disableRequestLogging: config.logLevel !== 'debug' }),
    // Closed schemas mean refusal: never strip unknown fields or turn "1" into 1 silently.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const lock = lockDataDir(path.join(config.dataDir, 'server.lock'));
  if ('owner' in lock) throw new StartupError(`another QEMU Manager server (pid ${lock.owner}) uses DATA_DIR ${config.dataDir}`);
  // Only the server that holds the data dir may change it (a second one, refused above, must not
  // take the o+x its QEMU users pass through). Its own dirs: a data dir of an older version had
  // them 0755; QEMU users that must pass through run/ and isos/ get o+x below, never read.
  for (const d of Object.values(dirs)) fs.chmodSync(d, 0o700);
  const db = openDb(path.join(config.dataDir, 'db.sqlite'));
  const authStore = new AuthStore(db);
  const auditStore = new AuditStore(db);
  const auth = new AuthService(authStore, config.authRequired);
  if (config.adminPassword) await auth.setPassword(config.adminPassword);
  if (config.authRequired && !auth.passwordSet) {
    db.close();
    lock.release();
    throw new StartupError(
      `Authentication is required (HOST=${config.host}${config.authRequired && isLoopback(config.host) ? ', AUTH=required' : ''}) ` +
        'but no admin password is set: set ADMIN_PASSWORD, or run `npm run admin -- set-password` first',
    );
  }
  const guard = new Guard({ allowedHosts: config.allowedHosts, allowedOrigins: config.allowedOrigins, auth });
  const accel = chooseAccel(config.accel);
  const limits = hostLimits();
  const bus = new EventBus();
  const storage = new StorageRoots([dirs.disks, dirs.isos, ...config.storageRoots]);
  for (const root of storage.writableByOthers()) {
    app.log.warn({ root }, 'a storage root is writable by others: they can replace the images in it; make it writable by the admin only');
  }
  const vmRepo = new VmRepo(db);
  const diskRepo = new DiskRepo(db);

  const identities = IdentityPool.fromSetting(config.qemuUser, app.log, { dataDir: config.dataDir });
  allowTraverse(identities, config.dataDir);
  allowTraverse(identities, dirs.run);
  allowTraverse(identities, dirs.isos); // a medium inserted while the VM runs is opened by QEMU by path
  let power: PowerService | undefined;
  // Guests (and qemu-img reading their images) never reach this host's own services.
  const isolation = await GuestIsolation.setUp({ setting: config.guestIsolation, poolEnabled: identities.enabled }, app.log);
  const qemuImg = new QemuImg(config.qemuImgBinary, { storage, log: app.log, confine: (who) => isolation.confine(who) });
  const supervisor = new Supervisor(
    dirs.run,
    { onEvent: (id, ev) => power?.onEvent(id, ev), onExit: (id) => power?.onExit(id), beforeSpawn: (who) => isolation.confine(who) },
    app.log,
    identities,
    { storage, vncTcp: config.vncTcp },
  );
  const ctx = {
    repo: vmRepo,
    disks: diskRepo,
    storage,
    qemuImg,
    supervisor,
    bus,
    locks: new OpLocks(),
    config,
    accel: accel.accel,
    limits,
    log: app.log,
  };
  power = new PowerService(ctx);
  const vms = new VmService(ctx, power);
  const disks = new DiskService(diskRepo, qemuImg, bus, dirs.disks, app.log);
  const isos = new IsoService(dirs.isos, bus, config.maxUploadBytes, config.http.uploadIdleTimeoutMs);

  const interrupted = disks.recover();
  const tightened = disks.restrictModes();
  if (tightened) app.log.warn({ tightened }, 'managed disk images others could read are now owner-only');
  if (interrupted) app.log.warn({ interrupted }, 'disk creations interrupted by a restart were marked failed');
  const reconciled = await power.reconcile();
  // QEMUs that were running before this server (even before these rules existed) come under them too.
  for (const vm of vmRepo.list()) await isolation.confineAdopted(supervisor.get(vm.id)?.identity ?? null);
  app.log.info({ ...reconciled, accel: accel.accel, reason: accel.reason }, 'state reconciled');

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'QEMU Manager API', version: VERSION, description: 'v1 API plus extensions' },
      servers: [{ url: '/' }],
    },
  });
  const webDir = config.webDir && fs.existsSync(path.join(config.webDir, 'index.html')) ? config.webDir : null;
  registerErrorHandling(app, { spa: webDir !== null });
  registerConnectionLimits(app, config);
  registerGuard(app, guard);
  registerAudit(app, auditStore);
  // JSON only: a text/plain body (what a cross-site form can send) is refused with 415.
  app.removeContentTypeParser('text/plain');
  // A POST without a body but with a JSON content type is an empty body, not an error.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      const err = Object.assign(new Error('Body is not valid JSON'), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' });
      done(err, undefined);
    }
  });

  const mountedIso = (file: string) => vmRepo.list().some((v) => v.iso === file);
  await app.register(
    async (api) => {
      await api.register(systemRoutes({ version: VERSION, qemuVersion: await qemuVersion(config.qemuBinary), accel: accel.accel, accelReason: accel.reason, limits, totals: () => memoryTotals(ctx), guestIsolation: () => isolation.status }));
      await api.register(vmRoutes(vms, power));
      await api.register(diskRoutes(disks));
      await api.register(isoRoutes(isos, mountedIso));
      await api.register(eventRoutes(bus, { maxPerClient: config.http.maxSsePerClient }));
      await api.register(
        authRoutes({
          auth,
          checkConsole: (id) => void power!.vncTarget(id),
          secureCookies: (req) => config.tls !== null || (config.trustProxy !== null && req.protocol === 'https'),
        }),
      );
      await api.register(auditRoutes(auditStore));
    },
    { prefix: '/api' },
  );

  if (webDir) {
    await app.register(fastifyStatic, { root: webDir, prefix: '/', wildcard: true, index: ['index.html'] });
  }
  const proxy = createVncProxy({ resolveTarget: (id) => power!.vncTarget(id), log: app.log });
  app.server.on('upgrade', (req, socket, head) => {
    const badTarget = checkTarget(req.url);
    if (badTarget) return rejectUpgrade(socket, badTarget);
    const url = new URL(req.url ?? '/', 'http://x');
    const vmId = url.pathname.match(/^\/api\/vnc\/([0-9a-f-]{36})$/)?.[1];
    if (!vmId) return rejectUpgrade(socket, { status: 404, code: 'NOT_FOUND', message: 'No WebSocket here' });
    const refusal = guard.checkUpgrade(req);
    if (refusal) return rejectUpgrade(socket, refusal);
    // With authentication on, a console needs a ticket for this VM (POST /api/vms/{id}/console).
    const ticket = url.searchParams.get('ticket');
    if ((auth.required || ticket !== null) && !auth.redeemTicket(ticket, vmId)) {
      return rejectUpgrade(socket, { status: 401, code: 'UNAUTHORIZED', message: 'Missing, used, expired or foreign console ticket' });
    }
    const entry = { at: new Date().toISOString(), actor: ticket ? 'ticket' : 'local', ip: req.socket.remoteAddress ?? null };
    let status = 101;
    try {
      power!.vncTarget(vmId); // the proxy asks again; this tells the audit log whether the console can open
    } catch (err) {
      status = isAppError(err) ? err.statusCode : 500;
    }
    if (!proxy.handleUpgrade(req, socket, head)) return void socket.destroy();
    // Recorded off the console's critical path.
    setImmediate(() => auditStore.record({ ...entry, action: 'CONSOLE /api/vnc/:vm_id', target: vmId, status }));
  });

  // Live consoles would keep server.close() waiting: end them first.
  app.addHook('preClose', async () => proxy.close());
  app.addHook('onClose', async () => {
    supervisor.detachAll();
    await disks.idle();
    db.close();
    lock.release();
  });

  return { app, vms, power, disks };
}
