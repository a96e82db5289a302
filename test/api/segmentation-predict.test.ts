import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { load, models, predict, type Tensor, torch } from '../../src';
import { chooseWeights, published } from '../../src/hub';
import { fixture, fixtures, pick, scratchDir, serveBytes } from '../helpers';

const seg = models.segmentation;
const tmp = scratchDir('fcn-torch-seg-');
const lrasppFile = path.join(fixtures, 'seg-lraspp_mobilenet_v3_large.pth');

test("predict applies the weights' preprocessing and labels the image at its own size, as torchvision", async (t) => {
  const f = await fixture('predict-lraspp_mobilenet_v3_large.safetensors');
  const model = await seg.lrasppMobilenetV3Large({ weights: { path: lrasppFile } });
  t.deepEqual(model.transforms, { resizeSize: 520, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
  const image = pick(f, 'image');
  const labels = await predict(model, image);
  t.deepEqual(labels.shape, [19, 26]);
  t.is(labels.dtype, 'int64');
  const got = labels.toTypedArray() as BigInt64Array;
  const want = pick(f, 'labels').toTypedArray() as BigInt64Array;
  const margin = pick(f, 'margin').toTypedArray() as Float32Array;
  const scale = pick(f, 'scale').item() as number;
  let compared = 0;
  for (let i = 0; i < want.length; i++) {
    if (margin[i] <= 1e-4 * scale) continue;
    compared += 1;
    t.is(got[i], want[i], `pixel ${i}`);
  }
  t.true(compared > 0.95 * want.length, `${compared} of ${want.length} pixels compared`);
  const batch = await predict(model, torch.stack([image, image]));
  t.deepEqual(batch.shape, [2, 19, 26]);
  await t.throwsAsync(predict(model, image, { mode: 'whole' }), { message: /mode apply to the chapter's FCN/ });
  await t.throwsAsync(predict(model, image.to('float64')), { message: /expected uint8 pixels/ });
});

test('weights by name: downloaded once into the cache with the hash check, then reused', async (t) => {
  const body = fs.readFileSync(lrasppFile);
  const prefix = createHash('sha256').update(body).digest('hex').slice(0, 8);
  const server = await serveBytes(body);
  const cacheDir = path.join(tmp, 'cache');
  const entry = published(`${server.url}/lraspp-${prefix}.pth`, {
    numClasses: 21,
    categories: seg.VOC_CATEGORIES,
    numParams: 3221538,
    metrics: {},
  });
  try {
    const table = { TEST_V1: entry };
    const first = await chooseWeights('test', 'DEFAULT', table, 'TEST_V1', { cacheDir, progress: false }).file();
    t.is(first, path.join(cacheDir, `lraspp-${prefix}.pth`));
    const second = await chooseWeights('test', 'TEST_V1', table, 'TEST_V1', { cacheDir }).file();
    t.is(second, first);
    t.is(server.requests(), 1, 'the second call is served from the cache');
    const model = await seg.lrasppMobilenetV3Large({ weights: { path: second } });
    t.is(model.stateDict().size, (await load(lrasppFile)).size);
  } finally {
    await server.close();
  }
});

test('published weights that fail the SHA-256 check are refused, nothing is cached, and a damaged cached file is kept aside', async (t) => {
  const server = await serveBytes(fs.readFileSync(lrasppFile));
  const cacheDir = path.join(tmp, 'cache-bad');
  try {
    await t.throwsAsync(
      seg.lrasppMobilenetV3Large({ weights: 'COCO_WITH_VOC_LABELS_V1', url: `${server.url}/x.pth`, cacheDir }),
      {
        message:
          /lraspp_mobilenet_v3_large-d234d4ea\.pth .*checksum mismatch: SHA-256 [0-9a-f]{64} does not start with d234d4ea/,
      },
    );
    t.deepEqual(fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : [], []);
    // A damaged file under the cached name is kept aside, renamed (never deleted unsaid), and a
    // fresh download tried (which fails here): nothing new is cached.
    fs.mkdirSync(cacheDir, { recursive: true });
    fs.writeFileSync(path.join(cacheDir, 'deeplabv3_resnet50_coco-cd0a2569.pth'), 'damaged');
    await t.throwsAsync(seg.deeplabv3Resnet50({ weights: 'DEFAULT', url: `${server.url}/y.pth`, cacheDir }), {
      message: /does not start with cd0a2569/,
    });
    const left = fs.readdirSync(cacheDir);
    t.is(left.length, 1, left.join(', '));
    t.regex(left[0] ?? '', /^deeplabv3_resnet50_coco-cd0a2569\.pth\.bad-\d{4}-\d\d-\d\dT[\d-]+Z$/);
    t.is(fs.readFileSync(path.join(cacheDir, left[0] ?? ''), 'utf8'), 'damaged');
    t.is(server.requests(), 2);
  } finally {
    await server.close();
  }
});

test('the published weights carry their categories and torchvision metadata', (t) => {
  for (const name of seg.SEGMENTATION_MODELS) {
    const w = seg.SEGMENTATION_WEIGHTS[name].COCO_WITH_VOC_LABELS_V1;
    t.is(w.url, `https://download.pytorch.org/models/${w.fileName}`);
    t.regex(w.fileName, new RegExp(`^${name}.*-${w.sha256Prefix}\\.pth$`));
    t.is(w.categories, seg.VOC_CATEGORIES);
    t.is(w.numClasses, 21);
  }
  // torchvision 0.28's _VOC_CATEGORIES (torchvision/models/_meta.py), as its weights' meta gives them.
  t.deepEqual(seg.VOC_CATEGORIES, [
    '__background__',
    'aeroplane',
    'bicycle',
    'bird',
    'boat',
    'bottle',
    'bus',
    'car',
    'cat',
    'chair',
    'cow',
    'diningtable',
    'dog',
    'horse',
    'motorbike',
    'person',
    'pottedplant',
    'sheep',
    'sofa',
    'train',
    'tvmonitor',
  ]);
  t.is(
    seg.SEGMENTATION_WEIGHTS.deeplabv3_resnet50.COCO_WITH_VOC_LABELS_V1.metrics['COCO-val2017-VOC-labels miou'],
    66.4,
  );
});

test('a segmentation model built from published weights reports its categories; random ones report none', async (t) => {
  const random = await seg.lrasppMobilenetV3Large();
  t.is(random.categories, null);
  t.is(random.info?.weights, null);
  const labels: Tensor = await predict(random, torch.zeros([3, 8, 5], { dtype: 'uint8' }));
  t.deepEqual(labels.shape, [8, 5]);
});
