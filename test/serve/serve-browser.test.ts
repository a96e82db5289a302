/**
 * The viewer in a real browser (Debian's headless Chromium, driven by playwright-core): a
 * training run's view while it trains (curves after epoch 1, then after epoch 2), its
 * evaluation (IoU table, confusion matrix, validation grid); the first screen, with no result
 * panel until an image is uploaded, and an uploaded image labelled with the overlay's pixels
 * equal to `predict`'s labels, the legend, the class under the pointer and the opacity slider.
 * Screenshots of each view go to test-output/.
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import type { Browser, Page } from 'playwright-core';
import { createFcn, type EpochBatches, label2image, optim, predict, readImage, torch, train, voc } from '../../src';
import { type ModelSource, serve, type ViewerServer } from '../../src/serve';
import { launchChromium, scratchDir } from '../helpers';

const outputs = path.resolve(__dirname, '..', '..', '..', 'test-output');
const tmp = scratchDir('fcn-torch-viewer-');
const runDir = path.join(tmp, 'run');
const CROP: [number, number] = [64, 96];

let browser: Browser | undefined;
let server: ViewerServer | undefined;
let page: Page;
/** Opens the gate of epoch 2's training batches. */
let openEpoch2: () => void = () => {};
let training: Promise<unknown> = Promise.resolve();

/** trainIter, except that epoch 2 (index 1) waits for the gate: the test sees the run between epochs. */
function gated(trainIter: EpochBatches, gate: Promise<void>): EpochBatches {
  return {
    length: trainIter.length,
    async *epoch(e: number) {
      if (e === 1) await gate;
      yield* trainIter.epoch(e);
    },
  };
}

test.before(async () => {
  fs.mkdirSync(outputs, { recursive: true });
  fs.mkdirSync(runDir);
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(120_000);
  server = await serve({ run: runDir, port: 0, pollSeconds: 1 });
});

