/**
 * Datasets as people have them (src/data): every layout of test/fixtures/datasets, written by
 * PIL (scripts/make_dataset_fixtures.py), decodes to exactly the class ids the script drew;
 * problems are named with their files; and the CLI trains, evaluates and predicts on them
 * in the dataset's own terms (its classes, colours and split).
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import test from 'ava';
import { decode, encode } from 'fast-png';
import sharp from 'sharp';
import { data, fileModel, load, type Tensor, torch, voc } from '../../src';
import { readMask } from '../../src/data/masks';
import { buildModel } from '../../src/model-file';
import { cli, exactlyEqual, fixtures, maxAbsDiff, runNode, scratchDir } from '../helpers';

const datasets = path.join(fixtures, 'datasets');
const tmp = scratchDir('fcn-torch-data-');
const fcn = (...args: string[]) => runNode([cli, ...args], { cwd: tmp });

/** Every example's labels equal the ids the fixture script drew for its stem. */
async function expectLabels(t: import('ava').ExecutionContext, read: data.SegmentationData, name: string) {
  const expected = await load(path.join(datasets, `${name}.expected.safetensors`));
  const examples = [...read.train.examples, ...read.val.examples];
  t.true(examples.length > 0);
  for (const e of examples) {
    const truth = expected.get(e.name) as Tensor;
    t.truthy(truth, e.name);
    t.true(exactlyEqual(e.label, truth), `${name}: the labels of '${e.name}'`);
    t.deepEqual(e.image.shape, [...truth.shape, 3], `${name}: '${e.name}' decodes to its mask's size, RGB`);
  }
}

test('grey index masks, classes.txt and split files with a BOM and CRLF, names with spaces and other letters', async (t) => {
  const read = await data.readDataset(path.join(datasets, 'index'));
  t.is(read.format, 'folders');
  t.deepEqual(read.problems, []);
  t.deepEqual(
    read.classes.map((c) => c.name),
    ['background', 'circle é', 'square 漢字'],
  );
  t.is(read.masks, 'index');
  t.is(read.split, 'files');
  t.deepEqual(
    read.train.pairs.map((p) => p.stem),
    ['grey_5', 'photo 1 é', 'plain_3', 'rgba_6', 'sub/deep 4', '漢字 2'],
  );
  t.deepEqual(
    read.val.pairs.map((p) => p.stem),
    ['plain_8', 'small_7'],
  );
  await expectLabels(t, read, 'index');
  data.disposeDataset(read);
});

test('palette masks: the indices are the classes, whatever the palette; train/ and val/ folders', async (t) => {
  const read = await data.readDataset(path.join(datasets, 'palette'));
  t.deepEqual(read.problems, []);
  t.is(read.split, 'folders');
  t.deepEqual([read.train.examples.length, read.val.examples.length], [5, 2]);
  t.deepEqual(
    read.classes.map((c) => c.name),
    ['bg', 'cat', 'dog', 'bird'],
  );
  await expectLabels(t, read, 'palette');
  data.disposeDataset(read);
});

test("RGB colour masks map through classes.json's colours; no split of its own: a seeded random one", async (t) => {
  const read = await data.readDataset(path.join(datasets, 'colour'), { seed: 3 });
  t.deepEqual(read.problems, []);
  t.is(read.masks, 'colour');
  t.is(read.split, 'random');
  t.deepEqual(read.classes[3], { name: 'sky', color: [30, 60, 200] });
  t.deepEqual([read.train.pairs.length, read.val.pairs.length], [9, 1]);
  const again = await data.readDataset(path.join(datasets, 'colour'), { seed: 3, only: 'val' });
  t.deepEqual(
    again.val.pairs.map((p) => p.stem),
    read.val.pairs.map((p) => p.stem),
    'the same seed draws the same split',
  );
  await expectLabels(t, read, 'colour');
  data.disposeDataset(read);
  data.disposeDataset(again);
});

test('binary masks (0/255, and a 1-bit PNG) without a class file are background and foreground', async (t) => {
  const read = await data.readDataset(path.join(datasets, 'binary'));
  t.deepEqual(read.problems, []);
  t.is(read.masks, 'binary');
  t.deepEqual(
    read.classes.map((c) => c.name),
    ['background', 'foreground'],
  );
  await expectLabels(t, read, 'binary');
  data.disposeDataset(read);
});

