import type { FastifyInstance } from 'fastify';
import fs from 'node:fs';
import path from 'node:path';
import { registerAudit } from './audit/hook.js';
import { auditRoutes } from './http/routes/audit.js';
import { AuditStore } from './audit/store.js';
import { authRoutes } from './http/routes/auth.js';
import { serialRoutes } from './http/routes/serial.js'; // serial console (issue 14)
import { SerialService } from './console/serial-service.js'; // serial console (issue 14)
import { createSerialProxy } from './console/serial-proxy.js'; // serial console (issue 14)
import { AuthService } from './auth/service.js';
import { AuthStore } from './auth/store.js';
import { hostLimits, isLoopback, type Config } from './config.js';
import { createVncProxy } from './console/proxy.js';
import { DiskRepo } from './disks/repo.js';
import { diskRoutes } from './http/routes/disks.js';
import { DiskService } from './disks/service.js';
import { EventBus } from './events/bus.js';
import { eventRoutes } from './http/routes/events.js';
import { registerConsoleUpgrade } from './http/console-upgrade.js';
import { Guard } from './http/guard.js';
import { API_VERSION, createHttpServer } from './http/server.js';
import { registerStaticUi, uiDir } from './http/static-ui.js';
import { isoRoutes } from './http/routes/isos.js';
import { IsoService } from './isos/service.js';
import type { Logger } from './lib/log.js';
import { StorageRoots } from './lib/storage.js';
import { createHostNetworks } from './hostnet/index.js'; // networks (issue 11)
import { qemuAdapters } from './qemu/adapters.js';
import type { AdapterDirs, Adapters } from './runtime/adapters.js';
import { lockDataDir } from './store/lock.js';
import { openDb } from './store/sqlite.js';
import { systemRoutes } from './http/routes/system.js';
import { registerApiDocs } from './http/api-docs.js';
import { taskRoutes } from './http/routes/tasks.js';
import { diskUploadRoutes } from './http/routes/disk-upload.js';
import { DiskUploads } from './disks/upload.js';
import { TaskRepo } from './tasks/repo.js';
import { TaskService } from './tasks/service.js';
import { emitVm, memoryTotals, publicVm, requireVm } from './vms/context.js';
import { OpLocks } from './vms/locks.js';
import { PowerService } from './vms/power.js';
import { VmRepo } from './vms/repo.js';
import { vmRoutes } from './http/routes/vms.js';
import { VmService } from './vms/service.js';
// disk resize (issue 10)
import { diskResizeRoutes } from './http/routes/resize.js';
import { agentRoutes } from './http/routes/agent.js'; // the guest agent (issue 14)
import { AgentService } from './vms/agent.js'; // the guest agent (issue 14)
import { hasBootMedium, HintService } from './metrics/hint.js'; // the stuck-boot hint (issue 14)
import { DiskResizeService } from './vms/disk-resize.js';
// snapshots (issue 10)
import { snapshotRoutes } from './http/routes/snapshots.js';
import { SnapshotRepo } from './vms/snapshot-repo.js';
import { SnapshotService } from './vms/snapshots.js';
// clones and backing chains (issue 10)
import { CloneService } from './vms/clone.js';
import { cloneRoutes } from './http/routes/clones.js';
// import and convert (issue 10)
import { DiskImports } from './disks/import.js';
import { diskImportRoutes } from './http/routes/disk-import.js';
import { DiskConvertService } from './vms/disk-convert.js';
// backups: schedules and retention (issue 13)
import { BackupRepo } from './backups/repo.js';
import { ScheduleRepo } from './backups/schedule-repo.js';
import { BackupScheduler } from './backups/scheduler.js';
import { BackupSchedules } from './backups/schedules.js';
import { backupScheduleRoutes } from './http/routes/backups-schedules.js';
// backups: restore, verify, delete, import (issue 13)
import { BackupDelete } from './backups/delete.js';
import { BackupImports } from './backups/import.js';
import { BackupRestore } from './backups/restore.js';
import { BackupVerify } from './backups/verify.js';
import { backupOpsRoutes } from './http/routes/backups-ops.js';
// backups: engine and targets (issue 13)
import { BackupService } from './backups/service.js';
import { BackupTargets } from './backups/targets.js';
import { backupRoutes } from './http/routes/backups.js';
import { backupTargetRoutes } from './http/routes/backups-targets.js';
// service and autostart (issue 15)
import { Autostart } from './host/autostart.js';
import { HostShutdown } from './host/shutdown.js';
import { hostRoutes } from './http/routes/host.js';
// hardware options (issue 12)
import { hardwareRoutes } from './http/routes/hardware.js';
import { HardwareService } from './vms/hardware.js';
// images (issue 12)
import { loadCatalogue } from './images/catalogue.js';
import { ImageRepo } from './images/repo.js';
import { ImageService } from './images/service.js';
import { imageRoutes } from './http/routes/images.js';
import { CreateFromImage } from './vms/create-from-image.js';
import { templateRoutes } from './http/routes/templates.js'; // templates (issue 12)
import { TemplateService } from './vms/template.js';
// cloud-init (issue 12)
import { cloudInitRoutes } from './http/routes/cloud-init.js';
import { CloudInitRepo, CloudInitService, checkCloudInitBody } from './vms/cloud-init.js';
// metrics (issue 14)
import { metricsRoutes } from './http/routes/metrics.js';
import { MetricsRepo } from './metrics/repo.js';
import { MetricsService } from './metrics/service.js';
// alerts (issue 14)
import { notificationRoutes } from './http/routes/notifications.js';
import { NotificationRepo } from './notifications/repo.js';
import { NotificationService, payloads } from './notifications/service.js';
// networks (issue 11)
import { networkRoutes } from './http/routes/networks.js';
import { AddressBook } from './networks/addresses.js';
import { ForwardService, NicService } from './networks/nics.js';
import { NetworkRepo } from './networks/repo.js';
import { NetworkService } from './networks/service.js';
import type { HostNetworks } from './runtime/network-port.js';
import type { TapDevices } from './runtime/port.js';

