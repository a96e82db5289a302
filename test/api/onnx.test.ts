/**
 * ONNX export: every export runs in ONNX Runtime (onnxruntime-node, prebuilt) and gives what
 * our own forward gives, at two input sizes; kinds without an export and bad options are
 * clear errors; the file says what it holds (names, shapes, metadata).
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { createFcn, exportOnnx, models, nn, normalizeImage, saveCheckpoint, type Tensor, torch } from '../../src';
import type { SegmentationModel } from '../../src/models/segmentation';
import type { Module } from '../../src/nn/module';
import { cli, loopTurnsWhile, runNode, scratchDir } from '../helpers';

const tmp = scratchDir('fcn-torch-onnx-');

/** ONNX Runtime's first output for input (float32 or uint8 [N, 3, H, W]). */
async function runOrt(file: string, input: Tensor): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(file);
  try {
    const data = input.toTypedArray() as Float32Array | Uint8Array;
    const feeds = {
      [session.inputNames[0]]: new ort.Tensor(input.dtype === 'uint8' ? 'uint8' : 'float32', data, input.shape),
    };
    const results = await session.run(feeds);
    return results[session.outputNames[0]];
  } finally {
    await session.release();
  }
}

/** max |ort - ours| / max |ours|. */
function relativeError(ours: Tensor, theirs: ort.Tensor): number {
  const a = ours.toTypedArray() as Float32Array;
  const b = theirs.data as Float32Array;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return diff / scale;
}

/** Exports model and checks ONNX Runtime against model.forward at each input shape. */
async function checkExport(
  t: import('ava').ExecutionContext,
  model: Module,
  name: string,
  shapes: number[][],
  opset?: number,
): Promise<void> {
  model.eval();
  const file = path.join(tmp, `${name}.onnx`);
  await exportOnnx(model, file, opset === undefined ? {} : { opset });
  for (const shape of shapes) {
    const x = torch.randn(shape);
    const ours = model.forward(x);
    const theirs = await runOrt(file, x);
    t.deepEqual(theirs.dims, ours.shape, `${name} at ${shape}`);
    const error = relativeError(ours, theirs);
    t.true(error <= 1e-4, `${name} at [${shape}]: relative error ${error}`);
  }
}

/** Random running statistics and affine weights, so that BatchNorm does something. */
function randomiseBatchNorms(model: Module): Module {
  for (const [key, value] of model.stateDict()) {
    if (key.endsWith('running_var')) value.copy_(torch.rand(value.shape).add(0.5));
    else if (key.endsWith('running_mean') || (key.endsWith('bias') && key.includes('bn')))
      value.copy_(torch.randn(value.shape).mul(0.1));
  }
  return model;
}

test('every layer kind built from options exports; ONNX Runtime equals our forward at two sizes (opsets 13, 17 and 21)', async (t) => {
  torch.manualSeed(1);
  const convolutions = new nn.Sequential(
    new nn.Conv2d(3, 8, { kernelSize: 3, padding: 1 }),
    new nn.BatchNorm2d(8),
    new nn.ReLU(),
    new nn.Conv2d(8, 8, { kernelSize: 3, padding: 'same', dilation: 2, groups: 2, paddingMode: 'reflect' }),
    new nn.Hardswish(),
    new nn.Conv2d(8, 8, { kernelSize: [3, 4], padding: 'same', paddingMode: 'replicate', bias: false }),
    new nn.Hardsigmoid(),
    new nn.Dropout(0.3),
    new nn.MaxPool2d({ kernelSize: 3, stride: 2, padding: 1 }),
    new nn.Conv2d(8, 6, { kernelSize: 1, padding: 'valid' }),
    new nn.Sigmoid(),
    new nn.ConvTranspose2d(6, 4, { kernelSize: 4, stride: 2, padding: 1, outputPadding: 1 }),
  );
  randomiseBatchNorms(convolutions);
  await checkExport(t, convolutions, 'layers-17', [
    [1, 3, 20, 24],
    [2, 3, 33, 17],
  ]);
  await checkExport(t, convolutions, 'layers-13', [[1, 3, 16, 16]], 13);
  // Circular padding is Pad's 'wrap', from opset 19; opset 21 files are IR version 10.
  const circular = new nn.Sequential(new nn.Conv2d(3, 4, { kernelSize: 3, padding: 1, paddingMode: 'circular' }));
  await checkExport(
    t,
    circular,
    'circular-21',
    [
      [1, 3, 12, 10],
      [2, 3, 7, 9],
    ],
    21,
  );
  t.is(Number(onnx.ModelProto.decode(fs.readFileSync(path.join(tmp, 'circular-21.onnx'))).irVersion), 10);
  await t.throwsAsync(exportOnnx(circular, path.join(tmp, 'circular-17.onnx')), {
    message: "Conv2d with paddingMode 'circular' needs ONNX opset 19 or later (Pad's 'wrap')",
  });
  const classifier = new nn.Sequential(
    new nn.Conv2d(3, 5, { kernelSize: 3, stride: 2 }),
    new nn.AdaptiveAvgPool2d(1),
    new nn.Flatten(),
    new nn.Linear(5, 7),
  );
  await checkExport(t, classifier, 'classifier', [
    [1, 3, 9, 9],
    [3, 3, 32, 20],
  ]);
});