test('16-bit index masks: 300 classes from the largest value, int32 labels, the ignore value said', async (t) => {
  await t.throwsAsync(data.readDataset(path.join(datasets, 'wide')), {
    message: /the masks hold the value 65535, past the 65535 classes a dataset may have; .*--ignore-index 65535/,
  });
  const read = await data.readDataset(path.join(datasets, 'wide'), { ignoreIndex: 65535 });
  t.deepEqual(read.problems, []);
  t.is(read.classes.length, 300);
  t.is(read.classes[299].name, 'class_299');
  t.is(read.ignoreIndex, 65535);
  await expectLabels(t, read, 'wide');
  data.disposeDataset(read);
});

test('phone photos are turned upright by their EXIF orientation, matching masks drawn upright', async (t) => {
  const read = await data.readDataset(path.join(datasets, 'exif'));
  t.deepEqual(read.problems, []);
  await expectLabels(t, read, 'exif');
  const expected = await load(path.join(datasets, 'exif.expected.safetensors'));
  for (const e of [...read.train.examples, ...read.val.examples]) {
    const upright = expected.get(`image:${e.name}`) as Tensor;
    const meanDiff = e.image.to('float32').sub(upright.to('float32')).abs().mean().item();
    t.true(meanDiff < 6, `'${e.name}' upright (mean |difference| ${meanDiff.toFixed(2)}, JPEG's loss)`);
  }
  data.disposeDataset(read);
});

test("Cityscapes: gtFine's label ids become its 19 training classes, every other id ignored", async (t) => {
  const read = await data.readDataset(path.join(datasets, 'cityscapes'));
  t.is(read.format, 'cityscapes');
  t.deepEqual(read.problems, []);
  t.is(read.classes.length, 19);
  t.deepEqual(read.classes[13], { name: 'car', color: [0, 0, 142] });
  t.deepEqual(
    read.val.pairs.map((p) => p.stem),
    ['frankfurt/frankfurt_000000_000019', 'frankfurt/frankfurt_000001_000019'],
  );
  await expectLabels(t, read, 'cityscapes');
  data.disposeDataset(read);
});

test('ADE20K: 150 classes stored as k + 1, 0 ignored; the tree found under ADEChallengeData2016', async (t) => {
  const read = await data.readDataset(path.join(datasets, 'ade20k'));
  t.is(read.format, 'ade20k');
  t.deepEqual(read.problems, []);
  t.is(read.classes.length, 150);
  t.deepEqual([read.classes[0].name, read.classes[149].name], ['wall', 'flag']);
  t.deepEqual([read.train.pairs.length, read.val.pairs.length], [3, 2]);
  await expectLabels(t, read, 'ade20k');
  data.disposeDataset(read);
});

test("COCO: instances drawn as torchvision's references with pycocotools draw them: polygons, RLE, overlaps", async (t) => {
  const read = await data.readDataset(path.join(datasets, 'coco'));
  t.is(read.format, 'coco');
  t.deepEqual(read.problems, []);
  t.deepEqual(
    read.classes.map((c) => c.name),
    [...voc.VOC_CLASSES],
  );
  // torchvision's filter: train images without VOC's categories or with 1000 pixels of area or less are left out.
  t.deepEqual(
    read.train.pairs.map((p) => p.stem),
    ['000000000009', '000000000025'],
  );
  t.deepEqual(
    read.val.pairs.map((p) => p.stem),
    ['000000000139', '000000000285'],
  );
  await expectLabels(t, read, 'coco');
  data.disposeDataset(read);
});

