// Browser test of the backups UI (issue 13) against a real server (real QEMU without an OS, real
// qemu-img). The VM page's Backups section backs up the running VM fully and then incrementally
// (replace is refused while it runs), verifies, restores as a new machine and deletes the full
// backup the incremental builds on (the dialog says it is merged); the Backups page adds targets
// (refusals in words), filters all backups, imports, and makes a schedule whose retention preview
// shows what it keeps before saving.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
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
  it('shows a Backups entry in the navigation and the sections load', async () => {
    await page.goto(`${server.url}/vms/${vmId}`);
    await page.locator('[data-testid=live-indicator][data-state=live]').waitFor({ timeout: 10_000 });
    const section = page.getByTestId('vm-backups');
    await section.waitFor();
    await section.getByTestId('backups-empty').waitFor();
    await page.getByTestId('nav-backups').click();
    await page.getByTestId('backups-page').waitFor();
    expect(await page.title()).toMatch(/^Backups/);
    await page.getByTestId('target-default').waitFor();
    expect(pageErrors).toEqual([]);
  });

  it('backs up the running VM from its page: full, then automatic (incremental on the full), with the kind, size and verify', async () => {
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

    await inc.getByTestId('backup-verify').click();
    await page.waitForFunction((id) => !document.querySelector(`[data-testid="backup-${id}"] [data-testid=backup-verified]`)?.textContent?.includes('Not yet'), incremental.id, { timeout: 60_000 });
    expect((await backupsOf(`?vm=${vmId}`)).find((b) => b.id === incremental.id)?.verifiedAt).not.toBeNull();
    await shot(page, '16-backups-vm');
  });

  it('restore: replace is disabled with the reason while the VM runs; as new it opens the new machine', async () => {
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

  it('deleting the full backup the incremental builds on says it is merged; the incremental stays', async () => {
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

  it('targets: a relative path is explained before sending, a file is refused in words, a directory is listed with free space', async () => {
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
  });

  it('all backups filter by VM and target; an import of a directory that is no backup is refused in words', async () => {
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
    const imp = page.getByTestId('backup-import');
    await imp.getByTestId('backup-import-path').fill(tmp);
    await imp.getByTestId('backup-import-submit').click();
    await imp.getByTestId('backup-import-error').waitFor({ timeout: 30_000 });
    expect((await imp.getByTestId('backup-import-error').textContent())!.length).toBeGreaterThan(5);
  });

  it('schedules: the retention preview shows what is kept and pruned before saving; save, run now, disable', async () => {
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
    await item.getByTestId('schedule-run').click();
    await page.locator('[data-testid=schedule-nightly] [data-testid=schedule-last-status]').waitFor({ timeout: 120_000 });
    await item.getByTestId('schedule-toggle').click();
    await page.locator('[data-testid=schedule-nightly][data-enabled=false]').waitFor({ timeout: 10_000 });
    await shot(page, '17-backups-page');
  });
});
