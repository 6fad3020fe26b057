// Browser test of Import from URL and Convert against a real server (real qemu-img, no guest boot):
// a small qcow2 made with qemu-img here is served from a node:http server on 127.0.0.1 and imported
// from the dialog with its sha256 (the download is held halfway until the dialog shows the running
// task, then the dialog links the new disk); a wrong sha256 fails in words with no disk left; the
// imported disk is converted to raw from its row (the new raw disk holds the same bytes); a refusal
// of the server shows next to the field it is about.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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
let files: Server;
let base: string;
let image: Buffer;
let imageSha: string;
/** 4 MiB of a recognisable pattern: what the guest would see on the imported disk. */
let pattern: Buffer;
/** While set, the image's second half is sent only once it resolves. */
let hold: Promise<void> | null = null;
let requests = 0;
const pageErrors: string[] = [];

interface ApiDisk { id: string; name: string; format: string; path: string; status: string }
interface ApiTask { id: string; kind: string; status: string; error: string | null; progress: number; bytesDone: number; result: Record<string, unknown> | null }

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  tmp = await mkdtemp(join(tmpdir(), 'qm-e2e-import-'));
  pattern = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < pattern.length; i += 4) pattern.writeUInt32LE((i * 2654435761) >>> 0, i);
  await writeFile(join(tmp, 'src.raw'), pattern);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', join(tmp, 'src.raw'), join(tmp, 'tiny.qcow2')]);
  image = await readFile(join(tmp, 'tiny.qcow2'));
  imageSha = createHash('sha256').update(image).digest('hex');

  files = createServer((req, res) => {
    requests++;
    if (req.url !== '/images/tiny.qcow2') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': image.length });
    const half = Math.floor(image.length / 2);
    res.write(image.subarray(0, half));
    void (hold ?? Promise.resolve()).then(() => res.end(image.subarray(half)));
  });
  await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;

  server = await startServer();
  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state !== 'fail' || !page) return;
  const name = ctx.task.name.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 60);
  await page.screenshot({ path: join(SHOTS, `failed-import-${name}.png`), fullPage: true }).catch(() => {});
  console.error(`--- server log (tail) after "${ctx.task.name}" ---\n${server?.log().slice(-4000)}`);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  files?.closeAllConnections();
  await new Promise<void>((resolve) => (files ? files.close(() => resolve()) : resolve()));
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function disks(): Promise<ApiDisk[]> {
  const { status, body } = await server.api<{ disks: ApiDisk[] }>('GET', '/disks');
  expect(status).toBe(200);
  return body.disks;
}
const diskNamed = async (name: string) => (await disks()).find((d) => d.name === name);
async function tasksOf(kind: string): Promise<ApiTask[]> {
  const { status, body } = await server.api<{ tasks: ApiTask[] }>('GET', '/tasks');
  expect(status).toBe(200);
  return body.tasks.filter((x) => x.kind === kind);
}

