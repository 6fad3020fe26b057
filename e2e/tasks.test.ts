// Browser test of the tasks UI against a real server (real qemu-img): a disk created through the
// API and one created in the UI each show up as a disk.create task in the tasks panel and end
// succeeded there, live (server events, no reload); the disk details and the VM page show their
// recent tasks.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, shot, SHOTS } from './browser.js';
import { startServer, type E2EServer } from './server.js';

let server: E2EServer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

interface ApiTask { id: string; kind: string; status: string; target: { vm: string | null; disk: string | null }; endedAt: string | null }

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  server = await startServer();
  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state !== 'fail' || !page) return;
  const name = ctx.task.name.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 60);
  await page.screenshot({ path: join(SHOTS, `failed-tasks-${name}.png`), fullPage: true }).catch(() => {});
  console.error(`--- server log (tail) after "${ctx.task.name}" ---\n${server?.log().slice(-4000)}`);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

async function tasksOfDisk(diskId: string): Promise<ApiTask[]> {
  const { status, body } = await server.api<{ tasks: ApiTask[] }>('GET', `/tasks?disk=${diskId}`);
  expect(status).toBe(200);
  return body.tasks;
}

describe('tasks UI against a real server', () => {
  it('shows a disk.create task started through the API appear in the open panel and end succeeded', async () => {
    await page.goto(server.url + '/disks');
    await page.locator('[data-testid=live-indicator][data-state=live]').waitFor({ timeout: 10_000 });
    const button = page.getByTestId('tasks-open');
    expect(await button.getAttribute('data-running')).toBe('0');
    await button.click();
    const panel = page.getByTestId('tasks-panel');
    await panel.getByTestId('tasks-empty').waitFor();

    // Created while the panel is open: only the server's events can bring it in.
    const created = await server.api<{ disk: { id: string; name: string }; task: ApiTask }>('POST', '/disks', { name: 'api-data', size: 2, format: 'qcow2' });
    expect(created.status).toBe(201);
    const taskId = created.body.task.id;
    expect(created.body.task.kind).toBe('disk.create');

    const item = panel.getByTestId(`task-${taskId}`);
    await item.waitFor({ timeout: 10_000 });
    await panel.locator(`[data-testid="task-${taskId}"][data-status=succeeded]`).waitFor({ timeout: 30_000 });
    expect(await item.getAttribute('data-kind')).toBe('disk.create');
    expect(await item.getByTestId('task-kind').textContent()).toBe('Create disk');
    expect(await item.getByTestId('task-status').textContent()).toBe('Done');
    expect(await item.getByTestId('task-target').textContent()).toBe('Disk api-data');
    expect(await item.getByTestId('task-time').textContent()).toMatch(/^Started .* · ended .* · took /);
    expect(await item.getByTestId('task-cancel').count()).toBe(0);
    await panel.getByTestId('tasks-empty').waitFor({ state: 'detached' });

    // The server agrees.
    const [task] = await tasksOfDisk(created.body.disk.id);
    expect(task).toMatchObject({ id: taskId, kind: 'disk.create', status: 'succeeded' });
    expect(await button.getAttribute('data-running')).toBe('0');

    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'detached' });
  });

  it('creates a disk in the UI, lists its task in the panel and in the disk’s details', async () => {
    await page.getByTestId('create-disk-open').click();
    await page.getByTestId('create-disk-dialog').waitFor();
    await page.getByTestId('create-disk-name').fill('ui-data');
    await page.getByTestId('create-disk-size').fill('1');
    await page.getByTestId('create-disk-format').selectOption('raw');
    await page.getByTestId('create-disk-submit').click();
    await page.getByTestId('create-disk-dialog').waitFor({ state: 'detached', timeout: 30_000 });
    await page.locator('[data-testid=disk-status-ui-data][data-status=ready]').waitFor({ timeout: 30_000 });
    // Ready, so no task runs on it any more: the row shows no task progress.
    expect(await page.getByTestId('disk-task-ui-data').count()).toBe(0);

    const { body } = await server.api<{ disks: Array<{ id: string; name: string }> }>('GET', '/disks');
    const disk = body.disks.find((d) => d.name === 'ui-data')!;
    const [task] = await tasksOfDisk(disk.id);
    expect(task).toMatchObject({ kind: 'disk.create', status: 'succeeded', target: { vm: null, disk: disk.id } });

    // The panel: newest first, both succeeded.
    await page.getByTestId('tasks-open').click();
    const panel = page.getByTestId('tasks-panel');
    const item = panel.getByTestId(`task-${task.id}`);
    await panel.locator(`[data-testid="task-${task.id}"][data-status=succeeded]`).waitFor({ timeout: 10_000 });
    expect(await item.getByTestId('task-target').textContent()).toBe('Disk ui-data');
    const items = panel.locator('[data-testid=tasks-list] > li');
    expect(await items.count()).toBe(2);
    expect(await items.nth(0).getAttribute('data-testid')).toBe(`task-${task.id}`);
    expect(await items.nth(1).getByTestId('task-target').textContent()).toBe('Disk api-data');
    await shot(page, '11-tasks');

    // A link in the panel goes to the disk list and closes the panel.
    await item.getByRole('link', { name: 'Disk ui-data' }).click();
    await panel.waitFor({ state: 'detached' });

    // The disk's details: its own recent tasks, only that one.
    await page.getByTestId('disk-row-ui-data').getByTestId('disk-info').click();
    const info = page.getByTestId('disk-info-dialog');
    await info.waitFor();
    const recent = info.getByTestId('recent-tasks-list');
    await recent.waitFor();
    expect(await recent.locator('> li').count()).toBe(1);
    expect(await recent.locator(`[data-testid="task-${task.id}"]`).getAttribute('data-status')).toBe('succeeded');
    expect(await recent.getByTestId('task-kind').textContent()).toBe('Create disk');
    await page.keyboard.press('Escape');
    await info.waitFor({ state: 'detached' });
  });

  it('shows a Recent tasks section on the VM page', async () => {
    const { status, body } = await server.api<{ vm: { id: string } }>('POST', '/vms', { name: 'tasks-vm', cpus: 1, memory: 256 });
    expect(status).toBe(201);
    await page.goto(`${server.url}/vms/${body.vm.id}`);
    await page.getByTestId('vm-detail-page').waitFor();
    const section = page.getByTestId('recent-tasks');
    await section.getByTestId('recent-tasks-empty').waitFor();
    expect(await section.locator('h2').textContent()).toBe('Recent tasks');
    // The header button is on every page.
    expect(await page.getByTestId('tasks-open').isVisible()).toBe(true);
    expect(pageErrors).toEqual([]);
  });
});