test("nn.resnet18, nn.resnet50 (Bottlenecks) and the chapter's FCN-32s/16s/8s export; ONNX Runtime equals our forward at two sizes", async (t) => {
  torch.manualSeed(2);
  await checkExport(t, randomiseBatchNorms(nn.resnet18()), 'resnet18', [
    [1, 3, 64, 64],
    [2, 3, 96, 128],
  ]);
  await checkExport(t, randomiseBatchNorms(nn.resnet50()), 'resnet50', [
    [1, 3, 32, 32],
    [2, 3, 64, 48],
  ]);
  for (const arch of ['fcn32s', 'fcn16s', 'fcn8s'] as const) {
    await checkExport(t, randomiseBatchNorms(createFcn({ arch, numClasses: 5 })), arch, [
      [1, 3, 64, 96],
      [2, 3, 160, 128],
    ]);
  }
});

test("MobileNetV3 and torchvision's segmentation models export ('out'); ONNX Runtime equals our forward at two sizes", async (t) => {
  torch.manualSeed(4);
  await checkExport(t, randomiseBatchNorms(nn.mobilenetV3Large({ numClasses: 10 })), 'mobilenet', [
    [1, 3, 64, 64],
    [2, 3, 96, 80],
  ]);
  const builders = {
    fcnResnet50: models.segmentation.fcnResnet50,
    deeplabv3Resnet50: models.segmentation.deeplabv3Resnet50,
    deeplabv3MobilenetV3Large: models.segmentation.deeplabv3MobilenetV3Large,
    lrasppMobilenetV3Large: models.segmentation.lrasppMobilenetV3Large,
  };
  for (const [name, build] of Object.entries(builders)) {
    const net = randomiseBatchNorms(await build({ numClasses: 3 }));
    await checkExport(t, net, name, [
      [1, 3, 64, 64],
      [2, 3, 72, 88],
    ]);
  }
});

test("torchvision's 'aux' output: the ResNet-101 models and DeepLabV3-MobileNetV3 built with auxLoss export out and aux", async (t) => {
  torch.manualSeed(5);
  const builders = {
    fcnResnet101: models.segmentation.fcnResnet101,
    deeplabv3Resnet101: models.segmentation.deeplabv3Resnet101,
    deeplabv3MobilenetV3Large: models.segmentation.deeplabv3MobilenetV3Large,
  };
  for (const [name, build] of Object.entries(builders)) {
    const net = randomiseBatchNorms(await build({ numClasses: 3, auxLoss: true })).eval() as SegmentationModel;
    const file = path.join(tmp, `${name}-aux.onnx`);
    const written = await exportOnnx(net, file, { aux: true });
    t.like(written, { output: 'logits', auxOutput: 'aux_logits' });
    const session = await ort.InferenceSession.create(file);
    t.deepEqual(session.outputNames, ['logits', 'aux_logits']);
    for (const shape of [
      [1, 3, 64, 64],
      [2, 3, 72, 88],
    ]) {
      const x = torch.randn(shape);
      const ours = net.forwardOutputs(x);
      const theirs = await session.run({ input: new ort.Tensor('float32', x.toTypedArray() as Float32Array, shape) });
      for (const [output, tensor] of [
        ['logits', ours.out],
        ['aux_logits', ours.aux as Tensor],
      ] as const) {
        t.deepEqual(theirs[output].dims, tensor.shape);
        const error = relativeError(tensor, theirs[output]);
        t.true(error <= 1e-4, `${name} ${output} at [${shape}]: relative error ${error}`);
      }
    }
    await session.release();
  }
  const labelled = await exportOnnx(
    await models.segmentation.fcnResnet50({ numClasses: 2, auxLoss: true }),
    path.join(tmp, 'aux-labels.onnx'),
    { aux: true, labels: true },
  );
  t.like(labelled, { output: 'labels', auxOutput: 'aux_labels' });
  await t.throwsAsync(
    exportOnnx(await models.segmentation.fcnResnet50({ numClasses: 2 }), path.join(tmp, 'no-aux.onnx'), { aux: true }),
    {
      message: "aux: FCN has no auxiliary classifier (torchvision's models have one when built with aux)",
    },
  );
  await t.throwsAsync(exportOnnx(createFcn(), path.join(tmp, 'no-aux.onnx'), { aux: true }), {
    message: /^aux: Sequential has no auxiliary classifier/,
  });
  t.false(fs.existsSync(path.join(tmp, 'no-aux.onnx')));
});

