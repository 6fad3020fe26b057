// Shared browser helpers for the e2e tests: Debian's Chromium through playwright-core.
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { repoRoot } from './server.js';

export const SHOTS = join(repoRoot, 'test-results', 'screenshots');

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.waitForTimeout(250); // let dialog/fade animations settle
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Non-black pixels on the console canvas (what noVNC drew from the guest's screen) and a hash of it. */
export function canvasStats(page: Page): Promise<{ nonBlack: number; width: number; height: number; hash: number }> {
  return page.evaluate(() => {
    const c = document.querySelector<HTMLCanvasElement>('[data-testid=console-canvas]');
    if (!c || c.width === 0 || c.height === 0) return { nonBlack: 0, width: 0, height: 0, hash: 0 };
    const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let nonBlack = 0;
    let hash = 0;
    for (let i = 0; i < data.length; i += 4) {
      const v = data[i] + data[i + 1] + data[i + 2];
      if (v > 30) nonBlack++;
      hash = (hash * 31 + v) | 0;
    }
    return { nonBlack, width: c.width, height: c.height, hash };
  });
}

/** Polls until the console canvas shows more than `min` non-black pixels. */
export async function waitForPixels(page: Page, min = 1000, timeoutMs = 60_000): Promise<number> {
  const until = Date.now() + timeoutMs;
  let stats = await canvasStats(page);
  while (stats.nonBlack <= min && Date.now() < until) {
    await page.waitForTimeout(500);
    stats = await canvasStats(page);
  }
  return stats.nonBlack;
}
