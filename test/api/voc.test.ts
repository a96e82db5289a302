import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { decode } from 'fast-png';
import sharp from 'sharp';
import * as tar from 'tar';
import { label2image, readImage, saveImageGrid, type Tensor, torch, voc } from '../../src';
import { indexedPng } from '../crafted-files';
import { scratchDir, serveBytes, syntheticVoc } from '../helpers';

const tmp = scratchDir('fcn-torch-voc-');
const quiet = { log: null };

/** A fresh synthetic VOC2012 of count images of 64x96 in its own folder. */
const synth = (name: string, count = 8, seed = 0) =>
  syntheticVoc(path.join(tmp, name), { count, height: 64, width: 96, seed });

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Class ids of a label file computed here in plain JS from its RGB pixels. */
async function idsInJs(file: string): Promise<number[]> {
  const { data } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const out: number[] = [];
  for (let i = 0; i < data.length; i += 3) {
    const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
    if (r === 224 && g === 224 && b === 192) out.push(255);
    else out.push(voc.VOC_COLORMAP.findIndex((c) => c[0] === r && c[1] === g && c[2] === b));
  }
  return out;
}

test('synthesize writes a VOCdevkit tree: JPEG images, VOC-palette PNG labels, split files', async (t) => {
  const root = await synth('tree', 8);
  t.is(root, path.join(tmp, 'tree', 'VOCdevkit', 'VOC2012'));
  const train = fs
    .readFileSync(path.join(root, 'ImageSets', 'Segmentation', 'train.txt'), 'utf8')
    .trim()
    .split('\n');
  const val = fs
    .readFileSync(path.join(root, 'ImageSets', 'Segmentation', 'val.txt'), 'utf8')
    .trim()
    .split('\n');
  t.deepEqual([train.length, val.length], [6, 2]);
  const jpeg = fs.readFileSync(path.join(root, 'JPEGImages', `${train[0]}.jpg`));
  t.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8]);
  const png = decode(fs.readFileSync(path.join(root, 'SegmentationClass', `${train[0]}.png`)));
  t.is(png.channels, 1, 'an indexed PNG');
  t.deepEqual(
    png.palette?.slice(0, 21),
    voc.VOC_COLORMAP.map((c) => [...c]),
  );
  t.deepEqual(png.palette?.[255], [224, 224, 192]);
  const classes = new Set(png.data);
  t.true(classes.has(0) && classes.has(255) && classes.size >= 3, 'background, boundary and objects');
  const again = await synth('tree-again', 8);
  t.is(
    sha256(path.join(again, 'JPEGImages', `${train[0]}.jpg`)),
    sha256(path.join(root, 'JPEGImages', `${train[0]}.jpg`)),
  );
});

test('VOCSegDataset maps label colours to class ids (boundary to 255) and drops small images', async (t) => {
  const root = await synth('dataset', 8);
  // One extra image smaller than the crop.
  await sharp({ create: { width: 40, height: 30, channels: 3, background: '#808080' } })
    .jpeg()
    .toFile(path.join(root, 'JPEGImages', 'small.jpg'));
  await sharp({ create: { width: 40, height: 30, channels: 3, background: '#000000' } })
    .png()
    .toFile(path.join(root, 'SegmentationClass', 'small.png'));
  fs.appendFileSync(path.join(root, 'ImageSets', 'Segmentation', 'train.txt'), 'small\n');
  const lines: string[] = [];
  const ds = new voc.VOCSegDataset(root, { split: 'train', cropSize: [48, 64], log: (l) => lines.push(l) });
  t.is(ds.names.length, 7);
  await ds.load();
  t.is(ds.length, 6);
  t.deepEqual(lines, ['read 6 examples (train; 1 smaller than the crop dropped)']);
  const example = ds.examples[0];
  t.deepEqual(example.image.shape, [64, 96, 3]);
  t.is(example.label.dtype, 'uint8');
  t.deepEqual(Array.from(example.label.toTypedArray() as Uint8Array), await idsInJs(ds.labelPath(example.name)));
});