test('labels and preprocessing inside the graph: uint8 pixels in, the argmax of our logits out', async (t) => {
  torch.manualSeed(3);
  const net = randomiseBatchNorms(createFcn({ numClasses: 4 })).eval();
  const file = path.join(tmp, 'fcn-labels.onnx');
  const result = await exportOnnx(net, file, {
    labels: true,
    preprocess: true,
    classes: ['background', 'a', 'b', 'c'],
    palette: [
      [0, 0, 0],
      [128, 0, 0],
      [0, 128, 0],
      [128, 128, 0],
    ],
    metadata: { source: 'test' },
  });
  t.like(result, { input: 'image', output: 'labels' });
  for (const shape of [
    [1, 3, 64, 64],
    [2, 3, 96, 160],
  ]) {
    const pixels = torch.rand(shape).mul(255).to('uint8');
    const ours = net.forward(normalizeImage(pixels)).argmax(1);
    const theirs = await runOrt(file, pixels);
    t.is(theirs.type, 'int64');
    t.deepEqual(theirs.dims, ours.shape);
    const a = ours.toTypedArray() as BigInt64Array;
    const b = theirs.data as BigInt64Array;
    let same = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
    t.true(same / a.length >= 0.999, `labels equal on ${((100 * same) / a.length).toFixed(2)} % of the pixels`);
  }
  const model = onnx.ModelProto.decode(fs.readFileSync(file));
  const props = Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value]));
  t.deepEqual(JSON.parse(props.classes), ['background', 'a', 'b', 'c']);
  t.is(props.source, 'test');
  t.deepEqual(JSON.parse(props.mean), [0.485, 0.456, 0.406]);
  t.is(model.opsetImport[0].version?.toString(), '17');
  const input = model.graph?.input?.[0];
  t.is(input?.type?.tensorType?.elemType, onnx.TensorProto.DataType.UINT8);
  t.deepEqual(
    input?.type?.tensorType?.shape?.dim?.map((d) => d.dimParam || Number(d.dimValue)),
    ['batch', 3, 'height', 'width'],
  );
  t.deepEqual(
    model.graph?.output?.[0].type?.tensorType?.shape?.dim?.map((d) => d.dimParam || Number(d.dimValue)),
    ['batch', 'height', 'width'],
  );
  // Weights keep their state-dict names.
  const names = new Set(model.graph?.initializer?.map((i) => i.name));
  for (const key of net.stateDict().keys()) {
    if (!key.endsWith('num_batches_tracked')) t.true(names.has(key), key);
  }
});

test('the graph and its weights are written on the torch thread: the event loop turns while it runs', async (t) => {
  const { value, turns } = await loopTurnsWhile(exportOnnx(nn.resnet18(), path.join(tmp, 'async.onnx')));
  t.is(value.output, 'logits');
  t.true(turns > 0, `the event loop turned ${turns} times`);
});

test('a fixed input shape is written as such and runs', async (t) => {
  const net = new nn.Sequential(new nn.Conv2d(3, 2, { kernelSize: 3, padding: 1 })).eval();
  const file = path.join(tmp, 'static.onnx');
  await exportOnnx(net, file, { dynamic: false, inputShape: [2, 3, 8, 12] });
  const model = onnx.ModelProto.decode(fs.readFileSync(file));
  t.deepEqual(
    model.graph?.input?.[0].type?.tensorType?.shape?.dim?.map((d) => Number(d.dimValue)),
    [2, 3, 8, 12],
  );
  const x = torch.randn([2, 3, 8, 12]);
  t.true(relativeError(net.forward(x), await runOrt(file, x)) <= 1e-4);
  await t.throwsAsync(runOrt(file, torch.randn([1, 3, 8, 12])), { message: /dimension|Got invalid dimensions/i });
});

