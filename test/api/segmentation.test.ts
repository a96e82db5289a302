import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { load, models, nn, type Tensor } from '../../src';
import { fixture, fixtures, maxAbsDiff, pick } from '../helpers';

const seg = models.segmentation;

/** |got - expected| <= 1e-4 * max|expected| (the fixtures' stated tolerance). */
function close(t: ExecutionContext, got: Tensor, expected: Tensor, what: string) {
  const scale = Math.max(...Array.from(expected.abs().toTypedArray() as Float32Array));
  const diff = maxAbsDiff(got, expected);
  t.true(diff <= 1e-4 * scale, `${what}: max |diff| ${diff} > 1e-4 x ${scale}`);
}

const CASES = [
  { fixture: 'fcn_resnet50', build: seg.fcnResnet50, options: { numClasses: 21, auxLoss: true } },
  { fixture: 'fcn_resnet101', build: seg.fcnResnet101, options: { numClasses: 21, auxLoss: true } },
  { fixture: 'deeplabv3_resnet50', build: seg.deeplabv3Resnet50, options: { numClasses: 21, auxLoss: true } },
  { fixture: 'deeplabv3_resnet101', build: seg.deeplabv3Resnet101, options: { numClasses: 21, auxLoss: true } },
  { fixture: 'deeplabv3_mobilenet_v3_large', build: seg.deeplabv3MobilenetV3Large, options: { numClasses: 21 } },
  {
    fixture: 'deeplabv3_mobilenet_v3_large-nc5-aux',
    build: seg.deeplabv3MobilenetV3Large,
    options: { numClasses: 5, auxLoss: true },
  },
  { fixture: 'lraspp_mobilenet_v3_large', build: seg.lrasppMobilenetV3Large, options: { numClasses: 21 } },
] as const;

for (const c of CASES) {
  test.serial(
    `${c.fixture}: torchvision's state dict loads as is; eval out/aux equal PyTorch within 1e-4`,
    async (t) => {
      const f = await fixture(`seg-${c.fixture}.safetensors`);
      const weights = await load(path.join(fixtures, `seg-${c.fixture}.pth`));
      const model = await c.build(c.options);
      t.deepEqual([...model.stateDict().keys()], [...weights.keys()], 'same keys in the same order');
      model.loadStateDict(weights);
      model.eval();
      const x = pick(f, 'input');
      const outputs = await model.forwardOutputsAsync(x);
      close(t, outputs.out, pick(f, 'out'), 'out');
      if (f.has('aux')) close(t, outputs.aux as Tensor, pick(f, 'aux'), 'aux');
      else t.is(outputs.aux, undefined);
      // The backbone's last features (layer4 / features.16), as torchvision's per-channel means.
      const high = f.has('features.out.chmean') ? 'features.out.chmean' : 'features.high.chmean';
      close(t, model.get('backbone').forward(x).mean(3).mean(2), pick(f, high), high);
      close(t, model.forward(x), pick(f, 'out'), 'forward gives out');
    },
  );
}

test.serial('parameter counts equal torchvision meta num_params (aux included)', async (t) => {
  const expected = {
    fcn_resnet50: 35322218,
    fcn_resnet101: 54314346,
    deeplabv3_resnet50: 42004074,
    deeplabv3_resnet101: 60996202,
    deeplabv3_mobilenet_v3_large: 11029328,
    lraspp_mobilenet_v3_large: 3221538,
  } as const;
  for (const [name, count] of Object.entries(expected)) {
    const model = await seg.getModel(name, name.startsWith('lraspp') ? {} : { auxLoss: true });
    const params = model.parameters().reduce((n, p) => n + p.numel, 0);
    t.is(params, count, name);
    t.is(seg.SEGMENTATION_WEIGHTS[name as keyof typeof expected].COCO_WITH_VOC_LABELS_V1.numParams, count);
  }
});