test('readLabel reads indexed PNGs in every row filter as sharp (libspng) decodes them', async (t) => {
  // VOC's palette at its class ids and 255, other entries unused; rows of random classes.
  const palette = Array.from({ length: 256 }, (_, i) => voc.VOC_COLORMAP[i] ?? [9, 9, 9]);
  palette[255] = [...voc.VOC_VOID_COLOUR];
  let state = 7;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state;
  };
  const rows = Array.from({ length: 23 }, () =>
    Array.from({ length: 31 }, () => (next() % 8 === 0 ? 255 : next() % voc.VOC_COLORMAP.length)),
  );
  const file = path.join(tmp, 'filters.png');
  fs.writeFileSync(file, indexedPng(rows, palette, [0, 1, 2, 3, 4, 4, 3, 2, 1]));
  const ids = await voc.readLabel(file);
  t.deepEqual(ids.shape, [23, 31]);
  t.deepEqual(Array.from(ids.toTypedArray() as Uint8Array), await idsInJs(file));
  t.deepEqual(Array.from(ids.toTypedArray() as Uint8Array), rows.flat());
  ids.dispose();
  // An RGB label (not indexed) goes through sharp and gives the same ids.
  const rgb = path.join(tmp, 'filters-rgb.png');
  await sharp(file).removeAlpha().png({ palette: false }).toFile(rgb);
  const fromRgb = await voc.readLabel(rgb);
  t.deepEqual(Array.from(fromRgb.toTypedArray() as Uint8Array), rows.flat());
  fromRgb.dispose();
});

test('batches: shapes, dtypes, ImageNet normalisation, seeded and prefetched', async (t) => {
  const root = await synth('batches', 12);
  const { trainIter, testIter } = await voc.loadDataVoc(2, [64, 96], { root, ...quiet });
  t.is(trainIter.length, 4);
  t.is(testIter.length, 1);
  const batches: { X: Tensor; Y: Tensor }[] = [];
  for await (const batch of testIter) batches.push(batch);
  t.is(batches.length, 1);
  const { X, Y } = batches[0];
  t.deepEqual([X.shape, X.dtype, Y.shape, Y.dtype], [[2, 3, 64, 96], 'float32', [2, 64, 96], 'int64']);
  // The crop is the whole image here, so X[0] must be the normalised decoded image.
  const first = testIter.dataset.examples[0];
  const { data } = await sharp(testIter.dataset.imagePath(first.name)).raw().toBuffer({ resolveWithObject: true });
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const x = X.narrow(0, 0, 1).toTypedArray() as Float32Array;
  let worst = 0;
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < 64 * 96; p++) {
      worst = Math.max(worst, Math.abs(x[c * 64 * 96 + p] - (data[p * 3 + c] / 255 - mean[c]) / std[c]));
    }
  }
  t.true(worst < 1e-5, `max deviation ${worst}`);
  t.deepEqual(
    Array.from(Y.narrow(0, 0, 1).toTypedArray() as BigInt64Array, Number),
    await idsInJs(testIter.dataset.labelPath(first.name)),
  );

  const crops = await voc.loadDataVoc(4, [32, 48], { root, seed: 5, dropLast: false, ...quiet });
  const same = await voc.loadDataVoc(4, [32, 48], { root, seed: 5, ...quiet });
  const other = await voc.loadDataVoc(4, [32, 48], { root, seed: 6, ...quiet });
  const epoch = async (iter: voc.VOCBatches) => {
    const out: string[] = [];
    for await (const { X: x, Y: y } of iter) out.push(`${x.shape}:${x.sum().item()}:${y.sum().item()}`);
    return out;
  };
  const a = await epoch(crops.trainIter);
  t.is(a.length, 3, '9 examples in batches of 4, the last one kept');
  t.is(a[2].split(':')[0], '1,3,32,48');
  const b = await epoch(same.trainIter);
  t.deepEqual(a.slice(0, 2), b);
  t.notDeepEqual(b, await epoch(other.trainIter));
  t.notDeepEqual(b, await epoch(same.trainIter), 'the next epoch reshuffles and recrops');
});