test('a kind without an export, and bad options, are clear errors that write nothing', async (t) => {
  const file = path.join(tmp, 'refused.onnx');
  // ASPP's branches: a ModuleList, which holds modules without running them.
  const deeplab = await models.segmentation.deeplabv3MobilenetV3Large({ numClasses: 2 });
  const branches = deeplab.get('classifier').get(0).get('convs');
  await t.throwsAsync(exportOnnx(branches, file), {
    message: 'layer kind ModuleList (the model itself) has no ONNX export',
  });
  const inner = new nn.Sequential(new nn.ReLU(), new nn.Sequential(new nn.AdaptiveAvgPool2d([2, 3])));
  await t.throwsAsync(exportOnnx(inner, file), {
    message: /AdaptiveAvgPool2d exports to ONNX with output size 1 \(GlobalAveragePool\) only/,
  });
  const nested = new nn.Sequential(new nn.ReLU());
  nested.addModule('branches', branches);
  await t.throwsAsync(exportOnnx(nested, file), { message: "layer kind ModuleList ('branches') has no ONNX export" });
  await t.throwsAsync(exportOnnx(new nn.Sequential(new nn.Conv2d(8, 2, { kernelSize: 1 })), file), {
    message: /^the model must take images \[N, 3, H, W\]; on \[1, 3, 64, 64\]: /,
  });
  const net = new nn.Sequential(new nn.ReLU());
  await t.throwsAsync(exportOnnx(net, file, { opset: 12 }), {
    message: 'opset: expected an integer in [13, 21], got 12',
  });
  await t.throwsAsync(exportOnnx(net, file, { dynamic: false }), {
    message: /inputShape: required when dynamic is false/,
  });
  await t.throwsAsync(exportOnnx(net, file, { dynamic: false, inputShape: [1, 4, 8, 8] }), {
    message: /expected 3 channels/,
  });
  await t.throwsAsync(exportOnnx(net, path.join(tmp, 'no-such-folder', 'x.onnx')), {
    message: /cannot write '.*no-such-folder.*x\.onnx'/,
  });
  t.deepEqual(
    fs.readdirSync(tmp).filter((f) => f.startsWith('refused.onnx')),
    [],
  );
});

test('fcn export writes a checkpoint as ONNX with its classes; a missing model is a one-line error', async (t) => {
  const checkpoint = path.join(tmp, 'model.safetensors');
  const net = createFcn({ numClasses: 21 });
  await saveCheckpoint(checkpoint, { model: net, epoch: 1, history: [], config: {} });
  const out = path.join(tmp, 'cli.onnx');
  const r = await runNode([cli, 'export', '--checkpoint', checkpoint, '--out', out, '--labels', '--preprocess'], {
    cwd: tmp,
  });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /cli\.onnx: .* MiB, opset 17, \d+ nodes, input 'image', output 'labels'/);
  const model = onnx.ModelProto.decode(fs.readFileSync(out));
  const props = Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value]));
  t.is(JSON.parse(props.classes)[15], 'person');
  const pixels = torch.rand([1, 3, 64, 64]).mul(255).to('uint8');
  t.deepEqual((await runOrt(out, pixels)).dims, [1, 64, 64]);
  const bad = await runNode([cli, 'export', '--out', out], { cwd: tmp });
  t.is(bad.code, 1);
  t.is(bad.stderr.trim(), 'fcn export: give --checkpoint FILE (written by fcn train) or --model NAME');
  const badOpset = await runNode([cli, 'export', '--checkpoint', checkpoint, '--out', out, '--opset', '9'], {
    cwd: tmp,
  });
  t.not(badOpset.code, 0);
  t.regex(badOpset.stderr, /--opset/);
  const batchAlone = await runNode([cli, 'export', '--checkpoint', checkpoint, '--out', out, '--batch', '4'], {
    cwd: tmp,
  });
  t.is(batchAlone.code, 1);
  t.is(batchAlone.stderr.trim(), 'fcn export: --batch needs --static HxW: without it the file takes any batch size');
  const noAux = await runNode([cli, 'export', '--checkpoint', checkpoint, '--out', out, '--aux'], { cwd: tmp });
  t.is(noAux.code, 1);
  t.regex(noAux.stderr, /^fcn export: aux: Sequential has no auxiliary classifier/);
});
