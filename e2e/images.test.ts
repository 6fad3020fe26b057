// The Images page and a VM from an image (issue 12) in Chromium against a real server and real
// qemu-img, written to the contract (packages/contract/src/images.ts, cloud-init.ts): a qcow2 made
// here is uploaded from the page, a VM is created from it with a cloud-init host name (a bad
// user-data is refused with the server's words next to the editor, and nothing is made), the image
// in use cannot be deleted (said in words), and a download from a loopback URL with its sha256 is a
// task with progress. The catalogue is shown, never fetched (no network beyond loopback).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, shot, SHOTS } from './browser.js';
import { startServer, type E2EServer } from './server.js';

const IMAGE = 'tiny-cloud';
const VM = 'from-image';
const HOSTNAME = 'e2e-host';

interface ApiImage { name: string; format: string; virtualSize: number; size: number; sha256: string; source: string; usedBy: string[] }
interface ApiVm { id: string; name: string; disks: Array<{ path: string; diskId: string | null }>; cloudInit: boolean }

let server: E2EServer;
let browser: Browser;
let page: Page;
let tmp: string;
let files: Server;
let base: string;
let qcow2: string;
let qcow2Sha: string;
let vmId: string;
const pageErrors: string[] = [];

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  tmp = await mkdtemp(join(tmpdir(), 'qm-e2e-images-'));
  qcow2 = join(tmp, `${IMAGE}.qcow2`);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', qcow2, '64M']);
  const bytes = await readFile(qcow2);
  qcow2Sha = createHash('sha256').update(bytes).digest('hex');
  files = createServer((req, res) => {
    if (req.url !== '/dl/tiny-download.qcow2') return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.length }).end(bytes);
  });
  await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;

  server = await startServer();
  browser = await launchBrowser();
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // A refusal shows at once; waits are for the server's work, not for an error that is already there.
  page.setDefaultTimeout(20_000);
});

/** Waits until `done` shows, or fails at once with the words of `error` when that shows first. */
async function doneOrError(done: string, error: string, timeout = 120_000): Promise<void> {
  const d = page.getByTestId(done);
  const e = page.getByTestId(error);
  await d.or(e).first().waitFor({ timeout });
  if (await e.isVisible()) throw new Error(`${error}: ${await e.textContent()}`);
}