test('every problem of a broken dataset is named with its file, and training refuses it before any step', async (t) => {
  const root = path.join(datasets, 'broken');
  const read = await data.readDataset(root);
  const problems = read.problems.map((p) => `${path.relative(root, p.file)}: ${p.message}`);
  const expected = [
    /^images\/no_mask\.jpg: has no mask/,
    /^masks\/no_image\.png: has no image/,
    /^masks\/wrong_size\.png: is 96x64 but its image '.*wrong_size\.jpg' is 100x60/,
    /^masks\/past_classes\.png: value 5 at row 10, column 20 is not a class: the dataset has 2 \(0\.\.1\)/,
    /^masks\/truncated_mask\.png: /,
    /^images\/not_an_image\.jpg: /,
  ];
  for (const pattern of expected)
    t.true(
      problems.some((p) => pattern.test(p)),
      `${pattern} in\n${problems.join('\n')}`,
    );
  t.is(problems.length, expected.length, problems.join('\n'));
  data.disposeDataset(read);

  const check = await fcn('data', 'check', root);
  t.is(check.code, 1);
  t.regex(check.stdout, /6 problems:/);
  t.regex(check.stdout, /no_mask\.jpg: has no mask/);
  const trainArgs = ['--crop', '64x96', '--batch-size', '2', '--epochs', '1', '--out', 'broken-run'];
  const train = await fcn('train', '--data', root, ...trainArgs);
  t.is(train.code, 1);
  t.regex(train.stderr, /^fcn train: '.*broken.*' .* \(and 5 more: fcn data check .*broken\)\n$/);
  t.false(fs.existsSync(path.join(tmp, 'broken-run')), 'no output folder left behind');
  const noValArgs = ['--crop', '64x96', '--batch-size', '2', '--val-fraction', '0', '--out', 'no-val'];
  const noVal = await fcn('train', '--data', path.join(datasets, 'colour'), ...noValArgs);
  t.is(noVal.code, 1);
  t.regex(
    noVal.stderr,
    /the val split of '.*colour' has no images: give it some \(val\.txt, a val\/ folder, or a val fraction above 0\)/,
  );
});

test('fcn data check reports layout, classes, split, sizes and pixels per class', async (t) => {
  const check = await fcn('data', 'check', path.join(datasets, 'index'));
  t.is(check.code, 0, check.stderr);
  t.regex(check.stdout, /dataset: .*index \(image\/mask folders\)/);
  t.regex(check.stdout, /classes: 3, classes\.txt/);
  t.regex(check.stdout, /split: train\.txt\/val\.txt at the root; train 6 images, val 2/);
  t.regex(check.stdout, /sizes \(HxW\): 48x80 to 72x128, 8 read/);
  t.regex(check.stdout, /square 漢字\s+2\s+\d+\.\d\d %/);
  t.regex(check.stdout, /no problems found/);
  const missing = await fcn('data', 'check', tmp);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /is no dataset layout known here: not VOC2012 .* nor image\/mask folders/);
});

test('loadData pads images smaller than the crop with the ignore label, and says how many', async (t) => {
  const lines: string[] = [];
  const loaded = await data.loadData(2, [64, 96], { root: path.join(datasets, 'index'), log: (l) => lines.push(l) });
  t.deepEqual(lines, [
    'read 6 examples (train; 0 smaller than the crop, padded with the ignore label)',
    'read 2 examples (val; 1 smaller than the crop, padded with the ignore label)',
  ]);
  t.is(loaded.classes.length, 3);
  let padded = 0;
  for await (const { X, Y } of loaded.testIter) {
    t.deepEqual(X.shape, [2, 3, 64, 96]);
    const small = loaded.testIter.dataset.examples.findIndex((e) => e.name === 'small_7');
    // The 48x80 image's rows past 48 and columns past 80 are padding, labelled 255.
    const corner = Y.index([torch.tensor(new BigInt64Array([BigInt(small)]), { shape: [1] })]);
    padded = corner.eq(255).sum().item();
    X.dispose();
    Y.dispose();
  }
  t.true(padded >= 64 * 96 - 48 * 80, `${padded} ignored pixels in the padded crop`);
  if (loaded.data) data.disposeDataset(loaded.data);
});

