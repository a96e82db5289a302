/**
 * "Run in this browser" on the viewer's predict page, in a real browser (Debian's headless
 * Chromium, driven by playwright-core): the served model, exported as ONNX by the server, run
 * by onnxruntime-web's WebAssembly build (served by the viewer, no network) on images decoded
 * in the page, labels them as the server does (>= 99.9% of the pixels: the chapter's FCN on
 * overlapping tiles, torchvision's LR-ASPP on the resized image); the page shows the time
 * beside the server's; a new network is exported again; a model that cannot be exported and a
 * missing onnxruntime-web are said next to the switch.
 */
import fs from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { createFcn, label2image, nn, predict, readImage, type Tensor, torch, voc } from '../../src';
import { type LoadedModel, type ModelSource, segmentationModel, serve, type ViewerServer } from '../../src/serve';
import { fixtures, launchChromium, scratchDir } from '../helpers';

const outputs = path.resolve(__dirname, '..', '..', '..', 'test-output');
const tmp = scratchDir('fcn-torch-onnx-viewer-');

let browser: Browser | undefined;

test.before(async () => {
  fs.mkdirSync(outputs, { recursive: true });
  browser = await launchChromium();
});

test.after.always(async () => {
  await browser?.close();
});

/** A model source holding net (swappable), VOC's classes. */
function heldModel(label: string, first: nn.Module) {
  let net = first;
  const source: ModelSource = {
    name: label,
    trained: false,
    load: async (): Promise<LoadedModel> => ({ net, classes: voc.VOC_CLASSES, label }),
  };
  return { source, swap: (next: nn.Module) => (net = next) };
}

/** A page on a fresh viewer of source; both closed when the test ends. */
async function open(t: ExecutionContext, source: ModelSource, serveIt = serve): Promise<[Page, ViewerServer]> {
  const server = await serveIt({ model: source, port: 0 });
  const page = await (browser as Browser).newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(240_000);
  page.on('pageerror', (err) => t.log(`page error: ${err.message}`));
  t.teardown(async () => {
    await page.close();
    await server.close();
  });
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready="true"]');
  return [page, server];
}

/** Uploads file (through the input) and waits until the page shows it labelled where asked. */
async function label(page: Page, file: string, where: 'server' | 'browser'): Promise<void> {
  await page.setInputFiles('#file', []);
  await page.setInputFiles('#file', file);
  const done = `#result[data-image="${path.basename(file)}"][data-ran="${where}"]`;
  await page.waitForSelector(`${done}, #status.error`);
  if (!(await page.$(done))) throw new Error(String(await page.textContent('#status')));
}

/** The share of pixels whose overlay colour is the colour of labels (int64 [H, W]). */
async function agreement(page: Page, labels: Tensor): Promise<number> {
  const [height, width] = labels.shape;
  const expected = label2image(labels).toTypedArray() as Uint8Array;
  const overlay = await page.$eval('#overlay', (canvas) => {
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let text = '';
    for (let i = 0; i < data.length; i += 0x8000) text += String.fromCharCode(...data.subarray(i, i + 0x8000));
    return { width: canvas.width, height: canvas.height, rgba: btoa(text) };
  });
  if (overlay.width !== width || overlay.height !== height) {
    throw new Error(`the overlay is ${overlay.width}x${overlay.height}, the labels ${width}x${height}`);
  }
  const rgba = Buffer.from(overlay.rgba, 'base64');
  let same = 0;
  for (let i = 0; i < width * height; i++) {
    if ([0, 1, 2].every((k) => rgba[i * 4 + k] === expected[i * 3 + k])) same += 1;
  }
  return same / (width * height);
}

/** Turns the switch on and waits until the model is loaded in the page. */
async function switchOn(page: Page): Promise<void> {
  await page.check('#in-browser');
  await page.waitForSelector('#in-browser-note[data-ready="true"], #in-browser-note.error');
  if (await page.$('#in-browser-note.error')) throw new Error(String(await page.textContent('#in-browser-note')));
}

const msOf = (text: string, pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);