afterEach(async (ctx) => {
  if (ctx.task.result?.state !== 'fail' || !page) return;
  const name = ctx.task.name.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 60);
  await page.screenshot({ path: join(SHOTS, `failed-images-${name}.png`), fullPage: true }).catch(() => {});
  console.error(`--- server log (tail) after "${ctx.task.name}" ---\n${server?.log().slice(-4000)}`);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise<void>((resolve) => (files ? files.close(() => resolve()) : resolve()));
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function apiImages(): Promise<ApiImage[]> {
  const { status, body } = await server.api<{ images: ApiImage[] }>('GET', '/images');
  expect(status).toBe(200);
  return body.images;
}

async function vmByName(name: string): Promise<ApiVm | undefined> {
  return (await server.api<{ vms: ApiVm[] }>('GET', '/vms')).body.vms.find((v) => v.name === name);
}

describe('images page', () => {
  it('is in the navigation, empty at first, with the catalogue as cards', async () => {
    await page.goto(server.url + '/');
    await page.getByTestId('nav-images').click();
    await page.getByTestId('images-page').waitFor();
    await page.getByTestId('image-list-empty').waitFor();
    const { status, body } = await server.api<{ catalogue: Array<{ id: string; title: string }> }>('GET', '/images/catalogue');
    expect(status).toBe(200);
    expect(body.catalogue.length).toBeGreaterThan(0);
    await page.locator('.catalogue-card').first().waitFor();
    expect(await page.locator('.catalogue-card').count()).toBe(body.catalogue.length);
    expect(await page.getByTestId(`catalogue-${body.catalogue[0].id}`).textContent()).toContain(body.catalogue[0].title);
  });

  it('uploads a qcow2 from the page; the list shows its sizes and short sha256', async () => {
    await page.getByTestId('image-file-input').setInputFiles(qcow2);
    expect(await page.getByTestId('image-upload-name').inputValue()).toBe(IMAGE);
    await page.getByTestId('image-upload-start').click();
    await doneOrError('image-upload-done', 'image-upload-error');
    const row = page.getByTestId(`image-row-${IMAGE}`);
    await row.waitFor();
    expect(await row.getByTestId('image-virtual-size').textContent()).toBe('64 MiB');
    expect(await row.getByTestId('image-sha').getAttribute('title')).toBe(qcow2Sha);
    expect(await row.textContent()).toContain('Not used');
    const image = (await apiImages()).find((i) => i.name === IMAGE);
    expect(image).toMatchObject({ format: 'qcow2', virtualSize: 64 * 1024 * 1024, sha256: qcow2Sha, source: 'upload', usedBy: [] });
    await shot(page, 'images-01-uploaded');
  });

  it('refuses a user-data that is not valid YAML with the server’s words next to the editor, and makes nothing', async () => {
    await page.getByTestId(`image-row-${IMAGE}`).getByTestId('image-new-vm').click();
    const dialog = page.getByTestId('create-vm-dialog');
    await dialog.waitFor();
    expect(await page.getByTestId('create-vm-source-image').isChecked()).toBe(true);
    expect(await page.getByTestId('create-vm-image').inputValue()).toBe(IMAGE);
    await page.getByTestId('create-vm-name').fill(VM);
    await page.getByTestId('create-vm-memory').fill('256');
    await page.getByTestId('create-vm-hw-os').selectOption('linux');
    await page.getByTestId('create-vm-ci-hostname').fill(HOSTNAME);
    await page.getByTestId('create-vm-ci-user-data').fill('#cloud-config\nruncmd:\n  - [ echo, "unclosed\n');
    await page.getByTestId('create-vm-submit').click();
    const near = page.getByTestId('create-vm-ci-fields').locator('.field-error');
    await near.waitFor({ timeout: 30_000 });
    expect(await near.textContent()).toMatch(/line \d+/i);
    expect(await vmByName(VM)).toBeUndefined();
    await shot(page, 'images-02-bad-yaml');
  });

  it('creates the VM from the image with a cloud-init host name, follows the task and opens the new VM', async () => {
    await page.getByTestId('create-vm-ci-user-data').fill('#cloud-config\nruncmd:\n  - echo e2e-marker\n');
    await page.getByTestId('create-vm-submit').click();
    await doneOrError('vm-detail-page', 'create-vm-error');
    expect(await page.getByTestId('vm-detail-name').textContent()).toBe(VM);
    const vm = await vmByName(VM);
    expect(vm).toBeDefined();
    vmId = vm!.id;
    expect(page.url()).toBe(`${server.url}/vms/${vmId}`);
    expect(vm!.cloudInit).toBe(true);
    expect(vm!.disks).toHaveLength(1);
    const ci = await server.api<{ cloudInit: { hostname: string | null; userData: string | null } }>('GET', `/vms/${vmId}/cloud-init`);
    expect(ci.status).toBe(200);
    expect(ci.body.cloudInit.hostname).toBe(HOSTNAME);
    expect(ci.body.cloudInit.userData).toContain('e2e-marker');
    // The VM page's Cloud-init section shows the stored config.
    await page.locator(`[data-testid=ci-hostname][value="${HOSTNAME}"]`).waitFor();
    const image = (await apiImages()).find((i) => i.name === IMAGE);
    expect(image?.usedBy.length).toBe(1);
    await shot(page, 'images-03-vm');
  });

  it('makes the stopped VM a template from its page; “New VM from template” makes a linked clone and opens it', async () => {
    await page.goto(`${server.url}/vms/${vmId}`);
    await page.getByTestId('vm-detail-page').waitFor();
    await page.getByTestId('vm-detail-page').getByTestId('action-menu').first().click();
    await page.getByTestId('action-make-template').click();
    await page.getByTestId('make-template-dialog-confirm').click();
    await page.getByTestId('vm-is-template').waitFor();
    expect(await page.getByTestId('vm-hw-summary').textContent()).toContain('Template');
    expect(await page.getByTestId('action-start').count()).toBe(0);
    expect((await server.api<{ vm: { template: boolean } }>('GET', `/vms/${vmId}`)).body.vm.template).toBe(true);

    await page.getByTestId('action-new-from-template').click();
    await page.getByTestId('create-vm-dialog').waitFor();
    expect(await page.getByTestId('create-vm-source-template').isChecked()).toBe(true);
    expect(await page.getByTestId('create-vm-template').inputValue()).toBe(vmId);
    await page.getByTestId('create-vm-name').fill('from-template');
    await page.getByTestId('create-vm-submit').click();
    await doneOrError('vm-detail-name', 'create-vm-error');
    await page.locator('[data-testid=vm-detail-name]', { hasText: 'from-template' }).waitFor({ timeout: 60_000 });
    const clone = await vmByName('from-template');
    expect(clone).toBeDefined();
    expect(page.url()).toBe(`${server.url}/vms/${clone!.id}`);
    await shot(page, 'images-04-from-template');
  });

  it('the image in use cannot be deleted, and the dialog says why in words', async () => {
    await page.getByTestId('nav-images').click();
    const row = page.getByTestId(`image-row-${IMAGE}`);
    await row.waitFor();
    expect(await row.getByTestId('image-used-by').textContent()).toBe('1 disk');
    await row.getByTestId('image-delete').click();
    await page.getByTestId('delete-image-dialog-confirm').click();
    const error = page.getByTestId('delete-image-dialog-error');
    await error.waitFor();
    expect(await error.textContent()).toContain('Disks back onto this image: delete those disks (or their machines) first.');
    await page.getByTestId('delete-image-dialog-cancel').click();
    expect((await apiImages()).some((i) => i.name === IMAGE)).toBe(true);
  });

  it('downloads an image from a (loopback) URL with its sha256 as a task', async () => {
    await page.getByTestId('image-download-open').click();
    await page.getByTestId('download-image-dialog').waitFor();
    await page.getByTestId('download-image-url').fill(`${base}/dl/tiny-download.qcow2`);
    expect(await page.getByTestId('download-image-name').inputValue()).toBe('tiny-download');
    await page.getByTestId('download-image-checksum-sha256').check();
    await page.getByTestId('download-image-sha256').fill(qcow2Sha);
    await page.getByTestId('download-image-submit').click();
    await doneOrError('download-image-done', 'download-image-error');
    await page.getByTestId('download-image-close').click();
    await page.getByTestId('image-row-tiny-download').waitFor();
    const image = (await apiImages()).find((i) => i.name === 'tiny-download');
    expect(image).toMatchObject({ format: 'qcow2', sha256: qcow2Sha, source: `${base}/dl/tiny-download.qcow2` });
    expect(pageErrors).toEqual([]);
  });
});