test('fcn train, eval and predict on image/mask folders speak the dataset: its classes, colours and split', async (t) => {
  const root = path.join(datasets, 'colour');
  const common = ['--crop', '64x96', '--batch-size', '3', '--threads', '1'];
  const trained = await fcn('train', '--data', root, ...common, '--epochs', '1', '--lr', '0.01', '--out', 'colour-run');
  t.is(trained.code, 0, trained.stderr);
  t.regex(trained.stdout, /read 9 examples \(train; 0 smaller than the crop/);
  const split = JSON.parse(fs.readFileSync(path.join(tmp, 'colour-run', 'split.json'), 'utf8')) as { val: string[] };
  t.is(split.val.length, 1);

  const weights = path.join(tmp, 'colour-run', 'model.safetensors');
  const evaluated = await fcn('eval', '--checkpoint', weights, '--data', root);
  t.is(evaluated.code, 0, evaluated.stderr);
  t.regex(evaluated.stdout, /1 val images of .* \(run split\)/);
  t.regex(evaluated.stdout, /pixel accuracy 0\.\d+, mean IoU 0\.\d+/);
  for (const name of ['road', 'car', 'tree', 'sky'])
    t.regex(evaluated.stdout, new RegExp(`\\n${name}\\s+(-|[01]\\.\\d+)`));

  const image = path.join(root, 'images', `${split.val[0]}.png`);
  const predicted = await fcn('predict', '--checkpoint', weights, '--out', 'colour-pred', image);
  t.is(predicted.code, 0, predicted.stderr);
  const mask = decode(fs.readFileSync(path.join(tmp, 'colour-pred', `${split.val[0]}.labels.png`)));
  t.deepEqual(mask.palette?.slice(0, 4), [
    [0, 0, 0],
    [255, 0, 0],
    [0, 255, 0],
    [30, 60, 200],
  ]);
  t.deepEqual([mask.width, mask.height, mask.channels], [96, 64, 1]);
  t.true(
    [...mask.data].every((v) => v < 4),
    'pixel values are class ids',
  );
  const legend = fs.readFileSync(path.join(tmp, 'colour-pred', `${split.val[0]}.legend.svg`), 'utf8');
  t.regex(legend, /(road|car|tree|sky) \(\d+\.\d %\)/);
  t.notRegex(legend, /aeroplane|bicycle/);
});

test('fcn train on 16-bit masks: a 300-class head; eval reads them with the ignore value trained with', async (t) => {
  const root = path.join(datasets, 'wide');
  const args = ['--crop', '64x96', '--batch-size', '2', '--threads', '1', '--epochs', '1', '--out', 'wide-run'];
  const model = ['--model', 'lraspp_mobilenet_v3_large', '--ignore-index', '65535', '--val-fraction', '0.25'];
  const trained = await fcn('train', '--data', root, ...model, ...args);
  t.is(trained.code, 0, trained.stderr);
  const weights = path.join(tmp, 'wide-run', 'model.safetensors');
  const tensors = await load(weights);
  t.deepEqual(tensors.get('classifier.low_classifier.weight')?.shape, [300, 40, 1, 1]);
  const evaluated = await fcn('eval', '--checkpoint', weights, '--data', root, '--whole');
  t.is(evaluated.code, 0, evaluated.stderr);
  t.regex(evaluated.stdout, /\nclass_299\s+(-|[01]\.\d+)/);
});

test("VOC2012's split files may name files with spaces and other letters, with a BOM and CRLF", async (t) => {
  const root = await voc.synthesize(path.join(tmp, 'voc-names'), { count: 6, height: 64, width: 96 });
  const name = 'synth 000002 é 漢字';
  fs.renameSync(path.join(root, 'JPEGImages', 'synth_000002.jpg'), path.join(root, 'JPEGImages', `${name}.jpg`));
  fs.renameSync(
    path.join(root, 'SegmentationClass', 'synth_000002.png'),
    path.join(root, 'SegmentationClass', `${name}.png`),
  );
  const listFile = path.join(root, 'ImageSets', 'Segmentation', 'train.txt');
  const names = fs
    .readFileSync(listFile, 'utf8')
    .trim()
    .split('\n')
    .map((n) => (n === 'synth_000002' ? name : n));
  fs.writeFileSync(listFile, `\uFEFF${names.join('\r\n')}\r\n`);
  const dataset = new voc.VOCSegDataset(root, { split: 'train', cropSize: [64, 96], log: null });
  t.true(dataset.names.includes(name));
  const examples = await dataset.load();
  t.true(examples.some((e) => e.name === name));
  const read = await data.readDataset(root);
  t.deepEqual(read.problems, []);
  t.true(read.train.examples.some((e) => e.name === name));
  const label = (await voc.readLabel(path.join(root, 'SegmentationClass', `${name}.png`))) as Tensor;
  const example = read.train.examples.find((e) => e.name === name);
  t.is(maxAbsDiff(label, example?.label as Tensor), 0);
  fs.writeFileSync(listFile, `${names.join('\n')}\n../outside\n`);
  t.throws(() => new voc.VOCSegDataset(root, { split: 'train', cropSize: [64, 96] }), {
    message: /line \d+: '\.\.\/outside' is not a file name inside the dataset/,
  });
});

test("fine-tuning: a trained model's weights, its class layers afresh for the dataset's classes", async (t) => {
  const file = path.join(fixtures, 'seg-deeplabv3_mobilenet_v3_large-nc5-aux.pth'); // PyTorch's, 5 classes
  const lines: string[] = [];
  const spec = { model: 'deeplabv3_mobilenet_v3_large' as const, arch: 'fcn32s' as const, init: 'bilinear' as const };
  const net = await buildModel({ ...spec, numClasses: 4, auxLoss: true }, 'cpu', file, undefined, (l) => lines.push(l));
  t.deepEqual(lines, [
    `fine-tuning from ${file}: classifier.4, aux_classifier.4 start afresh for this dataset's classes`,
  ]);
  const trained = await load(file);
  const mine = net.stateDict();
  t.deepEqual(mine.get('classifier.4.weight')?.shape, [4, 256, 1, 1]);
  t.deepEqual(mine.get('aux_classifier.4.weight')?.shape, [4, 10, 1, 1]);
  for (const key of ['backbone.0.0.weight', 'classifier.0.convs.0.0.weight', 'aux_classifier.0.weight']) {
    t.true(exactlyEqual(mine.get(key) as Tensor, trained.get(key) as Tensor), key);
  }

  const root = path.join(datasets, 'colour');
  const args = ['--crop', '64x96', '--batch-size', '3', '--threads', '1', '--epochs', '1', '--out', 'finetune-run'];
  const run = await fcn('train', '--model', 'deeplabv3_mobilenet_v3_large', '--weights', file, '--data', root, ...args);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /fine-tuning from .*: classifier\.4, aux_classifier\.4 start afresh/);
  t.regex(run.stdout, /epoch 1\/1: loss [\d.]+/);
});