/** A configuration the server refuses to run with; main prints the message and exits. */
export class StartupError extends Error {}

/** Builds the hypervisor side; the QEMU adapters by default, a fake one in the in-process tests. */
export type AdapterFactory = (config: Config, dirs: AdapterDirs, storage: StorageRoots, log: Logger) => Promise<Adapters>;

/** Networks (issue 11): builds the host network adapter (hostnet/ by default, a fake in the in-process tests). */
export type HostNetworksFactory = (config: Config, dirs: { run: string }, log: Logger) => HostNetworks & TapDevices;

/** The host network adapter (hostnet/): bridges, taps, dnsmasq and nftables; it says itself when the host cannot have them (not root, a program missing). */
export const defaultHostNetworks: HostNetworksFactory = (_config, dirs, log) => createHostNetworks({ runDir: path.join(dirs.run, 'net'), log });

export interface BuiltApp {
  app: FastifyInstance;
  vms: VmService;
  power: PowerService;
  disks: DiskService;
  tasks: TaskService;
  /** Metrics (issue 14): the sampler (tests run a round with tick()). */
  metrics?: MetricsService;
  /** The event bus (tests watch what GET /api/events would send). */
  bus?: EventBus;
  /** Alerts (issue 14): the endpoints and their queues (tests run a free-space check with checkStorage()). */
  notifications?: NotificationService;
  /** Networks (issue 11): the networks and the addresses cache (tests refresh it with refresh()). */
  networks?: { service: NetworkService; addresses: AddressBook };
}

/**
 * The composition root: config → store → runtime → services → HTTP. Builds the whole server
 * (no listen); closing the Fastify instance lets go of VMs (they keep running), the database and
 * the data dir.
 */
