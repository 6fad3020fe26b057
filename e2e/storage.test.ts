// Browser test of the storage UI against a real server (real qemu-img, no guest boot): a qcow2
// disk made through the API is grown from the Resize dialog (the task ends, the row shows the new
// size), cloned linked from the Clone dialog (the chain shows on both disks), a small raw image is
// uploaded with progress, and a stopped VM's snapshots are taken from the VM page and shown as a
// tree. Refusals by the server appear in words in the dialog that asked.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, shot, SHOTS } from './browser.js';
import { startServer, type E2EServer } from './server.js';

let server: E2EServer;
let browser: Browser;
let page: Page;
let tmp: string;
const pageErrors: string[] = [];

interface ApiDisk { id: string; name: string; size: number; format: string; path: string; status: string; backingFile?: string | null; children?: string[] }
interface ApiTask { id: string; kind: string; status: string; error: string | null }

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  tmp = await mkdtemp(join(tmpdir(), 'qm-e2e-storage-'));
  server = await startServer();
  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state !== 'fail' || !page) return;
  const name = ctx.task.name.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 60);
  await page.screenshot({ path: join(SHOTS, `failed-storage-${name}.png`), fullPage: true }).catch(() => {});
  console.error(`--- server log (tail) after "${ctx.task.name}" ---\n${server?.log().slice(-4000)}`);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function disks(): Promise<ApiDisk[]> {
  const { status, body } = await server.api<{ disks: ApiDisk[] }>('GET', '/disks');
  expect(status).toBe(200);
  return body.disks;
}
const diskNamed = async (name: string) => (await disks()).find((d) => d.name === name);