test("class weights by median frequency balancing equal numpy's over the train split; fcn train --loss, --class-weights", async (t) => {
  const root = path.join(datasets, 'index');
  const loaded = await data.loadData(2, [64, 96], { root, log: null });
  const labels = loaded.trainIter.dataset.examples.map((e) => e.label.toTypedArray() as Uint8Array);
  const weights = data.medianFrequencyWeights(labels, 3, 255);
  const expected = (await load(path.join(datasets, 'index.expected.safetensors'))).get('median_frequency_weights');
  t.true(maxAbsDiff(torch.tensor(Float64Array.from(weights), { shape: [3] }), expected as Tensor) < 1e-12);
  if (loaded.data) data.disposeDataset(loaded.data);

  const args = ['--crop', '64x96', '--batch-size', '2', '--threads', '1', '--epochs', '1'];
  const run = await fcn(
    'train',
    '--data',
    root,
    ...args,
    '--loss',
    'ce+dice',
    '--class-weights',
    'median',
    '--out',
    'w',
  );
  t.is(run.code, 0, run.stderr);
  const said = weights.map((w) => w.toFixed(3));
  t.regex(run.stdout, new RegExp(`class weights \\(median frequency\\): background ${said[0]}, circle é ${said[1]}`));
  fs.writeFileSync(path.join(tmp, 'weights.txt'), '1\n2\n');
  const wrong = await fcn('train', '--data', root, ...args, '--class-weights', 'weights.txt', '--out', 'w2');
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /the class weights 'weights\.txt' give 2 weights for the dataset's 3 classes/);
});

test('a mask whose header claims a huge size is refused from the header, before anything is inflated', async (t) => {
  const root = path.join(tmp, 'bomb');
  fs.mkdirSync(path.join(root, 'images'), { recursive: true });
  fs.mkdirSync(path.join(root, 'masks'));
  fs.copyFileSync(path.join(datasets, 'index', 'images', 'plain_3.jpg'), path.join(root, 'images', 'a.jpg'));
  const png = Buffer.from(encode({ width: 1, height: 1, channels: 1, data: new Uint8Array([0]) }));
  png.writeUInt32BE(60_000, 16); // IHDR width and height
  png.writeUInt32BE(60_000, 20);
  fs.writeFileSync(path.join(root, 'masks', 'a.png'), png);
  const read = await data.readDataset(root, { valFraction: 0 });
  t.deepEqual(
    read.problems.map((p) => `${path.basename(p.file)}: ${p.message}`),
    ['a.png: it is 60000x60000 (3600000000 pixels), more than the 268402689 allowed'],
  );
});