test('module trees: kinds and torchvision names', async (t) => {
  const fcn = await seg.fcnResnet50({ auxLoss: true });
  t.true(fcn instanceof seg.FCN);
  t.deepEqual(
    fcn.namedChildren().map(([n, m]) => [n, m.kind]),
    [
      ['backbone', 'ResNet'],
      ['classifier', 'FCNHead'],
      ['aux_classifier', 'FCNHead'],
    ],
  );
  t.deepEqual(
    fcn
      .get('backbone')
      .namedChildren()
      .map(([n]) => n),
    ['conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4'],
  );
  t.true(fcn.get('backbone').get('layer3').get(0) instanceof nn.Bottleneck);
  t.is(fcn.get('classifier').get(3).kind, 'Dropout');
  const deeplab = await seg.deeplabv3MobilenetV3Large();
  t.true(deeplab instanceof seg.DeepLabV3);
  t.true(deeplab.get('classifier').get(0) instanceof seg.ASPP);
  t.deepEqual(
    deeplab
      .get('classifier')
      .get(0)
      .get('convs')
      .namedChildren()
      .map(([, m]) => m.kind),
    ['Sequential', 'Sequential', 'Sequential', 'Sequential', 'ASPPPooling'],
  );
  t.true(deeplab.get('backbone').get(4) instanceof nn.InvertedResidual);
  t.is(deeplab.get('backbone').get(16).get(2).kind, 'Hardswish');
  t.is(deeplab.namedChildren().length, 2, 'no aux classifier unless asked');
  const lraspp = await seg.lrasppMobilenetV3Large();
  t.true(lraspp.get('classifier') instanceof seg.LRASPPHead);
  const x = pick(await fixture('seg-lraspp_mobilenet_v3_large.safetensors'), 'input');
  t.throws(() => lraspp.get('classifier').forward(x), { message: /runs as part of LRASPP/ });
});

for (const [name, build] of [
  ['resnet50', nn.resnet50],
  ['resnet101', nn.resnet101],
  ['mobilenet_v3_large', nn.mobilenetV3Large],
] as const) {
  test.serial(
    `nn.${build.name} loads torchvision's ${name} state dict as is; logits equal PyTorch within 1e-4`,
    async (t) => {
      const f = await fixture(`cls-${name}.safetensors`);
      const weights = await load(path.join(fixtures, `cls-${name}.pth`));
      const model = build();
      t.deepEqual([...model.stateDict().keys()], [...weights.keys()]);
      model.loadStateDict(weights);
      model.eval();
      close(t, model.forward(pick(f, 'input')), pick(f, 'logits'), `${name} logits`);
    },
  );
}

test('loading weights by path infers numClasses and auxLoss; mismatches are clear errors', async (t) => {
  const file = path.join(fixtures, 'seg-deeplabv3_mobilenet_v3_large-nc5-aux.pth');
  const f = await fixture('seg-deeplabv3_mobilenet_v3_large-nc5-aux.safetensors');
  const model = await seg.deeplabv3MobilenetV3Large({ weights: { path: file } });
  t.is(model.info?.weights, file);
  const outputs = model.eval().forwardOutputs(pick(f, 'input'));
  close(t, outputs.out, pick(f, 'out'), 'out');
  t.deepEqual(outputs.aux?.shape, [1, 5, 41, 57]);
  await t.throwsAsync(seg.deeplabv3MobilenetV3Large({ weights: { path: file }, numClasses: 21 }), {
    message: /numClasses 21 disagrees with the weights .*nc5-aux.pth, which have numClasses 5/,
  });
  await t.throwsAsync(seg.deeplabv3MobilenetV3Large({ weights: { path: file }, auxLoss: false }), {
    message: /auxLoss false disagrees/,
  });
  // A backbone (classification) file given as a whole model, and the other way round.
  const classifier = path.join(fixtures, 'cls-mobilenet_v3_large.pth');
  await t.throwsAsync(seg.deeplabv3MobilenetV3Large({ weights: { path: classifier } }), {
    message: /holds no whole segmentation model .* go in weightsBackbone/,
  });
  await t.throwsAsync(seg.lrasppMobilenetV3Large({ weightsBackbone: { path: file } }), {
    message: /holds a whole segmentation model .* pass it as weights/,
  });
  // Another builder's file: its keys do not fit.
  await t.throwsAsync(seg.lrasppMobilenetV3Large({ weights: { path: file } }), {
    message: /has no 'classifier.low_classifier.bias'/,
  });
});