test.serial("the chapter's FCN in the browser labels as the server's tiles do, with both times shown", async (t) => {
  torch.manualSeed(3);
  const held = heldModel('fcn32s, untrained', createFcn({ arch: 'fcn32s' }));
  const [page, server] = await open(t, held.source);
  const photos = await voc.synthesize(path.join(tmp, 'photos'), { count: 2, height: 240, width: 320, seed: 7 });
  const file = path.join(photos, 'JPEGImages', 'synth_000000.jpg');
  const second = path.join(photos, 'JPEGImages', 'synth_000001.jpg');
  // A PNG whose sides need tiles across and down (100 -> two 96-row tiles, 520 -> two 480-column ones).
  const wide = path.join(tmp, 'wide.png');
  const noise = Buffer.from(Array.from({ length: 100 * 520 * 3 }, (_, i) => (i * 7919) % 251));
  await sharp(noise, { raw: { width: 520, height: 100, channels: 3 } })
    .png()
    .toFile(wide);

  // onnxruntime-web's files come from the viewer, with their types; nothing else of the package does.
  const types = await Promise.all(
    ['ort.wasm.min.js', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm', 'ort.node.min.js'].map(
      async (name) => {
        const response = await fetch(`${server.url}ort/${name}`);
        await response.arrayBuffer();
        return `${response.status} ${response.headers.get('content-type')}`;
      },
    ),
  );
  t.deepEqual(types, [
    '200 text/javascript; charset=utf-8',
    '200 text/javascript; charset=utf-8',
    '200 application/wasm',
    '404 application/json; charset=utf-8',
  ]);

  // The server first, for its time; then the switch (the page is cross-origin isolated: threads).
  await label(page, file, 'server');
  const serverText = (await page.textContent('#timing')) ?? '';
  await switchOn(page);
  t.true(await page.evaluate('self.crossOriginIsolated'));
  t.regex(
    (await page.textContent('#in-browser-note')) ?? '',
    /^ready: fcn32s, untrained, [\d.]+ MB of ONNX, WebAssembly/,
  );
  await label(page, file, 'browser');
  const browserText = (await page.textContent('#timing')) ?? '';
  t.regex(
    browserText,
    /^320x240 ran in this browser \(WebAssembly, \d threads?\) in \d+ ms .*; the server labelled it in \d+ ms$/,
  );
  t.regex((await page.textContent('#status')) ?? '', /^synth_000000\.jpg: fcn32s, untrained .*, run in this browser$/);
  const labels = await predict((await held.source.load()).net, await readImage(file));
  t.true(new Set(labels.toTypedArray() as BigInt64Array).size >= 3);
  const share = await agreement(page, labels);
  t.true(share >= 0.999, `${(share * 100).toFixed(3)}% of the pixels agree`);
  // Once more: the first run of a session also sets ONNX Runtime up.
  await label(page, second, 'browser');
  await label(page, file, 'browser');
  const againText = (await page.textContent('#timing')) ?? '';
  const [browserMs, againMs] = [msOf(browserText, /in (\d+) ms/), msOf(againText, /in (\d+) ms/)];
  t.log(
    `FCN-32s 320x240: browser ${browserMs} ms (first run), ${againMs} ms (again), ` +
      `server ${msOf(serverText, /labelled in (\d+) ms/)} ms; ${(share * 100).toFixed(3)}% of the pixels agree`,
  );
  const legend = await page.$$eval('#legend tbody tr', (rows) => rows.length);
  t.true(legend >= 3);
  await page.screenshot({ path: path.join(outputs, 'viewer-in-browser.png'), fullPage: true });

  await label(page, wide, 'browser');
  const wideShare = await agreement(page, await predict((await held.source.load()).net, await readImage(wide)));
  t.true(wideShare >= 0.999, `${(wideShare * 100).toFixed(3)}% of the pixels agree`);

  // The download: labels in the graph, exported once per network; another network, another export.
  const download = async (query = '') => {
    const response = await fetch(`${server.url}api/model.onnx${query}`);
    const bytes = (await response.arrayBuffer()).byteLength;
    return {
      status: response.status,
      etag: response.headers.get('etag'),
      bytes,
      disposition: response.headers.get('content-disposition'),
    };
  };
  const first = await download();
  t.is(first.status, 200);
  t.is(first.disposition, 'attachment; filename="fcn32s-untrained.onnx"');
  t.true(first.bytes > 1e6);
  t.is((await download()).etag, first.etag);
  t.is((await download('?output=scores')).status, 400);
  // The served network changes (as a run's checkpoint does): exported again, and the page loads it.
  const before = (await (await fetch(`${server.url}api/browser-model`)).json()) as { version: string };
  torch.manualSeed(4);
  const next = createFcn({ arch: 'fcn32s' });
  held.swap(next);
  const after = (await (await fetch(`${server.url}api/browser-model`)).json()) as { version: string };
  t.not(after.version, before.version);
  t.is((await download(`?output=logits&version=${before.version}`)).status, 409);
  t.not((await download()).etag, first.etag);
  await label(page, file, 'browser');
  const nextShare = await agreement(page, await predict(next, await readImage(file)));
  t.true(nextShare >= 0.999, `${(nextShare * 100).toFixed(3)}% of the pixels agree with the new network`);
  t.true((await agreement(page, labels)) < 0.9, 'the labels are still those of the network before');
});

