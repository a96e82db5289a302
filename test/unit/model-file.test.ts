import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { createFcn, load, loadCheckpoint, models, nn, predict, readImage, save, saveCheckpoint } from '../../src';
import { kindOfWeights } from '../../src/model-kind';
import { fileModel } from '../../src/serve';
import { labelImage } from '../../src/serve/models';
import { fixtures, scratchDir } from '../helpers';

const tmp = scratchDir('fcn-torch-model-file-');

test('fileModel: a weights file of an FCN is told its architecture by its tensor names; others are refused', async (t) => {
  const net = createFcn({ arch: 'fcn8s' });
  const file = path.join(tmp, 'model.safetensors');
  await save(net.stateDict(), file);
  const loaded = await fileModel(file).load();
  t.is(loaded.label, 'fcn8s (model.safetensors)');
  t.is(loaded.classes.length, 21);
  t.is(loaded.net.kind, 'FCN8s');
  const conv = path.join(tmp, 'conv.safetensors');
  await save(new nn.Conv2d(3, 4, { kernelSize: 1 }).stateDict(), conv);
  await t.throwsAsync(fileModel(conv).load(), {
    message: /^'.*conv\.safetensors' holds no fcn-torch model: give the checkpoint\.safetensors or model\.safetensors/,
  });
});

test('fileModel: a checkpoint the API wrote without a config labels images as the API model does', async (t) => {
  const net = createFcn({ numClasses: 3 });
  const file = path.join(tmp, 'api.safetensors');
  await saveCheckpoint(file, { model: net, epoch: 1, history: [], classes: ['sky', 'road', 'car'] });
  t.like((await loadCheckpoint(file)).config, { arch: 'fcn32s', numClasses: 3 });
  const loaded = await fileModel(file).load();
  t.deepEqual(loaded.classes, ['sky', 'road', 'car']);
  t.is(loaded.label, 'fcn32s after epoch 1 (api.safetensors)');
  const photo = path.join(tmp, 'photo.png');
  await sharp({ create: { width: 70, height: 50, channels: 3, background: { r: 30, g: 160, b: 90 } } })
    .png()
    .toFile(photo);
  const pixels = await readImage(photo);
  const labels = await labelImage(loaded, pixels);
  t.deepEqual(labels.shape, [50, 70]);
  t.deepEqual([...labels.toTypedArray()], [...(await predict(net, pixels)).toTypedArray()]);

  await t.throwsAsync(saveCheckpoint(file, { model: net, epoch: 1, history: [], classes: ['sky'] }), {
    message: 'saveCheckpoint: classes has 1 names, but the model has 3 classes',
  });
  const notAnObject = 'lr=0.1' as unknown as Record<string, unknown>;
  await t.throwsAsync(saveCheckpoint(file, { model: net, epoch: 1, history: [], config: notAnObject }), {
    message: /saveCheckpoint: config must be an object of settings, got string/,
  });
});

test("torchvision's files are told by their tensors: the model, its classes and aux classifier", async (t) => {
  // Written by PyTorch (scripts/make_segmentation_fixtures.py); the file names say which model.
  const expected = [
    ['fcn_resnet50', 21, true],
    ['fcn_resnet101', 21, true],
    ['deeplabv3_resnet50', 21, true],
    ['deeplabv3_resnet101', 21, true],
    ['deeplabv3_mobilenet_v3_large', 21, false],
    ['deeplabv3_mobilenet_v3_large-nc5-aux', 5, true],
    ['lraspp_mobilenet_v3_large', 21, false],
  ] as const;
  for (const [name, numClasses, auxLoss] of expected) {
    const kind = kindOfWeights(await load(path.join(fixtures, `seg-${name}.pth`)));
    t.like(kind, { model: name.replace('-nc5-aux', ''), numClasses, auxLoss }, name);
  }
  t.is(kindOfWeights(await load(path.join(fixtures, 'cls-resnet50.pth'))), null, 'a classifier');
  t.is(kindOfWeights(await load(path.join(fixtures, 'resnet18-strided.pth'))), null, 'a backbone');
});

test('a segmentation model saved from the API, or its torchvision file, loads with its classes and aux classifier', async (t) => {
  const net = await models.segmentation.lrasppMobilenetV3Large({ numClasses: 3 });
  const file = path.join(tmp, 'lraspp.safetensors');
  await saveCheckpoint(file, { model: net, epoch: 2, history: [], config: { lr: 0.01 } });
  t.like((await loadCheckpoint(file)).config, { model: 'lraspp_mobilenet_v3_large', numClasses: 3, lr: 0.01 });
  const loaded = await fileModel(file).load();
  t.is(loaded.classes.length, 3);
  t.true(loaded.net instanceof models.segmentation.LRASPP);
  const tuned = await fileModel(path.join(fixtures, 'seg-deeplabv3_mobilenet_v3_large-nc5-aux.pth')).load();
  t.is(tuned.classes.length, 5);
  t.true(tuned.net instanceof models.segmentation.DeepLabV3);
  t.is(tuned.net.children().length, 3, 'backbone, classifier and aux_classifier');
});

test('a config that names another model than its weights hold is refused, naming both', async (t) => {
  const file = path.join(tmp, 'disagrees.safetensors');
  const net = createFcn({ arch: 'fcn16s', numClasses: 3 });
  await saveCheckpoint(file, { model: net, epoch: 1, history: [], config: { arch: 'fcn8s' } });
  await t.throwsAsync(fileModel(file).load(), {
    message: /disagrees\.safetensors': its config says fcn8s, but its weights are those of fcn16s with 3 classes$/,
  });
});