test('weightsBackbone loads a classification file into the backbone (fc / classifier dropped)', async (t) => {
  const resnetFile = path.join(fixtures, 'cls-resnet50.pth');
  const resnet = await load(resnetFile);
  const model = await seg.fcnResnet50({ weightsBackbone: { path: resnetFile }, numClasses: 3 });
  t.is(
    maxAbsDiff(
      model.get('backbone').stateDict().get('layer3.5.conv2.weight') as Tensor,
      pick(resnet, 'layer3.5.conv2.weight'),
    ),
    0,
  );
  t.is(model.info?.weights, null);
  const mobileFile = path.join(fixtures, 'cls-mobilenet_v3_large.pth');
  const mobile = await load(mobileFile);
  const lraspp = await seg.lrasppMobilenetV3Large({ weightsBackbone: { path: mobileFile } });
  t.is(
    maxAbsDiff(
      lraspp.stateDict().get('backbone.13.block.2.fc1.weight') as Tensor,
      pick(mobile, 'features.13.block.2.fc1.weight'),
    ),
    0,
  );
  await t.throwsAsync(seg.fcnResnet101({ weightsBackbone: { path: resnetFile } }), {
    message: /weightsBackbone does not fit the resnet101 backbone: .*missing keys: layer3.6/,
  });
});

test('bad options: unknown builders, weights names, LR-ASPP aux, numClasses', async (t) => {
  await t.throwsAsync(seg.getModel('fcn_resnet18'), {
    message:
      /model: expected one of fcn_resnet50, fcn_resnet101, deeplabv3_resnet50, .*lraspp_mobilenet_v3_large, got "fcn_resnet18"/,
  });
  await t.throwsAsync(seg.fcnResnet50({ weights: 'IMAGENET1K_V1' as 'DEFAULT' }), {
    message: /fcn_resnet50: weights: expected 'COCO_WITH_VOC_LABELS_V1', 'DEFAULT' or \{ path \}, got "IMAGENET1K_V1"/,
  });
  await t.throwsAsync(seg.fcnResnet50({ weightsBackbone: 'COCO' as 'DEFAULT' }), {
    message: /weightsBackbone: expected 'IMAGENET1K_V1', 'IMAGENET1K_V2', 'DEFAULT' or \{ path \}/,
  });
  await t.throwsAsync(seg.fcnResnet50({ weights: { path: '/no/such/file.pth' } }), { message: /no such weights file/ });
  await t.throwsAsync(seg.lrasppMobilenetV3Large({ auxLoss: true } as object), {
    message: /LR-ASPP does not use an auxiliary loss/,
  });
  await t.throwsAsync(seg.fcnResnet50({ numClasses: 0 }), { message: /numClasses: expected an integer >= 1, got 0/ });
  await t.throwsAsync(seg.fcnResnet50({ numclasses: 3 } as object), { message: /unknown option numclasses/ });
  // The published weights' numClasses (21) and aux classifier are checked before any download.
  await t.throwsAsync(seg.deeplabv3Resnet50({ weights: 'DEFAULT', numClasses: 5 }), {
    message: /numClasses 5 disagrees with the weights COCO_WITH_VOC_LABELS_V1, which have numClasses 21/,
  });
  await t.throwsAsync(seg.fcnResnet50({ weights: 'COCO_WITH_VOC_LABELS_V1', auxLoss: false }), {
    message: /auxLoss false disagrees/,
  });
});