describe('import and convert in the UI against a real server', () => {
  it('imports a qcow2 from a URL with its sha256: progress while it runs, then a link to the new disk', async () => {
    await page.goto(server.url + '/disks');
    await page.locator('[data-testid=live-indicator][data-state=live]').waitFor({ timeout: 10_000 });
    await page.getByTestId('import-disk-open').click();
    const dialog = page.getByTestId('import-disk-dialog');
    await dialog.waitFor();

    // Checked before anything is sent: the scheme, then the sha256's length and digits.
    await dialog.getByTestId('import-disk-url').fill('ftp://127.0.0.1/tiny.qcow2');
    expect(await dialog.locator('.field-error').first().textContent()).toBe('Only http:// and https:// URLs can be downloaded, not ftp:.');
    expect(await dialog.getByTestId('import-disk-submit').isDisabled()).toBe(true);
    await dialog.getByTestId('import-disk-url').fill(`${base}/images/tiny.qcow2`);
    expect(await dialog.getByTestId('import-disk-name').inputValue()).toBe('tiny');
    await dialog.getByTestId('import-disk-sha256').fill(imageSha.slice(0, 40));
    expect(await dialog.locator('.field-error').textContent()).toBe('A SHA-256 is 64 hexadecimal digits (0-9, a-f); this has 40 characters.');
    expect(await dialog.getByTestId('import-disk-submit').isDisabled()).toBe(true);
    await dialog.getByTestId('import-disk-sha256').fill(imageSha.toUpperCase());
    expect(await dialog.locator('.field-error').count()).toBe(0);
    expect(requests).toBe(0);

    let release!: () => void;
    hold = new Promise<void>((r) => (release = r));
    await dialog.getByTestId('import-disk-submit').click();
    // The download stops halfway until the dialog has shown the running task.
    const progress = dialog.getByTestId('import-disk-progress');
    await progress.waitFor({ timeout: 15_000 });
    expect(await progress.getAttribute('data-status')).toMatch(/queued|running/);
    expect(await progress.textContent()).toContain('Import disk');
    expect(await dialog.getByTestId('import-disk-phases').textContent()).toMatch(/Downloading, then checking and converting/);
    expect(await dialog.getByTestId('import-disk-submit').isDisabled()).toBe(true);
    release();
    hold = null;

    const done = dialog.getByTestId('import-disk-done');
    await done.waitFor({ timeout: 30_000 });
    expect(await progress.count()).toBe(0);
    expect(await done.textContent()).toBe('Imported: tiny (qcow2)');
    await shot(page, '15-import');
    const [task] = await tasksOf('disk.import');
    expect(task).toMatchObject({ status: 'succeeded', progress: 1 });
    expect(task.bytesDone).toBeGreaterThanOrEqual(image.length);
    const made = (await diskNamed('tiny'))!;
    expect(made).toMatchObject({ format: 'qcow2', status: 'ready' });
    expect(task.result).toEqual({ disk: made.id });
    expect(await done.getByTestId('import-disk-done-link').getAttribute('href')).toBe(`/disks#disk-${made.id}`);

    // Following the link closes the dialog and shows the disk's row.
    await done.getByTestId('import-disk-done-link').click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByTestId('disk-row-tiny').waitFor();
    await page.waitForFunction((id) => document.activeElement?.id === `disk-${id}`, made.id, { timeout: 5000 });
    expect(await page.getByTestId('disk-row-tiny').getAttribute('data-status')).toBe('ready');
  });

  it('a wrong sha256 fails the import in words and leaves no disk', async () => {
    const before = await readdir(join(server.dataDir, 'disks'));
    await page.getByTestId('import-disk-open').click();
    const dialog = page.getByTestId('import-disk-dialog');
    await dialog.waitFor();
    await dialog.getByTestId('import-disk-url').fill(`${base}/images/tiny.qcow2`);
    // "tiny" is taken now: said at once, and the name is changed.
    expect(await dialog.locator('.field-error').textContent()).toBe('A disk with this name already exists.');
    await dialog.getByTestId('import-disk-name').fill('tiny-bad');
    const wrong = '0'.repeat(64);
    await dialog.getByTestId('import-disk-sha256').fill(wrong);
    await dialog.getByTestId('import-disk-submit').click();
    const error = dialog.getByTestId('import-disk-error');
    await error.waitFor({ timeout: 30_000 });
    expect(await error.locator('.error-message').textContent()).toBe(`The task failed: sha256 mismatch: expected ${wrong} got ${imageSha}`);
    expect(await dialog.getByTestId('import-disk-done').count()).toBe(0);
    // The dialog can be closed and nothing was added.
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(await diskNamed('tiny-bad')).toBeUndefined();
    expect(await page.getByTestId('disk-row-tiny-bad').count()).toBe(0);
    expect((await readdir(join(server.dataDir, 'disks'))).sort()).toEqual(before.sort());
    const [task] = await tasksOf('disk.import');
    expect(task).toMatchObject({ status: 'failed' });
  });

  it('converts the imported disk to raw from its row; the new raw disk holds the same bytes', async () => {
    const row = page.getByTestId('disk-row-tiny');
    await row.getByTestId('disk-convert').click();
    const dialog = page.getByTestId('convert-disk-dialog');
    await dialog.waitFor();
    // qcow2 now: raw is offered first, and the name follows the format until it is edited.
    expect(await dialog.getByTestId('convert-disk-format').inputValue()).toBe('raw');
    expect(await dialog.getByTestId('convert-disk-name').inputValue()).toBe('tiny-raw');
    await dialog.getByTestId('convert-disk-format').selectOption('vmdk');
    expect(await dialog.getByTestId('convert-disk-name').inputValue()).toBe('tiny-vmdk');
    await dialog.getByTestId('convert-disk-format').selectOption('raw');

    // A file of that name already in the disk directory (not a listed disk): the server refuses,
    // and its words show next to the name.
    const clash = join(server.dataDir, 'disks', 'tiny-raw.img');
    await writeFile(clash, 'not a disk');
    await dialog.getByTestId('convert-disk-submit').click();
    await page.waitForFunction(() => /already exists in the disk directory/.test(document.querySelector('[data-testid=convert-disk-dialog] .field-error')?.textContent ?? ''), undefined, { timeout: 10_000 });
    expect(await dialog.getByTestId('convert-disk-error').count()).toBe(0);
    await rm(clash);
    expect(await diskNamed('tiny-raw')).toBeUndefined();

    await dialog.getByTestId('convert-disk-submit').click();
    const done = dialog.getByTestId('convert-disk-done');
    await done.waitFor({ timeout: 30_000 });
    expect(await done.textContent()).toBe('New disk: tiny-raw (raw)');
    const made = (await diskNamed('tiny-raw'))!;
    expect(made).toMatchObject({ format: 'raw', status: 'ready' });
    const [task] = await tasksOf('disk.convert');
    expect(task).toMatchObject({ status: 'succeeded', result: { disk: made.id } });
    // The source stays; the new file is the raw bytes that went into the qcow2.
    expect(await diskNamed('tiny')).toMatchObject({ format: 'qcow2' });
    const raw = await readFile(made.path);
    expect(raw.length).toBeGreaterThanOrEqual(pattern.length);
    expect(raw.subarray(0, pattern.length).equals(pattern)).toBe(true);

    await dialog.getByTestId('convert-disk-close').click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByTestId('disk-row-tiny-raw').waitFor();
    expect(await page.getByTestId('disk-row-tiny-raw').locator('[data-label=Format]').textContent()).toBe('raw');
    expect(pageErrors).toEqual([]);
  });
});