test('bad VOC input: each a clear error naming the file or colour', async (t) => {
  t.throws(() => new voc.VOCSegDataset(path.join(tmp, 'nowhere'), { split: 'train', cropSize: [8, 8] }), {
    message: /does not exist/,
  });
  const root = await synth('bad', 6);
  t.throws(() => new voc.VOCSegDataset(root, { split: 'test' as never, cropSize: [8, 8] }), { message: /split/ });
  t.throws(() => new voc.VOCSegDataset(root, { split: 'train', cropSize: [0, 8] }), { message: /cropSize/ });
  const names = fs
    .readFileSync(path.join(root, 'ImageSets', 'Segmentation', 'train.txt'), 'utf8')
    .trim()
    .split('\n');
  const label = path.join(root, 'SegmentationClass', `${names[0]}.png`);
  const image = path.join(root, 'JPEGImages', `${names[1]}.jpg`);
  const moved = `${label}.moved`;
  fs.renameSync(label, moved);
  t.throws(() => new voc.VOCSegDataset(root, { split: 'train', cropSize: [8, 8] }), {
    message: new RegExp(`${names[0]}\\.png', listed in .*train\\.txt, does not exist`),
  });
  fs.renameSync(moved, label);
  const load = () => new voc.VOCSegDataset(root, { split: 'train', cropSize: [8, 8], log: null }).load();

  const jpeg = fs.readFileSync(image);
  fs.writeFileSync(image, jpeg.subarray(0, jpeg.length / 2));
  await t.throwsAsync(load(), { message: new RegExp(`cannot read image '.*${names[1]}\\.jpg'`) });
  fs.writeFileSync(image, jpeg);

  const png = fs.readFileSync(label);
  fs.writeFileSync(label, png.subarray(0, 60));
  await t.throwsAsync(load(), { message: new RegExp(`cannot read image '.*${names[0]}\\.png'`) });
  await sharp({ create: { width: 10, height: 10, channels: 3, background: '#000000' } })
    .png()
    .toFile(label);
  await t.throwsAsync(load(), { message: /label '.*\.png' is 10x10 but its image is 96x64/ });
  await sharp({ create: { width: 96, height: 64, channels: 3, background: { r: 1, g: 2, b: 3 } } })
    .png()
    .toFile(label);
  await t.throwsAsync(load(), {
    message: /label '.*\.png': colour \(1, 2, 3\) at row 0, column 0 is not in the VOC palette/,
  });
  fs.writeFileSync(label, png);
  await t.notThrowsAsync(load());
  const valList = path.join(root, 'ImageSets', 'Segmentation', 'val.txt');
  fs.renameSync(valList, `${valList}.moved`);
  t.throws(() => new voc.VOCSegDataset(root, { split: 'val', cropSize: [8, 8] }), {
    message: /no split file '.*val\.txt': is '.*VOC2012' a VOC2012 folder\?/,
  });
  await t.throwsAsync(voc.loadDataVoc(2, [8, 8], { root, log: null }), { message: /no split file/ });
  fs.mkdirSync(valList);
  t.throws(() => new voc.VOCSegDataset(root, { split: 'val', cropSize: [8, 8] }), {
    message: /the split file '.*val\.txt' is not a file/,
  });
  fs.rmdirSync(valList);
  fs.renameSync(`${valList}.moved`, valList);
  // Names in a split file stay inside the dataset.
  const trainList = path.join(root, 'ImageSets', 'Segmentation', 'train.txt');
  const listed = fs.readFileSync(trainList, 'utf8');
  fs.appendFileSync(trainList, '../../../../tmp/x/secret\n');
  t.throws(() => new voc.VOCSegDataset(root, { split: 'train', cropSize: [8, 8] }), {
    message: /train\.txt line \d+: '\.\.\/\.\.\/\.\.\/\.\.\/tmp\/x\/secret' is not a file name inside the dataset/,
  });
  fs.writeFileSync(trainList, listed);
});

