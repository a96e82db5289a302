/**
 * ONNX export: every export runs in ONNX Runtime (onnxruntime-node, prebuilt) and gives what
 * our own forward gives, at two input sizes; kinds without an export and bad options are
 * clear errors; the file says what it holds (names, shapes, metadata).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import {
  createFcn,
  exportOnnx,
  models,
  nn,
  normalizeImage,
  quantizeInt8,
  saveCheckpoint,
  type Tensor,
  torch,
} from '../src';
import type { Module } from '../src/nn/module';
import { cli, runNode } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fcn-torch-onnx-'));

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

test('every layer kind built from options exports; ONNX Runtime equals our forward at two sizes (opsets 13 and 17)', async (t) => {
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
  const int8 = await quantizeInt8(createFcn({ numClasses: 3 }).eval(), [torch.rand([1, 3, 64, 64])]);
  await t.throwsAsync(exportOnnx(int8, file), {
    message: 'layer kind Int8Model (the model itself) has no ONNX export',
  });
  const inner = new nn.Sequential(new nn.ReLU(), new nn.Sequential(new nn.AdaptiveAvgPool2d([2, 3])));
  await t.throwsAsync(exportOnnx(inner, file), {
    message: /AdaptiveAvgPool2d exports to ONNX with output size 1 \(GlobalAveragePool\) only/,
  });
  const nested = new nn.Sequential(new nn.ReLU());
  nested.addModule('quantized', int8);
  await t.throwsAsync(exportOnnx(nested, file), { message: "layer kind Int8Model ('quantized') has no ONNX export" });
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
    fs.readdirSync(tmp).filter((f) => f.startsWith('refused.onnx') || f.startsWith('x.onnx')),
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
});