async function createReadyDisk(name: string, format: string, size = 1): Promise<ApiDisk> {
  const { status } = await server.api<{ disk: ApiDisk }>('POST', '/disks', { name, size, format });
  expect(status).toBe(201);
  const until = Date.now() + 30_000;
  for (;;) {
    const d = await diskNamed(name);
    if (d?.status === 'ready') return d;
    if (d?.status === 'error' || Date.now() > until) throw new Error(`disk ${name} did not become ready: ${JSON.stringify(d)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function tasksOf(query: string): Promise<ApiTask[]> {
  const { status, body } = await server.api<{ tasks: ApiTask[] }>('GET', `/tasks?${query}`);
  expect(status).toBe(200);
  return body.tasks;
}

describe('storage UI against a real server', () => {
  let base: ApiDisk;

  it('grows a qcow2 disk from the Resize dialog; the task ends and the row shows the new size', async () => {
    base = await createReadyDisk('base', 'qcow2', 1);
    await createReadyDisk('legacy', 'vmdk', 1);
    await page.goto(server.url + '/disks');
    await page.locator('[data-testid=live-indicator][data-state=live]').waitFor({ timeout: 10_000 });
    const row = page.getByTestId('disk-row-base');
    await row.waitFor();
    // The size cell shows qemu-img's virtual size once the disk's details have loaded.
    await page.waitForFunction(() => document.querySelector('[data-testid=disk-row-base] .num')?.textContent === '1 GiB', undefined, { timeout: 10_000 });

    await row.getByTestId('disk-resize').click();
    const dialog = page.getByTestId('resize-disk-dialog');
    await dialog.waitFor();
    expect(await dialog.getByTestId('resize-current').textContent()).toContain('1 GB');
    expect(await dialog.getByTestId('resize-grow-only').textContent()).toMatch(/only grow/);
    // Not larger: explained at once, and the button does not send it.
    await dialog.getByTestId('resize-size').fill('1');
    expect(await dialog.locator('.field-error').textContent()).toBe('Choose a size larger than the current 1 GB.');
    expect(await dialog.getByTestId('resize-disk-submit').isDisabled()).toBe(true);
    await dialog.getByTestId('resize-size').fill('3');
    expect(await dialog.locator('.field-error').count()).toBe(0);
    await shot(page, '12-resize');
    await dialog.getByTestId('resize-disk-submit').click();
    // The dialog stays until the task has succeeded, then closes.
    await dialog.waitFor({ state: 'detached', timeout: 30_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid=disk-row-base] .num')?.textContent === '3 GiB', undefined, { timeout: 10_000 });

    const [task] = await tasksOf(`disk=${base.id}`);
    expect(task).toMatchObject({ kind: 'disk.resize', status: 'succeeded' });
    expect((await diskNamed('base'))?.size).toBe(3);

    // A vmdk cannot be resized: the server's refusal is shown in words in the dialog, nothing changes.
    await page.getByTestId('disk-row-legacy').getByTestId('disk-resize').click();
    await dialog.waitFor();
    await dialog.getByTestId('resize-size').fill('2');
    await dialog.getByTestId('resize-disk-submit').click();
    const refusal = dialog.getByTestId('resize-error');
    await refusal.waitFor();
    expect(await refusal.textContent()).toMatch(/vmdk/i);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect((await diskNamed('legacy'))?.size).toBe(1);
  });

  it('clones the disk linked from the Clone dialog; the chain shows on both disks', async () => {
    const row = page.getByTestId('disk-row-base');
    await row.getByTestId('disk-clone').click();
    const dialog = page.getByTestId('clone-disk-dialog');
    await dialog.waitFor();
    expect(await dialog.getByTestId('clone-disk-name').inputValue()).toBe('base-clone');
    // qcow2: linked is offered first; each mode says what it means.
    expect(await dialog.getByTestId('clone-disk-mode-linked').isChecked()).toBe(true);
    expect(await dialog.getByTestId('clone-disk-mode').textContent()).toMatch(/independent copy.*records only its own changes|records only its own changes.*independent copy/s);
    // A taken name is explained before sending.
    await dialog.getByTestId('clone-disk-name').fill('legacy');
    expect(await dialog.locator('.field-error').textContent()).toBe('A disk with this name already exists.');
    await dialog.getByTestId('clone-disk-name').fill('base-clone');
    await dialog.getByTestId('clone-disk-submit').click();
    await dialog.waitFor({ state: 'detached', timeout: 30_000 });

    await page.getByTestId('disk-chain-base-clone').waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('disk-chain-base-clone').textContent()).toBe('backs onto base');
    await page.getByTestId('disk-chain-base').waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('disk-chain-base').textContent()).toBe('base of base-clone');

    const clone = (await diskNamed('base-clone'))!;
    expect(clone).toMatchObject({ format: 'qcow2', backingFile: base.path, status: 'ready' });
    expect((await diskNamed('base'))?.children).toEqual([clone.id]);

    // The details say it too.
    await page.getByTestId('disk-row-base-clone').getByTestId('disk-info').click();
    const info = page.getByTestId('disk-info-dialog');
    await info.getByTestId('disk-info-backs-onto').waitFor();
    expect(await info.getByTestId('disk-info-backs-onto').textContent()).toBe('base');
    await page.keyboard.press('Escape');
    await info.waitFor({ state: 'detached' });

    // The base cannot be deleted now: the server's reason, in words.
    await row.getByTestId('disk-delete').click();
    const del = page.getByTestId('delete-disk-dialog');
    await del.getByTestId('delete-disk-dialog-confirm').click();
    await del.getByTestId('delete-disk-dialog-error').waitFor();
    expect(await del.getByTestId('delete-disk-dialog-error').textContent()).toMatch(/base-clone/);
    await del.getByTestId('delete-disk-dialog-cancel').click();
    await shot(page, '14-clone-chain');
  });

  it('uploads a small raw image with a progress bar', async () => {
    const file = join(tmp, 'tiny image.img');
    const bytes = 3 * 1024 * 1024;
    await writeFile(file, Buffer.alloc(bytes, 0x5a));
    const card = page.getByTestId('disk-upload');
    await card.getByTestId('disk-file-input').setInputFiles(file);
    expect(await card.getByTestId('disk-upload-name').inputValue()).toBe('tiny_image');
    await card.getByTestId('disk-upload-start').click();
    const done = card.getByTestId('disk-upload-done');
    await done.waitFor({ timeout: 30_000 });
    expect(await done.textContent()).toBe('tiny_image uploaded (raw).');
    // The browser reported upload progress up to the whole file.
    expect(Number(await done.getAttribute('data-sent'))).toBe(bytes);
    await page.locator('[data-testid=disk-status-tiny_image][data-status=ready]').waitFor({ timeout: 10_000 });
    expect(await diskNamed('tiny_image')).toMatchObject({ format: 'raw', status: 'ready' });
  });

  it('takes snapshots of a stopped VM from the VM page and shows them as a tree', async () => {
    const { status, body } = await server.api<{ vm: { id: string } }>('POST', '/vms', { name: 'snap-vm', cpus: 1, memory: 256 });
    expect(status).toBe(201);
    const vmId = body.vm.id;
    const attach = async (path: string) => expect((await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath: path })).status).toBe(200);
    const raw = (await diskNamed('tiny_image'))!;
    await attach(raw.path);

    await page.goto(`${server.url}/vms/${vmId}`);
    const section = page.getByTestId('vm-snapshots');
    await section.getByTestId('snapshots-empty').waitFor();

    // A raw disk has no snapshots: the server says so, naming the disk, in the dialog.
    await section.getByTestId('snapshot-take-open').click();
    const dialog = page.getByTestId('take-snapshot-dialog');
    await dialog.waitFor();
    expect(await dialog.getByTestId('take-snapshot-memory').isDisabled()).toBe(true);
    expect(await dialog.getByTestId('take-snapshot-name').inputValue()).toBe('snap1');
    await dialog.getByTestId('take-snapshot-submit').click();
    await dialog.getByTestId('take-snapshot-error').waitFor();
    expect(await dialog.getByTestId('take-snapshot-error').textContent()).toMatch(/tiny_image.*raw|raw.*tiny_image/);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });

    // With the resized qcow2 disk instead.
    expect((await server.api('POST', `/vms/${vmId}/disks/detach`, { diskPath: raw.path })).status).toBe(200);
    const clone = (await diskNamed('base-clone'))!;
    await attach(clone.path);

    for (const [name, description] of [['before-upgrade', 'clean install'], ['after-upgrade', '']] as const) {
      await section.getByTestId('snapshot-take-open').click();
      await dialog.waitFor();
      await dialog.getByTestId('take-snapshot-name').fill(name);
      if (description) await dialog.getByTestId('take-snapshot-description').fill(description);
      await dialog.getByTestId('take-snapshot-submit').click();
      await dialog.waitFor({ state: 'detached', timeout: 30_000 });
      await section.getByTestId(`snapshot-${name}`).waitFor({ timeout: 10_000 });
    }
    // The second hangs under the first and is current.
    const first = section.getByTestId('snapshot-before-upgrade');
    const second = section.getByTestId('snapshot-after-upgrade');
    expect(await first.getAttribute('data-depth')).toBe('0');
    expect(await second.getAttribute('data-depth')).toBe('1');
    expect(await second.getAttribute('data-parent')).toBe('before-upgrade');
    await page.locator('[data-testid="snapshot-after-upgrade"][data-current=true]').waitFor({ timeout: 10_000 });
    expect(await first.getAttribute('data-current')).toBe('false');
    expect(await first.textContent()).toContain('clean install');
    expect(await section.getByTestId('snapshot-current').count()).toBe(1);

    const snaps = await server.api<{ snapshots: Array<{ name: string; parent: string | null; current: boolean }> }>('GET', `/vms/${vmId}/snapshots`);
    expect(snaps.body.snapshots.map((s) => [s.name, s.parent, s.current])).toEqual([['before-upgrade', null, false], ['after-upgrade', 'before-upgrade', true]]);
    await shot(page, '13-snapshots');

    // A name in use is explained before sending.
    await section.getByTestId('snapshot-take-open').click();
    await dialog.getByTestId('take-snapshot-name').fill('before-upgrade');
    expect(await dialog.locator('.field-error').textContent()).toBe('This machine already has a snapshot with this name.');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });

    // Revert to the first (confirm): it becomes current.
    await first.getByTestId('snapshot-revert').click();
    const revert = page.getByTestId('revert-snapshot-dialog');
    await revert.getByTestId('revert-snapshot-dialog-confirm').click();
    await revert.waitFor({ state: 'detached', timeout: 10_000 });
    await page.locator('[data-testid="snapshot-before-upgrade"][data-current=true]').waitFor({ timeout: 30_000 });
    const tasks = await tasksOf(`vm=${vmId}`);
    expect(tasks[0]).toMatchObject({ kind: 'vm.revert', status: 'succeeded' });
  });

  it('clones the stopped VM linked from the Clone dialog and opens the new machine', async () => {
    await page.getByTestId('vm-clone-open').click();
    const dialog = page.getByTestId('clone-vm-dialog');
    await dialog.waitFor();
    expect(await dialog.getByTestId('clone-vm-name').inputValue()).toBe('snap-vm-clone');
    await dialog.getByTestId('clone-vm-name').fill('snap-vm');
    expect(await dialog.locator('.field-error').textContent()).toBe('A machine with this name already exists.');
    await dialog.getByTestId('clone-vm-name').fill('snap-vm-clone');
    await dialog.getByTestId('clone-vm-mode-linked').check();
    await dialog.getByTestId('clone-vm-submit').click();
    await dialog.waitFor({ state: 'detached', timeout: 30_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid=vm-detail-name]')?.textContent === 'snap-vm-clone', undefined, { timeout: 10_000 });
    const { body } = await server.api<{ vms: Array<{ name: string; disks: Array<{ path: string }> }> }>('GET', '/vms');
    const made = body.vms.find((v) => v.name === 'snap-vm-clone')!;
    expect(made.disks).toHaveLength(1);
    const disk = (await disks()).find((d) => d.path === made.disks[0].path)!;
    expect(disk).toMatchObject({ name: 'snap-vm-clone-disk0', backingFile: (await diskNamed('base-clone'))!.path });
    expect(await page.getByTestId('vm-disks').textContent()).toContain('snap-vm-clone-disk0');
    expect(pageErrors).toEqual([]);
  });
});