test.after.always(async () => {
  openEpoch2();
  await training.catch(() => undefined);
  await browser?.close();
  await server?.close();
  // The run's checkpoint and the synthetic data (about 100 MB) go with the test.
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Starts training 2 epochs of FCN-32s on a small synthetic VOC into runDir; epoch 2 waits for openEpoch2. */
async function startTraining(): Promise<void> {
  const root = await voc.synthesize(path.join(tmp, 'data'), { count: 12, height: 72, width: 104 });
  torch.setNumThreads(1);
  torch.manualSeed(0);
  const { trainIter, testIter } = await voc.loadDataVoc(3, CROP, { root, log: null });
  const gate = new Promise<void>((resolve) => {
    openEpoch2 = resolve;
  });
  const net = createFcn({ arch: 'fcn32s' });
  const config = {
    ...{ arch: 'fcn32s', init: 'bilinear', numClasses: 21, crop: CROP, batchSize: 3 },
    ...{ lr: 0.01, wd: 1e-3, momentum: 0.9, seed: 0, data: root },
  };
  training = train(net, gated(trainIter, gate), testIter, {
    epochs: 2,
    optimizer: new optim.SGD(net.parameters(), { lr: config.lr, weightDecay: config.wd, momentum: config.momentum }),
    checkpoint: path.join(runDir, 'checkpoint.safetensors'),
    plot: path.join(runDir, 'curves.svg'),
    config,
    log: null,
    progress: false,
  });
}

test.serial('the run view follows a training run: curves per epoch, evaluation, confusion matrix, grid', async (t) => {
  await startTraining();
  await page.goto(`${server?.url}#run`);
  await page.waitForSelector('body[data-ready="true"]');
  // Epoch 1 ends, epoch 2 waits: the page shows one epoch's curves and evaluates that checkpoint itself.
  await page.waitForSelector('#curves[data-epochs="1"]');
  await page.waitForSelector('#evaluation[data-epoch="1"]');
  t.regex(
    (await page.textContent('#run-summary')) ?? '',
    /^epoch 1 · fcn32s, crop 64x96, batch 3, lr 0\.01 · loss [\d.]+/,
  );
  openEpoch2();
  await training;
  // The page polls: the curves now have two epochs, and the evaluation says that it is of epoch 1.
  await page.waitForSelector('#curves[data-epochs="2"]');
  await page.waitForFunction("document.querySelector('#eval-status').textContent.includes('now at epoch 2')");
  t.false(await page.isDisabled('#evaluate'));
  await page.click('#evaluate');
  await page.waitForSelector('#evaluation[data-epoch="2"]');

  const curves = await page.$eval('#curves', (img) => [img.naturalWidth, img.clientHeight]);
  t.true(curves[0] > 300 && curves[1] > 100, `curves ${curves}`);
  const state = (await (await fetch(`${server?.url}api/run/evaluation`)).json()) as {
    state: string;
    examples: number;
    confusion: number[][];
    classIoU: (number | null)[];
    meanIoU: number;
  };
  t.is(state.state, 'done');
  t.is(state.examples, 3);
  // The IoU table: a row per class present, the values the server computed.
  const iou = await page.$$eval('#iou-table tbody tr', (rows) => rows.map((r) => r.cells[2].textContent));
  t.deepEqual(
    iou,
    state.classIoU.filter((v) => v !== null).map((v) => v.toFixed(3)),
  );
  // The heatmap: one row and column per class present; each row's shares sum to 1.
  const present = state.confusion
    .map((_, id) => id)
    .filter((id) => state.confusion[id].some((v) => v > 0) || state.confusion.some((row) => row[id] > 0));
  const shares = await page.$$eval('#confusion tbody tr', (rows) =>
    rows.map((r) => [...r.querySelectorAll('td')].map((td) => Number(td.dataset.share))),
  );
  t.is(shares.length, present.length);
  for (const [i, row] of shares.entries()) {
    t.is(row.length, present.length);
    const labelled = state.confusion[present[i]].reduce((s, v) => s + v, 0);
    if (labelled > 0) t.true(Math.abs(row.reduce((s, v) => s + v, 0) - 1) < 0.01, `row ${i}: ${row}`);
  }
  // The grid: image, prediction, label and error mask of each val image, all decoded by the browser.
  const grid = await page.$$eval('#val-grid img', (imgs) => imgs.map((img) => [img.alt, img.naturalWidth]));
  t.is(grid.length, 3 * 4);
  await page.waitForFunction(
    "[...document.querySelectorAll('#val-grid img')].every((i) => i.complete && i.naturalWidth === 104)",
  );
  t.regex(String(grid[3][0]), /: error$/);
  await page.screenshot({ path: path.join(outputs, 'viewer-run.png'), fullPage: true });
});

test.serial('an uploaded image gets the overlay of predict, the legend, the class under the pointer', async (t) => {
  // A model held here too, with fresh weights: its labels change class often, so every pixel of the overlay counts.
  torch.manualSeed(3);
  const net = createFcn({ arch: 'fcn32s' });
  const source: ModelSource = {
    name: 'fcn32s, untrained',
    trained: false,
    load: async () => ({ net, classes: voc.VOC_CLASSES, label: "fcn32s (the chapter's FCN) with fresh weights" }),
  };
  const own = await serve({ model: source, port: 0 });
  t.teardown(() => own.close());
  const photos = await voc.synthesize(path.join(tmp, 'photos'), { count: 2, height: 240, width: 320, seed: 7 });
  const file = path.join(photos, 'JPEGImages', 'synth_000000.jpg');
  await page.goto(own.url);
  await page.waitForSelector('body[data-ready="true"]');

  // The first screen, before any upload: the drop zone only. The result panel and its image
  // are laid out nowhere (no box), and neither are the run's tab and view (this server has no run).
  t.true(await page.isVisible('#drop'));
  for (const selector of ['#result', '#photo', '#overlay', '#legend', '#tab-run', '#run-view']) {
    t.false(await page.isVisible(selector), `${selector} is visible before any upload`);
    t.is(await page.locator(selector).boundingBox(), null, `${selector} has a box before any upload`);
  }
  await page.screenshot({ path: path.join(outputs, 'viewer-first-screen.png'), fullPage: true });

  await page.setInputFiles('#file', file);
  await page.waitForSelector('#legend tbody tr');
  // After the upload the panel shows, with the photo and the overlay laid over it at its size.
  t.true(await page.isVisible('#result'));
  const photoBox = await page.locator('#photo').boundingBox();
  const overlayBox = await page.locator('#overlay').boundingBox();
  t.true(photoBox !== null && photoBox.width > 300 && photoBox.height > 200, `photo ${JSON.stringify(photoBox)}`);
  t.deepEqual(overlayBox, photoBox);

  // What predict says of the same image with the same model, whole, at the image's size.
  const labels = await predict(net, await readImage(file), { mode: 'whole' });
  t.deepEqual(labels.shape, [240, 320]);
  const expected = label2image(labels).toTypedArray() as Uint8Array;
  const ids = Array.from(labels.toTypedArray() as BigInt64Array, Number);
  t.true(new Set(ids).size >= 3, `${new Set(ids).size} classes`);

  // The overlay's pixels, read back from its canvas.
  const overlay = await page.$eval('#overlay', (canvas) => {
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let text = '';
    for (let i = 0; i < data.length; i += 0x8000) text += String.fromCharCode(...data.subarray(i, i + 0x8000));
    return { width: canvas.width, height: canvas.height, rgba: btoa(text) };
  });
  t.deepEqual([overlay.width, overlay.height], [320, 240]);
  const rgba = Buffer.from(overlay.rgba, 'base64');
  let different = 0;
  for (let i = 0; i < 320 * 240; i++) {
    for (let k = 0; k < 3; k++) if (rgba[i * 4 + k] !== expected[i * 3 + k]) different += 1;
  }
  t.is(different, 0);

  // The legend: the classes found, most pixels first, with their share.
  const counts = new Map<number, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  const legend = await page.$$eval('#legend tbody tr', (rows) =>
    rows.map((r) => [r.querySelector('.name')?.textContent, r.querySelector('.share')?.textContent]),
  );
  const wanted = [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .map(([id, n]) => [voc.VOC_CLASSES[id], `${((n / ids.length) * 100).toFixed(1)}%`]);
  t.deepEqual(legend, wanted);
  t.regex((await page.textContent('#timing')) ?? '', /^320x240 labelled in \d+ ms in float32 /);

  // The class under the pointer, at a pixel of the most frequent class and at one of another.
  const box = await page.$eval('#overlay', (c) => {
    const r = c.getBoundingClientRect();
    return { x: r.left, y: r.top, w: r.width, h: r.height };
  });
  for (const index of [ids.indexOf(ids[0]), ids.findIndex((id) => id !== ids[0])]) {
    if (index < 0) continue;
    const [x, y] = [index % 320, Math.floor(index / 320)];
    await page.mouse.move(box.x + ((x + 0.5) * box.w) / 320, box.y + ((y + 0.5) * box.h) / 240);
    t.is(await page.textContent('#pointer-class'), `${voc.VOC_CLASSES[ids[index]]} at (${x}, ${y})`);
  }
  await page.$eval('#opacity', (input) => {
    input.value = '40';
    input.dispatchEvent(new Event('input'));
  });
  t.is(await page.$eval('#overlay', (c) => c.style.opacity), '0.4');
  await page.mouse.move(box.x + box.w / 2, box.y + box.h / 2);
  await page.screenshot({ path: path.join(outputs, 'viewer-predict.png'), fullPage: true });

  // A file that is no image: an error on the page; then an image dropped on the page is labelled.
  await page.setInputFiles('#file', { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not a picture') });
  await page.waitForSelector('#status.error');
  t.regex((await page.textContent('#status')) ?? '', /^notes\.png: not an image that can be read/);
  const second = path.join(photos, 'JPEGImages', 'synth_000001.jpg');
  // A DataTransfer holding the file, made in the page (Node has no such class).
  const base64 = fs.readFileSync(second).toString('base64');
  const dropped = await page.evaluateHandle(
    `(() => { const transfer = new DataTransfer(); const bytes = Uint8Array.from(atob('${base64}'), (c) => c.charCodeAt(0)); ` +
      "transfer.items.add(new File([bytes], 'dropped.jpg', { type: 'image/jpeg' })); return transfer; })()",
  );
  await page.dispatchEvent('#drop', 'drop', { dataTransfer: dropped });
  await page.waitForSelector('#result[data-image="dropped.jpg"]');
  t.regex((await page.textContent('#status')) ?? '', /^dropped\.jpg: fcn32s/);
});
