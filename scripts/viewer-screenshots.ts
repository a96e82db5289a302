/**
 * Screenshots of the viewer (`fcn serve`) for the README, in headless Chromium: the run view
 * of an `fcn train --out` folder after its evaluation, and the predict view of one image
 * labelled by that run's checkpoint.
 *
 *   node dist/scripts/viewer-screenshots.js RUN_DIR IMAGE [OUT_DIR (default docs)]
 */
import path from 'node:path';
import { chromium } from 'playwright-core';
import { serve } from '../src/serve';

async function main(): Promise<void> {
  const [run, image, out = 'docs'] = process.argv.slice(2);
  if (!run || !image) throw new Error('usage: viewer-screenshots.js RUN_DIR IMAGE [OUT_DIR]');
  const server = await serve({ run, port: 0, pollSeconds: 1, gridSize: 4 });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    page.setDefaultTimeout(300_000);
    await page.goto(`${server.url}#run`);
    await page.waitForSelector('#evaluation:not([hidden])');
    await page.waitForFunction(
      "[...document.querySelectorAll('#val-grid img')].every((i) => i.complete && i.naturalWidth > 0)",
    );
    await page.screenshot({ path: path.join(out, 'viewer-run.png'), fullPage: true });
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready="true"]');
    await page.setInputFiles('#file', image);
    await page.waitForSelector('#legend tbody tr');
    const box = await page.$eval('#overlay', (c) => c.getBoundingClientRect().toJSON());
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.5);
    await page.screenshot({ path: path.join(out, 'viewer-predict.png'), fullPage: true });
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((err: unknown) => {
  console.error(`viewer-screenshots: ${(err as Error).message}`);
  process.exitCode = 1;
});