export async function buildApp(config: Config, opts: { adapters?: AdapterFactory; hostNetworks?: HostNetworksFactory } = {}): Promise<BuiltApp> {
  // --- store ---
  const dirs = { disks: path.join(config.dataDir, 'disks'), isos: path.join(config.dataDir, 'isos'), run: path.join(config.dataDir, 'run') };
  const imagesDir = path.join(config.dataDir, 'images'); // images (issue 12): the library (0700, like disks/)
  fs.mkdirSync(imagesDir, { recursive: true });
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
  const lock = lockDataDir(path.join(config.dataDir, 'server.lock'));
  if ('owner' in lock) throw new StartupError(`another QEMU Manager server (pid ${lock.owner}) uses DATA_DIR ${config.dataDir}`);
  // Only the server that holds the data dir may change it (a second one, refused above, must not
  // take the o+x its QEMU users pass through). Its own dirs: a data dir of an older version had
  // them 0755; QEMU users that must pass through run/ and isos/ get o+x from the adapter, never read.
  for (const d of Object.values(dirs)) fs.chmodSync(d, 0o700);
  fs.chmodSync(imagesDir, 0o700); // images (issue 12)
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
  const vmRepo = new VmRepo(db);
  const diskRepo = new DiskRepo(db);

  // --- HTTP server (routes come last) ---
  const guard = new Guard({ allowedHosts: config.allowedHosts, allowedOrigins: config.allowedOrigins, auth });
  const webDir = uiDir(config.webDir);
  const app = await createHttpServer(config, { guard, spa: webDir !== null });
  registerAudit(app, auditStore);
  // images (issue 12): the images library is a root so disks may back onto an image (image-rules.ts)
  const storage = new StorageRoots([dirs.disks, dirs.isos, imagesDir, ...config.storageRoots]);
  for (const root of storage.writableByOthers()) {
    app.log.warn({ root }, 'a storage root is writable by others: they can replace the images in it; make it writable by the admin only');
  }

  // --- runtime ---
  // networks (issue 11): the host's side first, so the QEMU adapter can make taps through it
  const hostNet = (opts.hostNetworks ?? defaultHostNetworks)(config, dirs, app.log);
  const adapters: AdapterFactory = opts.adapters ?? ((c, d, s, l) => qemuAdapters(c, d, s, l, hostNet));
  const { runtime, images, info } = await adapters(config, { dataDir: config.dataDir, ...dirs }, storage, app.log);
  vmRepo.agentConnected = (id) => runtime.agentStatus?.(id).connected ?? false; // the guest agent (issue 14)

  // --- services ---
  const limits = hostLimits();
  const bus = new EventBus();
  const ctx = {
    repo: vmRepo,
    disks: diskRepo,
    storage,
    runtime,
    bus,
    locks: new OpLocks(),
    config,
    accel: info.accel,
    limits,
    log: app.log,
  };
  const cloudInit = new CloudInitService(ctx, new CloudInitRepo(db)); // cloud-init (issue 12)
  const power = new PowerService(ctx, cloudInit);
  // networks (issue 11): the host's side, the records, the addresses cache and the services
  const netRepo = new NetworkRepo(db);
  const runningVms = () => vmRepo.list().filter((v) => runtime.process(v.id) !== null).map((v) => v.id);
  // a lease or an agent's interfaces changed: the list cache follows, and the VMs whose addresses changed are sent (vm.updated)
  const addressesSent = new Map<string, string>();
  const addressesChanged = () => {
    vmRepo.version++;
    for (const v of vmRepo.list()) {
      const key = JSON.stringify(v.addresses);
      if ((addressesSent.get(v.id) ?? '[]') !== key) bus.publish({ type: 'vm.updated', vm: publicVm(v) });
      addressesSent.set(v.id, key);
    }
  };
  const addresses = new AddressBook({ repo: netRepo, host: hostNet, runtime, running: runningVms, changed: addressesChanged });
  const networkService = new NetworkService({ repo: netRepo, host: hostNet, addresses, log: app.log, vmName: (id) => vmRepo.get(id)?.name ?? null, running: runningVms });
  const netDeps = { ctx, repo: netRepo, networks: networkService, host: hostNet };
  const nicService = new NicService(netDeps);
  const forwardService = new ForwardService(netDeps);
  vmRepo.addresses = (vm) => addresses.of(vm);
  vmRepo.planNic = (network, taken) => {
    const n = networkService.usable(network);
    return { networkId: n.id, ip: networkService.allocateIp(n, taken) };
  };
  power.launchNics = (vm) => nicService.launchNics(vm);
  // a VM made or deleted: the fixed addresses and forwards of the managed networks follow
  const stopNetSync = bus.subscribe((ev) => {
    if (ev.type === 'vm.created' || ev.type === 'vm.deleted') void networkService.resync(ev.type);
  });
  const tasks = new TaskService(new TaskRepo(db), bus, app.log);
  // images (issue 12): the library, and new VMs from an image
  const imageRepo = new ImageRepo(db);
  const imageLibrary = new ImageService({
    repo: imageRepo,
    images,
    storage,
    tasks,
    dir: imagesDir,
    maxBytes: config.maxUploadBytes,
    idleMs: config.http.uploadIdleTimeoutMs,
    catalogue: loadCatalogue(),
  });
  // Names clones, conversions, imports and new VMs in flight will take: one set, so two of them never plan one name.
  const reservedNames = new Set<string>();
  const fromImage = new CreateFromImage({
    ctx,
    tasks,
    images,
    library: {
      require: (name) => imageLibrary.require(name),
      use: (name) => imageLibrary.use(name),
      recordOverlay: (diskId, image, at) => imageRepo.recordOverlay(diskId, image, at),
    },
    dir: dirs.disks,
    reserved: reservedNames,
    // cloud-init (issue 12): checked before anything is made, stored in the VM's transaction
    validateCloudInit: checkCloudInitBody,
    applyCloudInit: (vmId, body) => void cloudInit.set(vmId, body, { emit: false }),
  });
  const vms = new VmService(ctx, power, (diskId) => tasks.activeFor({ disk: diskId }), fromImage, cloudInit);
  const disks = new DiskService(diskRepo, images, bus, tasks, dirs.disks, app.log);
  const uploads = new DiskUploads({
    repo: diskRepo,
    images,
    bus,
    storage,
    dir: dirs.disks,
    maxBytes: config.maxUploadBytes,
    idleMs: config.http.uploadIdleTimeoutMs,
  });
  const clones = new CloneService(ctx, tasks, images, dirs.disks, reservedNames, cloudInit); // clones and backing chains (issue 10); cloud-init copied (issue 12)
  const templates = new TemplateService(ctx, clones); // templates (issue 12)
  const isos = new IsoService(dirs.isos, bus, config.maxUploadBytes, config.http.uploadIdleTimeoutMs);
  // disk resize (issue 10)
  const resize = new DiskResizeService(ctx, images, tasks);
  // snapshots (issue 10)
  const snapshots = new SnapshotService(ctx, new SnapshotRepo(db), images, tasks);
  // import and convert (issue 10)
  const imports = new DiskImports({
    repo: diskRepo,
    images,
    bus,
    storage,
    tasks,
    dir: dirs.disks,
    maxBytes: config.maxUploadBytes,
    idleMs: config.http.uploadIdleTimeoutMs,
    reserved: reservedNames,
  });
  const converts = new DiskConvertService(ctx, tasks, images, dirs.disks, reservedNames);
  // backups: engine and targets; restore, verify, delete, import; schedules and retention (issue 13)
  const backupRepo = new BackupRepo(db);
  // backups: engine and targets (issue 13)
  const backupTargets = new BackupTargets(backupRepo, db, { dataDir: config.dataDir, ...dirs }, storage.list);
  const backups = new BackupService(ctx, tasks, images, backupRepo, backupTargets, info.version);
  const interruptedBackups = tasks.list({ limit: 1000 }).filter((t) => t.kind === 'backup.create' && (t.status === 'queued' || t.status === 'running'));
  const backupOpsDeps = { repo: backupRepo, vm: ctx, images, tasks, bus, log: app.log, dataDir: config.dataDir, disksDir: dirs.disks, targets: backupTargets, reserved: reservedNames };
  const backupOps = {
    imports: new BackupImports(backupOpsDeps),
    verify: new BackupVerify(backupOpsDeps),
    restore: new BackupRestore(backupOpsDeps),
    remove: new BackupDelete(backupOpsDeps),
  };
  // schedules: the engine makes each backup, the delete prunes (merging what later backups need).
  const scheduleRepo = new ScheduleRepo(db);
  const resolveTarget = (name: string) => backupTargets.resolve(name);
  const scheduler = new BackupScheduler({
    repo: scheduleRepo,
    tasks,
    runner: backups,
    pruner: { remove: (id) => backupOps.remove.start(id).task },
    backups: (f) => backupRepo.list(f),
    vm: (id) => vmRepo.get(id),
    allVms: () => vmRepo.list(),
    bus,
    log: app.log,
  });
  const schedules = new BackupSchedules({
    repo: scheduleRepo,
    vmExists: (id) => vmRepo.get(id) !== null,
    resolveTarget,
    changed: () => scheduler.rearm(),
    runNow: (s) => scheduler.run(s),
  });

  const interruptedTasks = tasks.recover();
  if (interruptedTasks) app.log.warn({ interrupted: interruptedTasks }, 'tasks interrupted by a restart were marked failed');
  const interrupted = disks.recover();
  const tightened = disks.restrictModes();
  if (tightened) app.log.warn({ tightened }, 'managed disk images others could read are now owner-only');
  if (interrupted) app.log.warn({ interrupted }, 'disk creations interrupted by a restart were marked failed');
  const reconciled = await power.reconcile();
  app.log.info({ ...reconciled, accel: info.accel, reason: info.accelReason }, 'state reconciled');
  // networks (issue 11): after the VMs are adopted, the host's networks are made to match the records
  try {
    await networkService.reconcile();
  } catch (err) {
    app.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'the host networks could not be reconciled');
  }
  await addresses.refresh().catch(() => undefined);
  // backups: engine (issue 13): after the VMs are adopted, their left-over backup jobs go
  const backupsRecovered = await backups.recover(interruptedBackups.map((t) => ({ id: t.id, kind: t.kind, vm: t.target.vm ?? null, error: tasks.get(t.id).error })));
  if (backupsRecovered.partials || backupsRecovered.jobs || backupsRecovered.missing) app.log.warn(backupsRecovered, 'backups interrupted by a restart were cleared');
  for (const dir of backupsRecovered.unlisted) {
    try {
      backupOps.imports.start(dir); // a task: every file is checked before it is listed again
      app.log.warn({ dir }, 'a complete backup a crash left unlisted is being listed again');
    } catch (err) {
      app.log.warn({ dir, err: err instanceof Error ? err.message : String(err) }, 'a backup directory with no row could not be listed again');
    }
  }

  // service and autostart (issue 15): after a host boot, the autostart VMs start (in the background)
  const autostart = new Autostart({ ctx, power, tasks, log: app.log, bootIdFile: config.bootIdFile, recordFile: path.join(config.dataDir, 'host-boot-id') });
  const hostShutdown = new HostShutdown({ ctx, power, tasks });

  // the stuck-boot hint (issue 14): fed by the sampler, shown on the VM object; a change bumps the list and sends vm.updated
  const hints = new HintService({
    idleMs: config.hintIdleMs ?? 180_000,
    frame: (id) => metrics.screenshot(id, null),
    bootable: (id) => {
      const vm = vmRepo.get(id);
      return vm ? hasBootMedium(vm) : null;
    },
    changed: (id) => {
      if (!vmRepo.get(id)) return;
      vmRepo.version++;
      emitVm(ctx, id);
    },
  });
  vmRepo.hint = (id) => hints.get(id);
  const unsubscribeHints = runtime.subscribe((ev) => {
    if (ev.type === 'reset') hints.reset(ev.vmId);
  });
  // metrics (issue 14): one sampler for every running VM, its history in the database
  const metrics = new MetricsService({
    repo: new MetricsRepo(db),
    runtime,
    intervalMs: config.metricsIntervalMs ?? 5000,
    log: app.log,
    storage: () => [
      ...storage.list.map((p) => ({ kind: 'storage-root' as const, name: p, path: p })),
      ...backupTargets.all().map((t) => ({ kind: 'backup-target' as const, name: t.name, path: t.path })),
    ],
    requireVm: (id) => void requireVm(ctx, id),
    onSample: (id, pid, at, cpu) => hints.sample(id, pid, at, cpu), // the stuck-boot hint (issue 14)
    onNotRunning: (id) => hints.stopped(id),
  });

  // alerts (issue 14): endpoints told of crashes, failed tasks, low space and the server's start
  const notifications = new NotificationService({
    repo: new NotificationRepo(db),
    log: app.log,
    retryBaseMs: config.notifyRetryBaseMs ?? 30_000,
    storageCheckMs: config.notifyStorageCheckMs ?? 60_000,
    storage: () => metrics.host().storage,
  });
  power.onCrash = (vm, reason) => notifications.notify(payloads.crashed(vm, reason));
  const stopAlerts = bus.subscribe((ev) => notifications.onServerEvent(ev));
  app.addHook('onReady', async () => notifications.notify(payloads.started(API_VERSION)));

  // --- routes, console, UI ---
  const serial = new SerialService({ runtime, checkConsole: (id) => void power.vncTarget(id), requireVm: (id) => void vms.get(id) }); // serial console (issue 14)
  const mountedIso = (file: string) => vmRepo.list().some((v) => v.iso === file || v.driversIso === file); // (issue 12: the drivers CD-ROM too)
  await app.register(
    async (api) => {
      await api.register(
        systemRoutes({
          version: API_VERSION,
          qemuVersion: info.version,
          accel: info.accel,
          accelReason: info.accelReason,
          limits,
          totals: () => memoryTotals(ctx),
          guestIsolation: () => info.guestIsolation(),
        }),
      );
      await api.register(vmRoutes(vms, power, templates)); // (templates: issue 12)
      await api.register(diskRoutes(disks));
      await api.register(taskRoutes(tasks));
      await api.register(diskUploadRoutes(uploads));
      await api.register(isoRoutes(isos, mountedIso));
      await api.register(eventRoutes(bus, { maxPerClient: config.http.maxSsePerClient }));
      await api.register(
        authRoutes({
          auth,
          checkConsole: (id) => void power.vncTarget(id),
          checkSerial: (id) => void serial.channel(id), // serial console (issue 14)
          secureCookies: (req) => config.tls !== null || (config.trustProxy !== null && req.protocol === 'https'),
        }),
      );
      await api.register(auditRoutes(auditStore));
      // disk resize (issue 10)
      await api.register(diskResizeRoutes(resize));
      await api.register(agentRoutes(new AgentService(ctx))); // the guest agent (issue 14)
      // snapshots (issue 10)
      await api.register(snapshotRoutes(snapshots));
      await api.register(cloneRoutes(clones)); // clones and backing chains (issue 10)
      await api.register(diskImportRoutes(imports, converts)); // import and convert (issue 10)
      await api.register(backupScheduleRoutes(schedules)); // backups: schedules and retention (issue 13)
      await api.register(backupOpsRoutes(backupOps)); // backups: restore, verify, delete, import (issue 13)
      await api.register(backupTargetRoutes(backupTargets)); // backups: targets (issue 13)
      await api.register(backupRoutes(backups)); // backups: engine (issue 13)
      await api.register(hostRoutes(autostart, hostShutdown)); // service and autostart (issue 15)
      await api.register(hardwareRoutes(new HardwareService(ctx))); // hardware options (issue 12)
      await api.register(imageRoutes(imageLibrary)); // images (issue 12)
      await api.register(templateRoutes(templates)); // templates (issue 12)
      await api.register(cloudInitRoutes(cloudInit)); // cloud-init (issue 12)
      await api.register(metricsRoutes(metrics)); // metrics (issue 14)
      await api.register(serialRoutes(serial)); // serial console (issue 14)
      await api.register(notificationRoutes(notifications)); // alerts (issue 14)
      await api.register(networkRoutes(networkService, nicService, forwardService)); // networks (issue 11)
    },
    { prefix: '/api' },
  );
  await registerApiDocs(app); // GET /api/docs: interactive docs of /api/openapi.json (issue 15)
  if (webDir) await registerStaticUi(app, webDir);
  const proxy = createVncProxy({ resolveTarget: (id) => power.vncTarget(id), log: app.log });
  const serialProxy = createSerialProxy({ resolve: (id) => serial.channel(id), log: app.log }); // serial console (issue 14)
  registerConsoleUpgrade(app, {
    guard,
    ticketRequired: () => auth.required,
    redeemTicket: (ticket, vmId, kind) => auth.redeemTicket(ticket, vmId, kind), // kind: serial console (issue 14)
    checkConsole: (vmId) => void power.vncTarget(vmId),
    handleUpgrade: (req, socket, head) => proxy.handleUpgrade(req, socket, head),
    audit: (e) => auditStore.record({ ...e, action: 'CONSOLE /api/vnc/:vm_id' }),
    // serial console (issue 14)
    serial: {
      checkConsole: (vmId) => void serial.channel(vmId),
      handleUpgrade: (req, socket, head) => serialProxy.handleUpgrade(req, socket, head),
      audit: (e) => auditStore.record({ ...e, action: 'CONSOLE /api/vms/:vm_id/serial' }),
    },
  });

  // Live consoles would keep server.close() waiting: end them first.
  app.addHook('preClose', async () => {
    proxy.close();
    serialProxy.close(); // serial console (issue 14)
  });
  app.addHook('onClose', async () => {
    scheduler.stop(); // backups: schedules and retention (issue 13)
    metrics.stop(); // metrics (issue 14)
    unsubscribeHints(); // the stuck-boot hint (issue 14)
    stopAlerts(); // alerts (issue 14)
    notifications.close();
    await autostart.close(); // service and autostart (issue 15)
    power.close();
    // networks (issue 11): the nftables table goes when nothing of ours needs it
    addresses.stop();
    stopNetSync();
    await networkService.stop();
    runtime.detachAll();
    await tasks.shutdown();
    db.close();
    lock.release();
  });
  scheduler.start(); // backups: schedules and retention (issue 13): missed runs, then the timer
  autostart.begin(); // service and autostart (issue 15)
  metrics.start(); // metrics (issue 14): stored history back, then the timer
  addresses.start(); // networks (issue 11): leases and agent addresses, read every few seconds
  return { app, vms, power, disks, tasks, metrics, bus, notifications, networks: { service: networkService, addresses } };
}