test.serial(
  "torchvision's LR-ASPP in the browser: the image resized as the server does, logits resized back",
  async (t) => {
    // Weights that PyTorch's fixtures hold (random weights label everything background).
    const source = segmentationModel('lraspp_mobilenet_v3_large', {
      weights: path.join(fixtures, 'seg-lraspp_mobilenet_v3_large.pth'),
    });
    const { net } = await source.load();
    const [page] = await open(t, source);
    const photos = await voc.synthesize(path.join(tmp, 'seg'), { count: 2, height: 150, width: 200, seed: 11 });
    const file = path.join(photos, 'JPEGImages', 'synth_000000.jpg');
    await label(page, file, 'server');
    const serverText = (await page.textContent('#timing')) ?? '';
    await switchOn(page);
    await label(page, file, 'browser');
    const browserText = (await page.textContent('#timing')) ?? '';
    const labels = await predict(net, await readImage(file));
    t.true(new Set(labels.toTypedArray() as BigInt64Array).size >= 4);
    const share = await agreement(page, labels);
    t.log(
      `LR-ASPP 200x150 (resized to 693x520): browser ${msOf(browserText, /in (\d+) ms/)} ms, ` +
        `server ${msOf(serverText, /labelled in (\d+) ms/)} ms; ${(share * 100).toFixed(3)}% agree`,
    );
    t.true(share >= 0.999, `${(share * 100).toFixed(3)}% of the pixels agree`);
  },
);

test.serial('a model that cannot be exported: the reason by the switch, which turns itself off', async (t) => {
  const held = heldModel(
    'pooled',
    new nn.Sequential(new nn.Conv2d(3, 21, { kernelSize: 1 }), new nn.AdaptiveAvgPool2d([2, 3])),
  );
  const [page, server] = await open(t, held.source);
  const response = await fetch(`${server.url}api/browser-model`);
  t.is(response.status, 422);
  const { error } = (await response.json()) as { error: string };
  t.regex(error, /^this model cannot be exported to ONNX, so it runs on the server only: .*AdaptiveAvgPool2d/);
  // A click: the page unchecks the switch again once the server refuses.
  await page.click('#in-browser');
  await page.waitForSelector('#in-browser-note.error');
  t.is(await page.textContent('#in-browser-note'), `cannot run the model in this browser: ${error}`);
  t.false(await page.isChecked('#in-browser'));
});

test.serial('without onnxruntime-web the switch is disabled and says what to install', async (t) => {
  // The package resolved as absent while the server starts (it looks once).
  const loader = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const resolve = loader._resolveFilename;
  const withoutOrt: typeof serve = async (options) => {
    loader._resolveFilename = (request, ...rest) => {
      if (request.startsWith('onnxruntime-web')) throw new Error(`Cannot find module '${request}'`);
      return resolve.call(Module, request, ...rest);
    };
    try {
      return await serve(options);
    } finally {
      loader._resolveFilename = resolve;
    }
  };
  torch.manualSeed(3);
  const held = heldModel('fcn32s, untrained', createFcn({ arch: 'fcn32s' }));
  const [page, server] = await open(t, held.source, withoutOrt);
  t.true(await page.isDisabled('#in-browser'));
  t.is(await page.textContent('#in-browser-note'), 'npm install onnxruntime-web to run models in the browser');
  const info = (await (await fetch(`${server.url}api/info`)).json()) as { browser: unknown };
  t.deepEqual(info.browser, { available: false, note: 'npm install onnxruntime-web to run models in the browser' });
  const ort = await fetch(`${server.url}ort/ort.wasm.min.js`);
  t.is(ort.status, 404);
  t.deepEqual(await ort.json(), { error: 'npm install onnxruntime-web to run models in the browser' });
  t.is((await fetch(`${server.url}api/browser-model`)).status, 501);
});
