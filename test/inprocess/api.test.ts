/**
 * The in-process tier: the whole server (buildApp) over a fake hypervisor, driven with inject()
 * (and a loopback socket where only one shows the behaviour). Every route and every error code a
 * request can produce; the last tests check that none was left out.
 */
import { ErrorCodes, type ErrorCode } from '@qemu-manager/contract';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { routeHits, seenCodes } from './check.js';
import { authSuite } from './suites/auth.js';
import { hostSuite } from './suites/host.js';
import { storageSuite } from './suites/storage.js';
import { taskSuite } from './suites/tasks.js';
import { uploadSuite } from './suites/upload.js';
import { vmSuite } from './suites/vms.js';
// snapshots (issue 10)
import { snapshotSuite } from './suites/snapshots.js';
// disk resize (issue 10)
import { resizeSuite } from './suites/resize.js';
// clones and backing chains (issue 10)
import { cloneSuite } from './suites/clones.js';
// import and convert (issue 10)
import { importSuite } from './suites/import.js';
// backups: schedules and retention (issue 13)
import { backupScheduleSuite } from './suites/backups-schedules.js';
// backups: restore, verify, delete, import (issue 13)
import { backupOpsSuite } from './suites/backups-ops.js';
// backups: engine and targets (issue 13)
import { backupEngineSuite } from './suites/backups-engine.js';
// service and autostart (issue 15)
import { serviceSuite } from './suites/service.js';
// hardware options (issue 12)
import { hardwareSuite } from './suites/hardware.js';
// images (issue 12)
import { imagesSuite } from './suites/images.js';
// hardware options and templates (issue 12, second part)
import { presetSuite, templateSuite } from './suites/presets.js';
// cloud-init (issue 12)
import { cloudInitSuite } from './suites/cloud-init.js';
import { serialSuite } from './suites/serial.js'; // serial console (issue 14)
import { agentSuite } from './suites/agent.js'; // the guest agent (issue 14)
import { metricsSuite } from './suites/metrics.js'; // metrics (issue 14)
import { hintSuite } from './suites/hints.js'; // the stuck-boot hint (issue 14)
import { notificationSuite } from './suites/notifications.js'; // alerts (issue 14)
import { networkSuite } from './suites/networks.js'; // networks (issue 11)

vmSuite();
storageSuite();
authSuite();
hostSuite();
taskSuite();
uploadSuite();
// disk resize (issue 10)
resizeSuite();
// snapshots (issue 10)
snapshotSuite();
cloneSuite(); // clones and backing chains (issue 10)
importSuite(); // import and convert (issue 10)
backupScheduleSuite(); // backups: schedules and retention (issue 13)
backupOpsSuite(); // backups: restore, verify, delete, import (issue 13)
backupEngineSuite(); // backups: engine and targets (issue 13)
serviceSuite(); // service and autostart (issue 15)
hardwareSuite(); // hardware options (issue 12)
imagesSuite(); // images (issue 12)
presetSuite(); // hardware options: machine, bus, NIC, boot order, presets, drivers ISO (issue 12)
templateSuite(); // templates (issue 12)
cloudInitSuite(); // cloud-init (issue 12)
serialSuite(); // serial console (issue 14)
agentSuite(); // the guest agent (issue 14)
metricsSuite(); // metrics (issue 14)
hintSuite(); // the stuck-boot hint (issue 14)
notificationSuite(); // alerts (issue 14)
networkSuite(); // networks (issue 11)

/**
 * Codes no request to this server can produce with a fake hypervisor: none today. (A code only the
 * real host can produce goes here, with the reason.)
 */
const HOST_ONLY: ReadonlyArray<{ code: ErrorCode; why: string }> = [];

const openapi = JSON.parse(
  fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../packages/contract/openapi.json'), 'utf8'),
) as { paths: Record<string, Record<string, unknown>> };

describe('coverage of the in-process tier', () => {
  it('every route of the committed OpenAPI document answered with a success at least once', () => {
    const routes = Object.entries(openapi.paths).flatMap(([p, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${p.replace(/\{(\w+)\}/g, ':$1')}`),
    );
    expect(routes.length).toBeGreaterThan(30);
    const missing = routes.filter((r) => ![...(routeHits.get(r) ?? [])].some((st) => st >= 200 && st < 300));
    expect(missing).toEqual([]);
  });

  it('every error code was produced by a request, except the commented host-only list', () => {
    const expected = ErrorCodes.filter((c) => !HOST_ONLY.some((h) => h.code === c));
    expect(expected.filter((c) => !seenCodes.has(c))).toEqual([]);
    for (const h of HOST_ONLY) expect(seenCodes.has(h.code), `${h.code} is listed as host-only but was produced`).toBe(false);
  });
});
