// Browser test of the backups UI (issue 13) against a real server (real qemu-img; a VM is started
// only to see that "replace" is refused while it runs). The VM page's Backups section backs up a
// stopped VM fully and then incrementally, verifies, restores as a new machine and deletes the full
// backup the incremental builds on (the dialog says it is merged); the Backups page adds targets
// (refusals in words), filters all backups, imports, and makes a schedule whose retention preview
// shows what it keeps before saving.
//
// Each part needs server routes that other parts of issue 13 add. A part whose routes answer 404
// here is skipped with the reason; while the server has none of them, a second block runs the same
// screens against stand-in answers in the browser (page.route), so the UI itself is still checked.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page, Route } from 'playwright-core';
import { launchBrowser, shot, SHOTS } from './browser.js';
import { startServer, type E2EServer } from './server.js';

let server: E2EServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let tmp: string;
const pageErrors: string[] = [];

interface ApiTask { id: string; kind: string; status: string; error: string | null; result: Record<string, unknown> | null }
interface ApiBackup { id: string; vm: string; vmName: string; target: string; createdAt: string; kind: string; parent: string | null; sizeBytes: number; verifiedAt: string | null; state: string }

/** Which route groups the server does not have yet (404 from the not-found handler, not a resource 404). */
const missing = { targets: false, list: false, create: false, actions: false, import: false, schedules: false };
const REASON = (what: string) => `the server has no ${what} yet (404 "Not found"): enable after merging the server parts of issue 13`;

async function routeMissing(method: string, path: string, body?: unknown): Promise<boolean> {
  const r = await server.api<{ error?: string; code?: string }>(method, path, body);
  return r.status === 404 && r.body?.code === 'NOT_FOUND' && /^Not found:/.test(r.body?.error ?? '');
}

