// Web UI numbers: the gzip size of the JavaScript the first page loads, and the time headless
// Chromium needs until the VM list shows every VM; benchUi() is the section of `npm run bench`.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { CFG, log, onCleanup, results, root } from './context.mjs';
import { fmt } from './lib.mjs';

/** Module scripts and modulepreload links of index.html, each gzipped at level 9. */
export function firstLoadJs(webDist) {
  const html = fs.readFileSync(path.join(webDist, 'index.html'), 'utf8');
  const urls = new Set();
  for (const tag of html.match(/<script\b[^>]*>/gi) ?? []) {
    if (!/\btype\s*=\s*["']?module["']?/i.test(tag)) continue;
    const src = /\bsrc\s*=\s*["']([^"']+)["']/i.exec(tag)?.[1];
    if (src) urls.add(src);
  }
  for (const tag of html.match(/<link\b[^>]*>/gi) ?? []) {
    if (!/\brel\s*=\s*["']?modulepreload["']?/i.test(tag)) continue;
    const href = /\bhref\s*=\s*["']([^"']+)["']/i.exec(tag)?.[1];
    if (href) urls.add(href);
  }
  const files = [];
  for (const u of urls) {
    if (/^[a-z]+:\/\//i.test(u)) continue; // external: not ours to count
    const file = path.join(webDist, decodeURIComponent(u.split(/[?#]/)[0]).replace(/^\/+/, ''));
    const raw = fs.readFileSync(file);
    files.push({ url: u, bytes: raw.length, gzipBytes: zlib.gzipSync(raw, { level: 9 }).length });
  }
  return {
    files,
    bytes: files.reduce((a, f) => a + f.bytes, 0),
    gzipBytes: files.reduce((a, f) => a + f.gzipBytes, 0),
  };
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];

/**
 * Loads `url` in a fresh browser context `runs` times and measures, from navigation start
 * (performance.now() in the page), when `[data-testid^="vm-row-"]` matches `expected` elements
 * (domTimes) and the next animation frame after that, i.e. when they are painted (times).
 * Returns { skipped } when the page never shows a single row.
 */
export async function timeToRows(url, expected, { runs = 3, executablePath = '/usr/bin/chromium', onBrowser } = {}) {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true });
  onBrowser?.(browser);
  const times = [];
  const domTimes = [];
  try {
    for (let i = 0; i < runs; i++) {
      const context = await browser.newContext();
      // Record, inside the page, when the rows are in the DOM and the next frame after that.
      await context.addInitScript((n) => {
        const sel = '[data-testid^="vm-row-"]';
        const mo = new MutationObserver(() => {
          if (window.__rowsDom || document.querySelectorAll(sel).length < n) return;
          window.__rowsDom = performance.now();
          mo.disconnect();
          requestAnimationFrame(() => {
            window.__rowsShown = performance.now();
          });
        });
        mo.observe(document, { childList: true, subtree: true });
      }, expected);
      const page = await context.newPage();
      try {
        await page.goto(url, { waitUntil: 'commit', timeout: 30_000 });
        const any = await page
          .waitForSelector('[data-testid^="vm-row-"]', { state: 'attached', timeout: 20_000 })
          .then(() => true, () => false);
        if (!any) return { skipped: 'UI not built (no [data-testid^="vm-row-"] element)' };
        const handle = await page.waitForFunction(() => window.__rowsShown && [window.__rowsDom, window.__rowsShown], null, {
          polling: 50,
          timeout: 60_000,
        });
        const [dom, shown] = await handle.jsonValue();
        domTimes.push(dom);
        times.push(shown);
      } finally {
        await context.close();
      }
    }
  } finally {
    await browser.close();
  }
  return { times, domTimes };
}

/** The web UI section: first-load JS of packages/web/dist, then CFG.vms rows painted in Chromium. */
export async function benchUi(base, web) {
  const S = (results.sections.ui = {});
  const dist = path.join(root, 'packages/web/dist');
  if (!fs.existsSync(path.join(dist, 'index.html'))) {
    S.skipped = 'UI not built (packages/web/dist/index.html missing)';
    log(`web UI: ${S.skipped}`);
    return;
  }
  S.js = firstLoadJs(dist);
  log(`web UI first-load JS: ${S.js.files.length} file(s), ${fmt(S.js.bytes / 1024)} KiB, gzip -9 ${fmt(S.js.gzipBytes / 1024)} KiB`);
  if (!web) {
    S.skipped = `the server did not start with the UI: ${results.serverWithUiError}`;
    log(`web UI rows: skipped: ${S.skipped}`);
    return;
  }
  let browser = null;
  onCleanup('browser', async () => browser?.close().catch(() => {}));
  const r = await timeToRows(`${base}/`, CFG.vms, { runs: CFG.uiRuns, onBrowser: (b) => (browser = b) });
  Object.assign(S, r);
  if (r.skipped) log(`web UI rows: skipped: ${r.skipped}`);
  else log(`web UI: ${CFG.vms} rows painted after ${r.times.map((x) => fmt(x)).join(' / ')} ms`);
}