test('synthesize never writes into a dataset it did not write', async (t) => {
  const root = path.join(tmp, 'real');
  const tree = path.join(root, 'VOCdevkit', 'VOC2012');
  fs.mkdirSync(path.join(tree, 'ImageSets', 'Segmentation'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'ImageSets', 'Segmentation', 'train.txt'), '2007_000032\n');
  await t.throwsAsync(voc.synthesize(root, { count: 4, height: 32, width: 48 }), {
    message: /refusing to write a synthetic VOC2012 into '.*VOC2012': it holds a dataset that synthesize did not write/,
  });
  t.is(fs.readFileSync(path.join(tree, 'ImageSets', 'Segmentation', 'train.txt'), 'utf8'), '2007_000032\n');
  // Its own trees it rewrites, and the synth root works wherever a VOC2012 folder is asked for.
  const synthetic = path.join(tmp, 'again');
  await voc.synthesize(synthetic, { count: 4, height: 32, width: 48 });
  await voc.synthesize(synthetic, { count: 4, height: 32, width: 48, seed: 1 });
  t.is(new voc.VOCSegDataset(synthetic, { split: 'train', cropSize: [32, 48] }).names.length, 3);
});

test('pictures: readImage, label2image (the chapter colouring) and saveImageGrid', async (t) => {
  const root = await synth('pictures', 4);
  const file = path.join(root, 'JPEGImages', 'synth_000000.jpg');
  const image = await readImage(file);
  t.deepEqual([image.shape, image.dtype], [[3, 64, 96], 'uint8']);
  const { data } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  t.deepEqual([image.narrow(1, 0, 1).narrow(2, 1, 1).reshape([3]).toArray()], [[data[3], data[4], data[5]]]);
  const colours = label2image(
    torch.tensor([
      [0, 1],
      [15, 255],
    ]),
  );
  t.deepEqual(colours.toArray(), [
    [
      [0, 0, 0],
      [128, 0, 0],
    ],
    [
      [192, 128, 128],
      [224, 224, 192],
    ],
  ]);
  const grid = path.join(tmp, 'grid.png');
  await saveImageGrid([[image, label2image(torch.zeros([64, 96], { dtype: 'int64' }))], [image]], grid);
  const meta = await sharp(grid).metadata();
  t.deepEqual([meta.format, meta.width, meta.height], ['png', 96 * 2 + 4, 64 * 2 + 4]);
  await t.throwsAsync(saveImageGrid([[torch.zeros([2, 2])]], grid), { message: /expected a uint8 image/ });
});

test('download: verified by SHA-1, extracted with tar, a no-op the second time', async (t) => {
  const source = path.join(tmp, 'tar-source');
  await voc.synthesize(source, { count: 4, height: 32, width: 48 });
  const archive = path.join(tmp, 'voc.tar');
  await tar.c({ file: archive, cwd: source }, ['VOCdevkit']);
  const body = fs.readFileSync(archive);
  const sha1 = createHash('sha1').update(body).digest('hex');
  const server = await serveBytes(body);
  try {
    const root = path.join(tmp, 'downloaded');
    const dir = await voc.download({ root, mirror: server.url, sha1, progress: false });
    t.is(dir, path.join(root, 'VOCdevkit', 'VOC2012'));
    await t.notThrowsAsync(new voc.VOCSegDataset(dir, { split: 'train', cropSize: [32, 48], log: null }).load());
    await voc.download({ root, mirror: server.url, sha1, progress: false });
    t.is(server.requests(), 1);

    const wrong = path.join(tmp, 'wrong-sha');
    await t.throwsAsync(voc.download({ root: wrong, mirror: server.url, progress: false }), {
      message: /SHA-1 [0-9a-f]{40} does not match the expected 4e443f8a2eca6b1dac8a6c57641b67dd40621a49; removed/,
    });
    t.deepEqual(fs.readdirSync(wrong), []);
  } finally {
    await server.close();
  }
  const broken = await serveBytes(body, 1);
  try {
    const root = path.join(tmp, 'interrupted');
    await t.throwsAsync(voc.download({ root, mirror: broken.url, sha1, progress: false }), {
      message: /downloading .* failed/,
    });
    t.deepEqual(fs.readdirSync(root), [], 'nothing a later run would trust');
  } finally {
    await broken.close();
  }
});