test('Cityscapes, ADE20K and COCO train an epoch, evaluate and predict through the CLI, in their own classes', async (t) => {
  const args = ['--crop', '64x96', '--batch-size', '2', '--epochs', '1', '--threads', '1'];
  const lraspp = ['--model', 'lraspp_mobilenet_v3_large']; // 150 classes: a head that upsamples by interpolation
  for (const [name, image, classes, model] of [
    ['cityscapes', 'cityscapes/leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png', /\nbicycle\s/, []],
    ['ade20k', 'ade20k/ADEChallengeData2016/images/validation/ADE_val_00000001.jpg', /\nflag\s/, lraspp],
    ['coco', 'coco/val2017/000000000139.jpg', /\ntv\/monitor\s/, []],
  ] as const) {
    const root = path.join(datasets, name);
    const run = await fcn('train', '--data', root, ...args, ...model, '--out', `layout-${name}`);
    t.is(run.code, 0, `${name}: ${run.stderr}`);
    const weights = path.join(tmp, `layout-${name}`, 'model.safetensors');
    const evaluated = await fcn('eval', '--checkpoint', weights, '--data', root);
    t.is(evaluated.code, 0, `${name}: ${evaluated.stderr}`);
    t.regex(evaluated.stdout, classes, name);
    const predicted = await fcn(
      'predict',
      '--checkpoint',
      weights,
      '--out',
      `layout-${name}-pred`,
      path.join(datasets, image),
    );
    t.is(predicted.code, 0, `${name}: ${predicted.stderr}`);
  }
  // The viewer's model source gives the dataset's names and colours (its legend, IoU table and confusion matrix).
  const loaded = await fileModel(path.join(tmp, 'layout-cityscapes', 'model.safetensors')).load();
  t.is(loaded.classes.length, 19);
  t.is(loaded.classes[18], 'bicycle');
  t.deepEqual(loaded.palette?.[13], [0, 0, 142]);
});

test('8-bit grey and palette masks read off the event loop give the values written, whatever filter libpng gave each row', async (t) => {
  // Noise beside gradients, so that libpng's adaptive filtering picks several filter types.
  const [width, height] = [97, 64];
  const pixels = new Uint8Array(width * height);
  let seed = 7;
  for (let i = 0; i < pixels.length; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const [x, y] = [i % width, Math.floor(i / width)];
    pixels[i] = y % 3 === 0 ? seed % 256 : (x * 3 + y * 5) % 256;
  }
  const file = path.join(tmp, 'filtered.png');
  await sharp(pixels, { raw: { width, height, channels: 1 } })
    .toColourspace('b-w')
    .png({ adaptiveFiltering: true, compressionLevel: 9 })
    .toFile(file);
  const bytes = fs.readFileSync(file);
  const idat = [];
  for (let at = 8; at < bytes.length; at += 12 + bytes.readUInt32BE(at)) {
    if (bytes.toString('latin1', at + 4, at + 8) === 'IDAT')
      idat.push(bytes.subarray(at + 8, at + 8 + bytes.readUInt32BE(at)));
  }
  const rows = zlib.inflateSync(Buffer.concat(idat));
  const filters = new Set(Array.from({ length: height }, (_, y) => rows[y * (width + 1)]));
  t.true(filters.size >= 3, `libpng used the filters ${[...filters]}`);
  const mask = await readMask(file, 1 << 20);
  t.deepEqual([mask.width, mask.height, mask.channels], [width, height, 1]);
  t.true(Buffer.from(mask.data as Uint8Array).equals(Buffer.from(pixels)));
  // The same indices as a palette PNG: indices, not colours.
  const palette = Array.from({ length: 256 }, (_, i) => [i, 255 - i, (i * 7) % 256]);
  fs.writeFileSync(file, encode({ width, height, channels: 1, depth: 8, palette, data: pixels }));
  const indexed = await readMask(file, 1 << 20);
  t.true(Buffer.from(indexed.data as Uint8Array).equals(Buffer.from(pixels)));
});