let vmId: string;
let diskPath: string;

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  tmp = await mkdtemp(join(tmpdir(), 'qm-e2e-backups-'));
  server = await startServer();
  // A stopped VM with one small qcow2 disk (created by the real qemu-img).
  const disk = await server.api<{ disk: { id: string; path: string } }>('POST', '/disks', { name: 'bk-disk', size: 1, format: 'qcow2' });
  expect(disk.status).toBe(201);
  diskPath = disk.body.disk.path;
  const until = Date.now() + 30_000;
  for (;;) {
    const d = await server.api<{ disk: { status: string } }>('GET', `/disks/${disk.body.disk.id}`);
    if (d.body.disk.status === 'ready') break;
    if (Date.now() > until) throw new Error('disk not ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  const vm = await server.api<{ vm: { id: string } }>('POST', '/vms', { name: 'bk-vm', cpus: 1, memory: 128 });
  expect(vm.status).toBe(201);
  vmId = vm.body.vm.id;
  expect((await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath })).status).toBe(200);

  missing.targets = await routeMissing('GET', '/backup-targets');
  missing.list = await routeMissing('GET', '/backups');
  // Bodies the contract refuses: a route that exists answers 400 without doing anything.
  missing.create = await routeMissing('POST', `/vms/${vmId}/backups`, { mode: 'bogus' });
  missing.actions = await routeMissing('POST', '/backups/00000000-0000-4000-8000-000000000000/verify');
  missing.import = await routeMissing('POST', '/backups/import', {});
  missing.schedules = await routeMissing('GET', '/backup-schedules');
  console.info(`backup routes missing on this server: ${JSON.stringify(missing)}`);

  browser = await launchBrowser();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state !== 'fail' || !page) return;
  const name = ctx.task.name.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 60);
  await page.screenshot({ path: join(SHOTS, `failed-backups-${name}.png`), fullPage: true }).catch(() => {});
  console.error(`--- server log (tail) after "${ctx.task.name}" ---\n${server?.log().slice(-4000)}`);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function waitTask(id: string, timeoutMs = 60_000): Promise<ApiTask> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await server.api<{ task: ApiTask }>('GET', `/tasks/${id}`);
    if (['succeeded', 'failed', 'cancelled'].includes(body.task.status)) return body.task;
    if (Date.now() > until) throw new Error(`task ${id} did not end: ${JSON.stringify(body.task)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
async function backupsOf(query = ''): Promise<ApiBackup[]> {
  const { status, body } = await server.api<{ backups: ApiBackup[] }>('GET', `/backups${query}`);
  expect(status).toBe(200);
  return body.backups;
}
async function waitVmStatus(status: string) {
  const until = Date.now() + 30_000;
  while ((await server.api<{ vm: { status: string } }>('GET', `/vms/${vmId}`)).body.vm.status !== status) {
    if (Date.now() > until) throw new Error(`VM not ${status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('backups UI against the real server', () => {
  it('shows a Backups entry in the navigation and the sections load (or say why not, in words)', async () => {
    await page.goto(`${server.url}/vms/${vmId}`);
    await page.locator('[data-testid=live-indicator][data-state=live]').waitFor({ timeout: 10_000 });
    const section = page.getByTestId('vm-backups');
    await section.waitFor();
    if (missing.list) {
      // The server's own message, next to the list it concerns.
      const err = section.getByTestId('backups-error');
      await err.waitFor();
      expect(await err.textContent()).toMatch(/Could not load the backups\. Not found: GET \/api\/backups/);
    } else {
      await section.getByTestId('backups-empty').waitFor();
    }
    await page.getByTestId('nav-backups').click();
    await page.getByTestId('backups-page').waitFor();
    expect(await page.title()).toMatch(/^Backups/);
    if (missing.targets) expect(await page.getByTestId('targets-error').textContent()).toMatch(/Not found: GET \/api\/backup-targets/);
    else await page.getByTestId('target-default').waitFor();
    expect(pageErrors).toEqual([]);
  });

  it('backs up the running VM from its page: full, then automatic (incremental on the full), with the kind, size and verify', async (ctx) => {
    ctx.skip(missing.create || missing.list, REASON('POST /api/vms/{id}/backups or GET /api/backups'));
    // Running (QEMU with no bootable disk is enough): a live backup keeps dirty bitmaps, so the next one is incremental.
    expect((await server.api('POST', `/vms/${vmId}/start`)).status).toBe(200);
    await waitVmStatus('running');
    await page.goto(`${server.url}/vms/${vmId}`);
    const section = page.getByTestId('vm-backups');
    await section.getByTestId('backups-empty').waitFor();
    const dialog = page.getByTestId('backup-now-dialog');
    // Full
    await section.getByTestId('backup-now-open').click();
    await dialog.waitFor();
    expect(await dialog.getByTestId('backup-now-target').inputValue()).toBe('default');
    expect(await dialog.getByTestId('backup-now-mode-auto').isChecked()).toBe(true);
    await dialog.getByTestId('backup-now-mode-full').check();
    await dialog.getByTestId('backup-now-submit').click();
    await dialog.waitFor({ state: 'detached', timeout: 60_000 });
    await section.locator('[data-testid^=backup-][data-kind=full]').waitFor({ timeout: 10_000 });
    // Automatic: an incremental on top of the full one.
    await section.getByTestId('backup-now-open').click();
    await dialog.getByTestId('backup-now-submit').click();
    await dialog.waitFor({ state: 'detached', timeout: 60_000 });
    const inc = section.locator('[data-testid^=backup-][data-kind=incremental]');
    await inc.waitFor({ timeout: 10_000 });
    const list = await backupsOf(`?vm=${vmId}`);
    expect(list.map((b) => b.kind).sort()).toEqual(['full', 'incremental']);
    const full = list.find((b) => b.kind === 'full')!;
    const incremental = list.find((b) => b.kind === 'incremental')!;
    expect(incremental.parent).toBe(full.id);
    expect(await inc.getAttribute('data-parent')).toBe(full.id);
    expect(await inc.getByTestId('backup-details').textContent()).toMatch(/^Incremental on .+ · .+B · Target: default/);
    expect(await inc.getByTestId('backup-verified').textContent()).toBe('Verified: Not yet');

    ctx.skip(missing.actions, REASON('POST /api/backups/{id}/verify'));
    await inc.getByTestId('backup-verify').click();
    await page.waitForFunction((id) => !document.querySelector(`[data-testid="backup-${id}"] [data-testid=backup-verified]`)?.textContent?.includes('Not yet'), incremental.id, { timeout: 60_000 });
    expect((await backupsOf(`?vm=${vmId}`)).find((b) => b.id === incremental.id)?.verifiedAt).not.toBeNull();
    await shot(page, '16-backups-vm');
  });

  it('restore: replace is disabled with the reason while the VM runs; as new it opens the new machine', async (ctx) => {
    ctx.skip(missing.create || missing.list || missing.actions, REASON('POST /api/backups/{id}/restore'));
    const [newest] = await backupsOf(`?vm=${vmId}`);
    if ((await server.api<{ vm: { status: string } }>('GET', `/vms/${vmId}`)).body.vm.status !== 'running') {
      expect((await server.api('POST', `/vms/${vmId}/start`)).status).toBe(200);
      await waitVmStatus('running');
    }
    await page.goto(`${server.url}/vms/${vmId}`);
    const row = page.getByTestId(`backup-${newest.id}`);
    await row.getByTestId('backup-restore').click();
    const dialog = page.getByTestId('restore-backup-dialog');
    await dialog.waitFor();
    expect(await dialog.getByTestId('restore-backup-as-replace').isDisabled()).toBe(true);
    expect(await dialog.getByTestId('restore-replace-blocked').textContent()).toBe('Stop the machine to replace its disks.');
    expect(await dialog.getByTestId('restore-backup-name').inputValue()).toBe('bk-vm-restored');
    await dialog.getByTestId('restore-backup-name').fill('bk-vm');
    expect(await dialog.locator('.field-error').textContent()).toBe('A machine with this name already exists.');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect((await server.api('POST', `/vms/${vmId}/stop`)).status).toBe(200);
    await waitVmStatus('stopped');

    await row.getByTestId('backup-restore').click();
    await dialog.waitFor();
    await page.waitForFunction(() => !document.querySelector<HTMLInputElement>('[data-testid=restore-backup-as-replace]')?.disabled, undefined, { timeout: 10_000 });
    await dialog.getByTestId('restore-backup-submit').click();
    await dialog.waitFor({ state: 'detached', timeout: 60_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid=vm-detail-name]')?.textContent === 'bk-vm-restored', undefined, { timeout: 10_000 });
    const { body } = await server.api<{ vms: Array<{ id: string; name: string; mac: string }> }>('GET', '/vms');
    const made = body.vms.find((v) => v.name === 'bk-vm-restored')!;
    expect(made.id).not.toBe(vmId);
    expect(made.mac).not.toBe(body.vms.find((v) => v.id === vmId)!.mac);
  });

  it('deleting the full backup the incremental builds on says it is merged; the incremental stays', async (ctx) => {
    ctx.skip(missing.create || missing.list || missing.actions, REASON('DELETE /api/backups/{id}'));
    const list = await backupsOf(`?vm=${vmId}`);
    const full = list.find((b) => b.kind === 'full' && list.some((x) => x.parent === b.id))!;
    const child = list.find((x) => x.parent === full.id)!;
    await page.goto(`${server.url}/vms/${vmId}`);
    await page.getByTestId(`backup-${full.id}`).getByTestId('backup-delete').click();
    const dialog = page.getByTestId('delete-backup-dialog');
    await dialog.waitFor();
    expect(await dialog.getByTestId('delete-backup-consequence').textContent()).toMatch(/merged into them, not lost/);
    await dialog.getByTestId('delete-backup-dialog-confirm').click();
    await dialog.waitFor({ state: 'detached', timeout: 10_000 });
    await page.getByTestId(`backup-${full.id}`).waitFor({ state: 'detached', timeout: 60_000 });
    await page.getByTestId(`backup-${child.id}`).waitFor();
    const after = await backupsOf(`?vm=${vmId}`);
    expect(after.map((b) => b.id)).not.toContain(full.id);
    expect(after.map((b) => b.id)).toContain(child.id);
  });

  it('targets: a relative path is explained before sending, a file is refused in words, a directory is listed with free space', async (ctx) => {
    ctx.skip(missing.targets, REASON('GET/POST/DELETE /api/backup-targets'));
    const dir = join(tmp, 'nas');
    await mkdir(dir);
    const file = join(tmp, 'not-a-dir');
    await writeFile(file, 'x');
    await page.goto(`${server.url}/backups`);
    const card = page.getByTestId('backup-targets');
    await card.getByTestId('target-default').waitFor();
    expect(await card.getByTestId('target-default').getByTestId('target-delete').count()).toBe(0);
    await card.getByTestId('target-add-name').fill('nas');
    await card.getByTestId('target-add-path').fill('relative/dir');
    expect(await card.locator('.field-error').textContent()).toBe('Enter an absolute path (starting with “/”).');
    expect(await card.getByTestId('target-add-submit').isDisabled()).toBe(true);
    await card.getByTestId('target-add-path').fill(file);
    await card.getByTestId('target-add-submit').click();
    const refusal = card.getByTestId('target-add-error');
    await refusal.waitFor();
    expect((await refusal.textContent())!.length).toBeGreaterThan(5);
    expect((await server.api<{ targets: Array<{ name: string }> }>('GET', '/backup-targets')).body.targets.map((x) => x.name)).not.toContain('nas');
    await card.getByTestId('target-add-path').fill(dir);
    await card.getByTestId('target-add-submit').click();
    await card.getByTestId('target-nas').waitFor({ timeout: 10_000 });
    expect(await card.getByTestId('target-nas').getByTestId('target-free').textContent()).toMatch(/free of .* · 0 backups/);

    // A target holding a backup cannot be removed: the server's 409 reason, in the dialog.
    if (!missing.create) {
      const r = await server.api<{ task: ApiTask }>('POST', `/vms/${vmId}/backups`, { target: 'nas', mode: 'full' });
      expect(r.status).toBe(202);
      expect((await waitTask(r.body.task.id)).status).toBe('succeeded');
      await page.reload();
      await card.getByTestId('target-nas').getByTestId('target-delete').click();
      const del = page.getByTestId('delete-target-dialog');
      await del.getByTestId('delete-target-dialog-confirm').click();
      await del.getByTestId('delete-target-dialog-error').waitFor();
      expect((await del.getByTestId('delete-target-dialog-error').textContent())!.length).toBeGreaterThan(5);
      await del.getByTestId('delete-target-dialog-cancel').click();
    }
  });

  it('all backups filter by VM and target; an import of a directory that is no backup is refused in words', async (ctx) => {
    ctx.skip(missing.list || missing.targets, REASON('GET /api/backups or /api/backup-targets'));
    await page.goto(`${server.url}/backups`);
    const card = page.getByTestId('all-backups');
    const all = await backupsOf();
    if (all.length > 0) {
      await card.getByTestId('all-backup-list').waitFor();
      expect(await card.locator('.backup-item').count()).toBe(all.length);
      await card.getByTestId('backups-filter-target').selectOption('nas');
      await page.waitForFunction((n) => document.querySelectorAll('[data-testid=all-backups] .backup-item').length === n, all.filter((b) => b.target === 'nas').length);
      await card.getByTestId('backups-filter-target').selectOption('');
      await card.getByTestId('backups-filter-vm').selectOption(vmId);
      await page.waitForFunction((n) => document.querySelectorAll('[data-testid=all-backups] .backup-item').length === n, all.filter((b) => b.vm === vmId).length);
    }
    ctx.skip(missing.import, REASON('POST /api/backups/import'));
    const imp = page.getByTestId('backup-import');
    await imp.getByTestId('backup-import-path').fill(tmp);
    await imp.getByTestId('backup-import-submit').click();
    await imp.getByTestId('backup-import-error').waitFor({ timeout: 30_000 });
    expect((await imp.getByTestId('backup-import-error').textContent())!.length).toBeGreaterThan(5);
  });

  it('schedules: the retention preview shows what is kept and pruned before saving; save, run now, disable', async (ctx) => {
    ctx.skip(missing.schedules || missing.list, REASON('/api/backup-schedules'));
    await page.goto(`${server.url}/backups`);
    const card = page.getByTestId('backup-schedules');
    await card.getByTestId('schedules-empty').waitFor();
    await card.getByTestId('schedule-new').click();
    const dialog = page.getByTestId('schedule-dialog');
    await dialog.waitFor();
    await dialog.getByTestId('schedule-name').fill('nightly');
    await dialog.getByTestId('schedule-every').selectOption('cron');
    await dialog.getByTestId('schedule-cron').fill('61 2 * * *');
    expect(await dialog.locator('.field-error').first().textContent()).toMatch(/out of range/);
    await dialog.getByTestId('schedule-cron').fill('30 2 * * *');
    await dialog.getByTestId('schedule-keepLast').fill('1');
    const onDefault = (await backupsOf(`?vm=${vmId}`)).filter((b) => b.target === 'default');
    if (onDefault.length > 0) {
      const group = dialog.getByTestId('preview-bk-vm');
      await group.waitFor();
      expect(await group.getAttribute('data-keep')).toBe('1');
      expect(await group.getAttribute('data-prune')).toBe(String(onDefault.length - 1));
    }
    await shot(page, '17-backups-schedule-preview');
    await dialog.getByTestId('schedule-submit').click();
    await dialog.waitFor({ state: 'detached', timeout: 10_000 });
    const item = card.getByTestId('schedule-nightly');
    await item.waitFor();
    ctx.skip(missing.create, REASON('POST /api/vms/{id}/backups (a schedule run backs up)'));
    await item.getByTestId('schedule-run').click();
    await page.locator('[data-testid=schedule-nightly] [data-testid=schedule-last-status]').waitFor({ timeout: 120_000 });
    await item.getByTestId('schedule-toggle').click();
    await page.locator('[data-testid=schedule-nightly][data-enabled=false]').waitFor({ timeout: 10_000 });
    await shot(page, '17-backups-page');
  });
});

// ---- stand-in answers for the backup routes, only while the server has none of them ----

interface StubState {
  targets: Array<Record<string, unknown> & { name: string }>;
  backups: ApiBackup[];
  schedules: Array<Record<string, unknown> & { id: string; name: string }>;
  requests: string[];
}

const iso = (d: number) => new Date(Date.UTC(2025, 10, d, 2, 0)).toISOString();
const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** Answers /api/backup-targets, /api/backups…, /api/vms/{id}/backups, /api/backup-schedules… and their tasks in the browser. */
async function installStandIn(p: Page, vm: { id: string; name: string }): Promise<StubState> {
  let next = 100;
  const backup = (d: number, kind: string, parent: string | null, target = 'default'): ApiBackup & Record<string, unknown> => ({
    id: uuid(next++), vm: vm.id, vmName: vm.name, target, createdAt: iso(d), kind, parent, sizeBytes: kind === 'full' ? 420 * 1024 * 1024 : 12 * 1024 * 1024,
    verifiedAt: null, state: 'ok', frozen: false, disks: [],
  });
  const b1 = backup(1, 'full', null);
  const b2 = backup(2, 'incremental', b1.id);
  const b3 = backup(3, 'incremental', b2.id);
  const b4 = backup(3, 'full', null, 'nas');
  b4.createdAt = new Date(Date.UTC(2025, 10, 3, 14, 0)).toISOString();
  const state: StubState = {
    targets: [
      { name: 'default', path: '/var/lib/qemu-manager/backups', default: true, freeBytes: 40 * 2 ** 30, totalBytes: 100 * 2 ** 30, backups: 3 },
      { name: 'nas', path: '/mnt/nas/backups', default: false, freeBytes: 1.5 * 2 ** 40, totalBytes: 4 * 2 ** 40, backups: 1 },
    ],
    backups: [b1, b2, b3, b4],
    schedules: [],
    requests: [],
  };
  const tasks = new Map<string, ApiTask & Record<string, unknown>>();
  const task = (kind: string, result: Record<string, unknown> | null = null) => {
    const t = {
      id: uuid(9000 + next++), kind, status: 'running', progress: 0.4, bytesDone: 0, bytesTotal: null, target: { vm: vm.id, disk: null },
      createdAt: new Date().toISOString(), startedAt: new Date().toISOString(), endedAt: null, error: null, result,
    };
    tasks.set(t.id, t);
    return t;
  };
  const json = (route: Route, status: number, body: unknown) => route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(body) });
  const refuse = (route: Route, status: number, code: string, error: string) => json(route, status, { error, code, timestamp: new Date().toISOString() });
  await p.route(/\/api\/(backup-targets|backups|backup-schedules|vms\/[^/]+\/backups|tasks\/00000000-0000-4000-8000-0000000[0-9]{5})(\/|\?|$)/, async (route) => {
    const req = route.request();
    const url = new URL(req.url());
    const path = url.pathname.replace(/^\/api/, '');
    const method = req.method();
    const body = (req.postDataJSON?.() ?? null) as Record<string, unknown> | null;
    state.requests.push(`${method} ${path}`);
    let m: RegExpMatchArray | null;
    if (path.startsWith('/tasks/')) {
      const t = tasks.get(path.slice(7));
      if (!t) return refuse(route, 404, 'TASK_NOT_FOUND', 'No such task');
      return json(route, 200, { task: { ...t, status: 'succeeded', progress: 1, endedAt: new Date().toISOString() } });
    }
    if (path === '/backup-targets' && method === 'GET') {
      for (const x of state.targets) x.backups = state.backups.filter((b) => b.target === x.name).length;
      return json(route, 200, { targets: state.targets });
    }
    if (path === '/backup-targets' && method === 'POST') {
      if (String(body?.path).startsWith(tmp)) return refuse(route, 400, 'BAD_REQUEST', `Not a directory: ${String(body?.path)}`);
      const target = { name: String(body?.name), path: String(body?.path), default: false, freeBytes: 2 ** 30, totalBytes: 8 * 2 ** 30, backups: 0 };
      state.targets.push(target);
      return json(route, 201, { target });
    }
    if ((m = path.match(/^\/backup-targets\/([^/]+)$/)) && method === 'DELETE') {
      const x = state.targets.find((y) => y.name === decodeURIComponent(m![1]));
      if (x && Number(x.backups) > 0) return refuse(route, 409, 'TARGET_IN_USE', `Target ${x.name} holds ${String(x.backups)} backup(s); delete them first`);
      state.targets = state.targets.filter((y) => y !== x);
      return json(route, 200, { message: 'removed' });
    }
    if (path === '/backups' && method === 'GET') {
      const qvm = url.searchParams.get('vm');
      const qt = url.searchParams.get('target');
      return json(route, 200, { backups: state.backups.filter((b) => (!qvm || b.vm === qvm) && (!qt || b.target === qt)) });
    }
    if ((m = path.match(/^\/vms\/([^/]+)\/backups$/)) && method === 'POST') {
      const to = typeof body?.target === 'string' ? body.target : 'default';
      const newest = state.backups.filter((b) => b.target === to).sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
      const made = backup(4, body?.mode === 'full' || !newest ? 'full' : 'incremental', body?.mode === 'full' || !newest ? null : newest.id, to);
      made.createdAt = new Date().toISOString();
      state.backups.push(made);
      return json(route, 202, { task: task('backup.create') });
    }
    if ((m = path.match(/^\/backups\/([^/]+)\/verify$/)) && method === 'POST') {
      const b = state.backups.find((x) => x.id === m![1]);
      if (!b) return refuse(route, 404, 'BACKUP_NOT_FOUND', 'No such backup');
      b.verifiedAt = new Date().toISOString();
      return json(route, 202, { task: task('backup.verify') });
    }
    if ((m = path.match(/^\/backups\/([^/]+)\/restore$/)) && method === 'POST') {
      return refuse(route, 409, 'VM_NOT_STOPPED', 'Stand-in: restore is not simulated');
    }
    if ((m = path.match(/^\/backups\/([^/]+)$/)) && method === 'DELETE') {
      const b = state.backups.find((x) => x.id === m![1]);
      if (!b) return refuse(route, 404, 'BACKUP_NOT_FOUND', 'No such backup');
      // Merged into its children: they now build on its parent.
      for (const c of state.backups) if (c.parent === b.id) Object.assign(c, { parent: b.parent, kind: b.parent ? 'incremental' : 'full' });
      state.backups = state.backups.filter((x) => x !== b);
      return json(route, 202, { task: task('backup.delete') });
    }
    if (path === '/backups/import' && method === 'POST') return refuse(route, 400, 'BAD_REQUEST', `No manifest.json in ${String(body?.path)}`);
    if (path === '/backup-schedules' && method === 'GET') return json(route, 200, { schedules: state.schedules });
    if (path === '/backup-schedules' && method === 'POST') {
      const s = { id: uuid(5000 + next++), ...body!, name: String(body?.name), enabled: body?.enabled ?? true, nextRunAt: new Date(Date.now() + 3_600_000).toISOString(), lastRunAt: null, lastTask: null, lastStatus: null, createdAt: new Date().toISOString() };
      state.schedules.push(s);
      return json(route, 201, { schedule: s });
    }
    if ((m = path.match(/^\/backup-schedules\/([^/]+)(\/run)?$/))) {
      const s = state.schedules.find((x) => x.id === m![1]);
      if (!s) return refuse(route, 404, 'SCHEDULE_NOT_FOUND', 'No such schedule');
      if (m[2] && method === 'POST') {
        Object.assign(s, { lastRunAt: new Date().toISOString(), lastStatus: 'failed' });
        return json(route, 202, { task: task('backup.schedule') });
      }
      if (method === 'PATCH') return json(route, 200, { schedule: Object.assign(s, body) });
      if (method === 'DELETE') {
        state.schedules = state.schedules.filter((x) => x !== s);
        return json(route, 200, { message: 'deleted' });
      }
    }
    return refuse(route, 404, 'NOT_FOUND', `Stand-in has no ${method} ${path}`);
  });
  return state;
}

describe('backups UI with stand-in answers (only while the server has no backup routes)', () => {
  let standIn: StubState;
  let stubPage: Page;

  it('VM page: lists the chain, backs up, verifies; replace is refused while the VM runs; deleting a parent says it is merged', async (ctx) => {
    ctx.skip(!(missing.targets && missing.list && missing.schedules), 'the server has the backup routes: the real-server block covers this');
    stubPage = await context.newPage();
    stubPage.on('pageerror', (e) => pageErrors.push(e.message));
    standIn = await installStandIn(stubPage, { id: vmId, name: 'bk-vm' });
    const [b1, b2, b3] = standIn.backups;
    await stubPage.goto(`${server.url}/vms/${vmId}`);
    const section = stubPage.getByTestId('vm-backups');
    await section.getByTestId('vm-backup-list').waitFor();
    // Newest first: the nas full, then the chain full ← inc ← inc.
    const order = await section.locator('.backup-item').evaluateAll((els) => els.map((e) => [e.getAttribute('data-kind'), e.getAttribute('data-parent')]));
    expect(order.map((o) => o[0])).toEqual(['full', 'incremental', 'incremental', 'full']);
    expect(await section.getByTestId(`backup-${b3.id}`).getByTestId('backup-details').textContent()).toMatch(/^Incremental on .*2025.* · 12 MiB · Target: default$/);
    expect(await section.getByTestId(`backup-${b1.id}`).getByTestId('backup-details').textContent()).toMatch(/^Full · 420 MiB · Target: default$/);

    // Back up now to the nas target (automatic): the dialog closes when the task has succeeded and the list has it.
    await section.getByTestId('backup-now-open').click();
    const dialog = stubPage.getByTestId('backup-now-dialog');
    expect(await dialog.getByTestId('backup-now-target').locator('option').allTextContents()).toEqual(['default', 'nas']);
    await dialog.getByTestId('backup-now-target').selectOption('nas');
    await dialog.getByTestId('backup-now-submit').click();
    await dialog.waitFor({ state: 'detached', timeout: 10_000 });
    await stubPage.waitForFunction(() => document.querySelectorAll('[data-testid=vm-backups] .backup-item').length === 5, undefined, { timeout: 10_000 });
    expect(standIn.requests).toContain(`POST /vms/${vmId}/backups`);

    // Verify: the row says when.
    const row2 = section.getByTestId(`backup-${b2.id}`);
    await row2.getByTestId('backup-verify').click();
    await stubPage.waitForFunction((id) => document.querySelector(`[data-testid="backup-${id}"] [data-testid=backup-verified]`)?.textContent === 'Verified: just now', b2.id, { timeout: 10_000 });

    // Replace while running: disabled, with the reason. (The VM really runs: QEMU with no bootable disk.)
    expect((await server.api('POST', `/vms/${vmId}/start`)).status).toBe(200);
    await waitVmStatus('running');
    await stubPage.locator('[data-testid=vm-detail-status]').filter({ hasText: 'Running' }).waitFor({ timeout: 10_000 });
    await row2.getByTestId('backup-restore').click();
    const restore = stubPage.getByTestId('restore-backup-dialog');
    await restore.waitFor();
    expect(await restore.getByTestId('restore-backup-as-replace').isDisabled()).toBe(true);
    expect(await restore.getByTestId('restore-replace-blocked').textContent()).toBe('Stop the machine to replace its disks.');
    await restore.getByTestId('restore-backup-name').fill('bk-vm');
    expect(await restore.locator('.field-error').textContent()).toBe('A machine with this name already exists.');
    await restore.getByTestId('restore-backup-name').fill('bk-copy');
    // The server's refusal, in words, in the dialog.
    await restore.getByTestId('restore-backup-submit').click();
    await restore.getByTestId('restore-backup-error').waitFor();
    expect(await restore.getByTestId('restore-backup-error').textContent()).toContain('Stand-in: restore is not simulated');
    await stubPage.keyboard.press('Escape');
    await restore.waitFor({ state: 'detached' });
    expect((await server.api('POST', `/vms/${vmId}/stop`)).status).toBe(200);
    await waitVmStatus('stopped');

    // Deleting the full one the chain builds on: the dialog says it is merged, not lost.
    await section.getByTestId(`backup-${b1.id}`).getByTestId('backup-delete').click();
    const del = stubPage.getByTestId('delete-backup-dialog');
    expect(await del.getByTestId('delete-backup-consequence').textContent()).toMatch(/^Later backups build on this one \(.*2025.*\)\. Its data is merged into them, not lost/);
    await shot(stubPage, '16-backups-vm-delete');
    await del.getByTestId('delete-backup-dialog-confirm').click();
    await del.waitFor({ state: 'detached' });
    await section.getByTestId(`backup-${b1.id}`).waitFor({ state: 'detached', timeout: 10_000 });
    await stubPage.waitForFunction((id) => document.querySelector(`[data-testid="backup-${id}"]`)?.getAttribute('data-kind') === 'full', b2.id, { timeout: 10_000 });
    // A delete of the last one in a chain only removes it.
    await section.getByTestId(`backup-${b3.id}`).getByTestId('backup-delete').click();
    expect(await del.getByTestId('delete-backup-consequence').textContent()).toBe('Its files are removed from the target. This cannot be undone.');
    await del.getByTestId('delete-backup-dialog-cancel').click();
    await shot(stubPage, '16-backups-vm');
    expect(pageErrors).toEqual([]);
  });

  it('Backups page: targets with free space, refusals in words (400, 409), filters, import refusal, a schedule with its retention preview', async (ctx) => {
    ctx.skip(!standIn, 'the stand-in block did not run');
    await stubPage.goto(`${server.url}/backups`);
    const targets = stubPage.getByTestId('backup-targets');
    await targets.getByTestId('target-nas').waitFor();
    expect(await targets.getByTestId('target-nas').getByTestId('target-free').textContent()).toBe('1.5 TiB free of 4 TiB · 2 backups');
    expect(await targets.getByTestId('target-default').getByTestId('target-delete').count()).toBe(0);
    // Client-side first: a taken name and a relative path are explained and not sent.
    await targets.getByTestId('target-add-name').fill('nas');
    await targets.getByTestId('target-add-path').fill('backups');
    expect(await targets.locator('.field-error').allTextContents()).toEqual(['A target with this name already exists.', 'Enter an absolute path (starting with “/”).']);
    expect(await targets.getByTestId('target-add-submit').isDisabled()).toBe(true);
    await targets.getByTestId('target-add-name').fill('usb');
    await targets.getByTestId('target-add-path').fill(join(tmp, 'file'));
    await targets.getByTestId('target-add-submit').click();
    await targets.getByTestId('target-add-error').waitFor();
    expect(await targets.getByTestId('target-add-error').textContent()).toContain(`Not a directory: ${join(tmp, 'file')}`);
    await targets.getByTestId('target-add-path').fill('/mnt/usb');
    await targets.getByTestId('target-add-submit').click();
    await targets.getByTestId('target-usb').waitFor();
    expect(await targets.getByTestId('target-add-name').inputValue()).toBe('');
    // The nas holds backups: the 409 reason, in the dialog.
    await targets.getByTestId('target-nas').getByTestId('target-delete').click();
    const del = stubPage.getByTestId('delete-target-dialog');
    await del.getByTestId('delete-target-dialog-confirm').click();
    await del.getByTestId('delete-target-dialog-error').waitFor();
    expect(await del.getByTestId('delete-target-dialog-error').textContent()).toContain('Target nas holds 2 backup(s); delete them first');
    await del.getByTestId('delete-target-dialog-cancel').click();

    // All backups, filtered.
    const all = stubPage.getByTestId('all-backups');
    const count = () => all.locator('.backup-item').count();
    await all.getByTestId('all-backup-list').waitFor();
    expect(await count()).toBe(standIn.backups.length);
    expect(await all.locator('[data-testid=backup-vm]').first().textContent()).toBe(' · bk-vm');
    await all.getByTestId('backups-filter-target').selectOption('nas');
    await stubPage.waitForFunction((n) => document.querySelectorAll('[data-testid=all-backups] .backup-item').length === n, standIn.backups.filter((b) => b.target === 'nas').length);
    await all.getByTestId('backups-filter-target').selectOption('usb');
    await all.getByTestId('all-backups-empty').waitFor();
    await all.getByTestId('backups-filter-target').selectOption('');
    await all.getByTestId('backups-filter-vm').selectOption(vmId);
    expect(await count()).toBe(standIn.backups.length);

    // Import: relative refused at once; the server's refusal in words.
    const imp = stubPage.getByTestId('backup-import');
    await imp.getByTestId('backup-import-path').fill('x/y');
    expect(await imp.locator('.field-error').textContent()).toBe('Enter an absolute path (starting with “/”).');
    await imp.getByTestId('backup-import-path').fill('/mnt/usb/other-host/vm1');
    await imp.getByTestId('backup-import-submit').click();
    await imp.getByTestId('backup-import-error').waitFor();
    expect(await imp.getByTestId('backup-import-error').textContent()).toContain('No manifest.json in /mnt/usb/other-host/vm1');

    // A schedule: errors per field, and the preview before saving.
    const card = stubPage.getByTestId('backup-schedules');
    await card.getByTestId('schedules-empty').waitFor();
    await card.getByTestId('schedule-new').click();
    const dialog = stubPage.getByTestId('schedule-dialog');
    await dialog.getByTestId('schedule-name').fill('nightly');
    await dialog.getByTestId('schedule-every').selectOption('cron');
    await dialog.getByTestId('schedule-cron').fill('30 25 * * *');
    expect(await dialog.locator('.field-error').allTextContents()).toEqual(['A value is out of range (minute 0–59, hour 0–23, day 1–31, month 1–12, weekday 0–7).']);
    await dialog.getByTestId('schedule-cron').fill('30 2 * * 1-5');
    await dialog.getByTestId('schedule-keepLast').fill('0');
    expect(await dialog.locator('.field-error').allTextContents()).toEqual(['A whole number from 1 to 10000, or empty.']);
    await dialog.getByTestId('schedule-keepLast').fill('1');
    // The default target holds 3 of this VM's backups now (b2 made full by the merge, b3, and none new).
    const onDefault = standIn.backups.filter((b) => b.target === 'default');
    const group = dialog.getByTestId('preview-bk-vm');
    await group.waitFor();
    expect([await group.getAttribute('data-keep'), await group.getAttribute('data-prune')]).toEqual(['1', String(onDefault.length - 1)]);
    const rows = await group.getByTestId('preview-row').evaluateAll((els) => els.map((e) => [e.getAttribute('data-backup'), e.getAttribute('data-keep')]));
    const newestFirst = [...onDefault].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    expect(rows).toEqual(newestFirst.map((b, i) => [b.id, String(i === 0)]));
    // The pruned full one the kept incremental builds on is merged into it, and the preview says so.
    const full = newestFirst.find((b) => b.kind === 'full')!;
    expect(await group.locator(`[data-backup="${full.id}"]`).getAttribute('data-merged')).toBe('true');
    expect(await group.locator(`[data-backup="${full.id}"]`).textContent()).toContain('merged into the kept backup that builds on it, not lost');
    // Adding keepDaily keeps one a day more; switching the target shows that target's backups.
    await dialog.getByTestId('schedule-keepDaily').fill('7');
    await stubPage.waitForFunction(() => document.querySelector('[data-testid=preview-bk-vm]')?.getAttribute('data-prune') === '0');
    await dialog.getByTestId('schedule-target').selectOption('usb');
    await dialog.getByTestId('retention-preview-empty').waitFor();
    await dialog.getByTestId('schedule-target').selectOption('default');
    await dialog.getByTestId('schedule-keepDaily').fill('');
    await dialog.getByTestId('schedule-vms-all').uncheck();
    await dialog.getByTestId('schedule-submit').click();
    expect(await dialog.getByTestId('schedule-vms-error').textContent()).toBe('Choose at least one machine.');
    await dialog.getByTestId('schedule-vm-bk-vm').check();
    await group.waitFor();
    await shot(stubPage, '17-backups-schedule-preview');
    await dialog.getByTestId('schedule-submit').click();
    await dialog.waitFor({ state: 'detached' });
    const created = standIn.schedules[0];
    expect(created).toMatchObject({ name: 'nightly', vms: [vmId], target: 'default', every: '30 2 * * 1-5', at: null, retention: { keepLast: 1 }, enabled: true });
    const item = card.getByTestId('schedule-nightly');
    await item.waitFor();
    expect(await item.textContent()).toMatch(/30 2 \* \* 1-5 · bk-vm · Target: default.*Keep last 1.*not run yet · next in (1 h|59 min)/);
    // Run now: the task, then the last status; disable.
    await item.getByTestId('schedule-run').click();
    await stubPage.locator('[data-testid=schedule-nightly] [data-testid=schedule-last-status][data-status=failed]').waitFor({ timeout: 10_000 });
    await item.getByTestId('schedule-toggle').click();
    await stubPage.locator('[data-testid=schedule-nightly][data-enabled=false]').waitFor({ timeout: 10_000 });
    expect(standIn.schedules[0]).toMatchObject({ enabled: false });
    await shot(stubPage, '17-backups-page');
    // Edit: the form holds what was saved.
    await item.getByTestId('schedule-edit').click();
    expect(await dialog.getByTestId('schedule-cron').inputValue()).toBe('30 2 * * 1-5');
    expect(await dialog.getByTestId('schedule-keepLast').inputValue()).toBe('1');
    expect(await dialog.getByTestId('schedule-enabled').isChecked()).toBe(false);
    await stubPage.keyboard.press('Escape');
    expect(pageErrors).toEqual([]);
    await stubPage.close();
  });
});
