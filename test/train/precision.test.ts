// Reduced precision. quantizeInt8: PyTorch's own int8 of the same ResNet-18 body (FX graph mode with the same
// configuration, test/fixtures/int8.safetensors) is the reference; the int8 FCN-32s is held to
// the float model's accuracy on the synthetic VOC split (the exact float path, which the
// PyTorch parity tests cover, is the reference there); a model whose float weights changed is
// refused, never run with stale weights; its QDQ ONNX export labels as it does in ONNX Runtime.
// bfloat16 (predict's precision, autocast) keeps the trained FCN's labels and mean IoU.
import fs, { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import * as ort from 'onnxruntime-node';
import {
  createFcn,
  evaluate,
  evaluateWholeImages,
  exportOnnx,
  Int8Model,
  load,
  nn,
  optim,
  predict,
  quantizeInt8,
  type Tensor,
  torch,
  train,
  voc,
} from '../../src';
import type { Example as VocExample } from '../../src/voc/dataset';
import { fixture, fixtures, maxAbsDiff, pick, syntheticVoc } from '../helpers';

const strided = path.join(fixtures, 'resnet18-strided.pth');

async function backbone(): Promise<nn.ResNet> {
  const resnet = nn.resnet18();
  resnet.loadStateDict(await load(strided));
  return resnet;
}

/**
 * The kernels that libtorch's 'x86' quantized engine runs on this CPU, as PyTorch picks them
 * (should_use_onednn_quant): oneDNN's where the CPU has AVX-512 VNNI, FBGEMM's elsewhere.
 * They round differently, so PyTorch's own output differs between the two CPUs too.
 */
function x86Kernels(): 'onednn' | 'fbgemm' {
  if (process.platform !== 'linux') return 'fbgemm'; // PyTorch picks oneDNN only on Linux
  const flags =
    readFileSync('/proc/cpuinfo', 'utf8')
      .match(/^flags\s*:(.*)$/m)?.[1]
      .split(' ') ?? [];
  return flags.includes('avx512_vnni') ? 'onednn' : 'fbgemm';
}

/** The batches of a [B, N, 3, H, W] tensor. */
function batches(stacked: Tensor): Tensor[] {
  return Array.from({ length: stacked.shape[0] }, (_, i) => stacked.narrow(0, i, 1).squeeze(0));
}

test("the int8 body equals PyTorch's int8 (FX, the same configuration and kernels) but for rounding steps PyTorch's own runs differ by", async (t) => {
  const f = await fixture('int8.safetensors');
  const body = new nn.Sequential(...(await backbone()).children().slice(0, -2));
  const q = await quantizeInt8(body, batches(pick(f, 'calibration')));
  t.true(q instanceof Int8Model);
  t.is(q.kind, 'Int8Model');
  const out = torch.noGrad(() => q.forward(pick(f, 'input')));
  const kernels = x86Kernels();
  const expected = pick(f, `int8_${kernels}`);
  const full = pick(f, 'float32');
  // The same int8 computation, as close as PyTorch's own runs are to each other: its
  // calibration's float convolutions round differently in another memory layout (channels-last,
  // as ours run), so an activation's range can move by an ulp and a value on a rounding
  // boundary by one step (1/127 of the output's range): PyTorch's channels-last run differs from
  // this contiguous one in 1 of 6,144 values. The other kernels differ in ~19% of them, by ~6 steps.
  const scale = expected.abs().max().item() as number;
  const off = out
    .sub(expected)
    .abs()
    .gt(1e-5 * scale)
    .to('float32')
    .mean()
    .item() as number;
  const worst = maxAbsDiff(out, expected) / scale;
  t.log(
    `int8 vs PyTorch int8 (${kernels}): ${(off * 100).toFixed(3)}% of values differ, by ${worst} of the range at most`,
  );
  t.true(off <= 0.001 && worst <= 0.01, 'at most one step, at one value in a thousand');
  // and it is int8: not the float model.
  t.true(maxAbsDiff(out, full) > 0.01 * scale, 'the int8 output differs from the float one');
});

/** An FCN-32s that has learnt something: 10 epochs on the synthetic split (~45 s on 2 cores), trained once per file. */
let trained: Promise<{ net: nn.Sequential; val: VocExample[]; calibration: Tensor[] }> | undefined;
function trainedFcn() {
  trained ??= (async () => {
    const root = await syntheticVoc(path.join(os.tmpdir(), 'fcn-torch-int8-voc'), {
      count: 48,
      height: 192,
      width: 256,
    });
    torch.manualSeed(0);
    const net = createFcn();
    const { trainIter, testIter } = await voc.loadDataVoc(8, [160, 224], { root, log: null });
    const optimizer = new optim.SGD(net.parameters(), { lr: 0.005, momentum: 0.9, weightDecay: 1e-3 });
    await train(net, trainIter, testIter, { epochs: 10, optimizer, log: null });
    const calibration = trainIter.dataset.examples
      .slice(0, 16)
      .map(({ image }) => image.permute([2, 0, 1]).contiguous());
    return { net, val: testIter.dataset.examples, calibration };
  })();
  return trained;
}

const points = (v: number) => (v * 100).toFixed(2);

test('an int8 FCN-32s keeps the accuracy of the float one on the synthetic VOC val split, through predict', async (t) => {
  const { net, val, calibration } = await trainedFcn();
  const q = await quantizeInt8(net, calibration);
  const float32 = await evaluateWholeImages(net, val);
  const int8 = await evaluateWholeImages(q, val);
  t.log(
    `float32: pixel accuracy ${points(float32.pixelAccuracy)}, mIoU ${points(float32.meanIoU)}; ` +
      `int8: ${points(int8.pixelAccuracy)}, ${points(int8.meanIoU)}`,
  );
  t.true(float32.pixelAccuracy > 0.85 && float32.meanIoU > 0.2, 'the float model has learnt several classes');
  t.true(Math.abs(int8.pixelAccuracy - float32.pixelAccuracy) <= 0.005, 'pixel accuracy within 0.5 points');
  t.true(Math.abs(int8.meanIoU - float32.meanIoU) <= 0.01, 'mean IoU within 1 point');
  const image = val[0].image.permute([2, 0, 1]).contiguous();
  const same = (await predict(q, image))
    .eq(await predict(net, image))
    .to('float32')
    .mean()
    .item() as number;
  t.log(`int8 and float32 labels agree on ${points(same)}% of the first val image's pixels`);
  t.true(same > 0.95, 'int8 and float32 labels mostly agree');

  // Exported as ONNX's QDQ form, ONNX Runtime labels the val images as our int8 model does.
  const file = path.join(os.tmpdir(), `fcn-torch-int8-${process.pid}.onnx`);
  await exportOnnx(q, file, { labels: true, preprocess: true });
  const session = await ort.InferenceSession.create(file);
  let agree = 0;
  let pixels = 0;
  for (const { image: hwc } of val) {
    const pixelsChw = hwc.permute([2, 0, 1]).contiguous();
    const ours = (await predict(q, pixelsChw)).toTypedArray() as BigInt64Array;
    const input = pixelsChw.unsqueeze(0);
    const { labels } = await session.run({
      image: new ort.Tensor('uint8', input.toTypedArray() as Uint8Array, input.shape),
    });
    const theirs = labels.data as BigInt64Array;
    for (let i = 0; i < ours.length; i++) if (ours[i] === theirs[i]) agree += 1;
    pixels += ours.length;
  }
  await session.release();
  fs.rmSync(file);
  t.log(`ONNX Runtime's labels of the int8 QDQ export agree with ours on ${points(agree / pixels)}% of the val pixels`);
  t.true(agree / pixels >= 0.99, 'ONNX Runtime runs the same int8 model');
});

test('bfloat16 labels of the trained FCN-32s agree with float32 on >= 99.5% of the val pixels, mIoU within 0.5 points', async (t) => {
  const { net, val } = await trainedFcn();
  const float32 = await evaluateWholeImages(net, val);
  // Emulated where this CPU has no bfloat16 units: the numbers of a CPU with them.
  torch.backends.emulatedBfloat16 = true;
  try {
    let agree = 0;
    let pixels = 0;
    for (const { image } of val) {
      const chw = image.permute([2, 0, 1]).contiguous();
      const full = (await predict(net, chw, { precision: 'float32' })).toTypedArray() as BigInt64Array;
      const mixed = (await predict(net, chw, { precision: 'bfloat16' })).toTypedArray() as BigInt64Array;
      for (let i = 0; i < full.length; i++) if (full[i] === mixed[i]) agree += 1;
      pixels += full.length;
    }
    torch.setAutocast('cpu', 'bfloat16');
    t.is(torch.autocastRuns('cpu'), 'bfloat16');
    const bfloat16 = await evaluateWholeImages(net, val).finally(() => torch.setAutocast('cpu', null));
    t.log(
      `bfloat16 labels agree with float32 on ${points(agree / pixels)}% of ${pixels} val pixels; ` +
        `mIoU ${points(float32.meanIoU)} -> ${points(bfloat16.meanIoU)}`,
    );
    t.true(agree / pixels >= 0.995, 'labels agree on >= 99.5% of the pixels');
    t.true(Math.abs(bfloat16.meanIoU - float32.meanIoU) <= 0.005, 'mean IoU within 0.5 points');
  } finally {
    torch.backends.emulatedBfloat16 = false;
  }
});

test('an int8 model refuses to run once the float model changes, and runs after the float model predicts', async (t) => {
  const f = await fixture('int8.safetensors');
  const body = new nn.Sequential(...(await backbone()).children().slice(0, -2));
  const x = pick(f, 'input');
  const q = await quantizeInt8(body, batches(pick(f, 'calibration')));
  const before = torch.noGrad(() => q.forward(x));
  // The float model's own forward lays its weights out channels-last: not a change.
  torch.noGrad(() => body.forward(x));
  t.is(
    maxAbsDiff(
      torch.noGrad(() => q.forward(x)),
      before,
    ),
    0,
  );
  body.loadStateDict(body.stateDict());
  t.throws(() => q.forward(x), { message: /float model changed after it was quantized.*quantize it again/ });
  const again = await quantizeInt8(body, batches(pick(f, 'calibration')));
  t.is(
    maxAbsDiff(
      torch.noGrad(() => again.forward(x)),
      before,
    ),
    0,
  );
  // An SGD step in eval mode: the weights move, the BatchNorm statistics do not.
  const sgd = new optim.SGD(body.parameters(), { lr: 0.1 });
  body.forward(x).mean().backward();
  sgd.step();
  await t.throwsAsync(predict(again, x), { message: /float model changed after it was quantized/ });
});

test("an int8 model refuses changes to the float model's later layers, its dtype and its children", async (t) => {
  const net = createFcn({ backbone: await backbone() });
  const x = torch.randn([1, 3, 64, 96]);
  const calibrated = () => quantizeInt8(net, [x]);
  let q = await calibrated();
  net.get('final_conv').weight.copy_(torch.zeros([21, 512, 1, 1]));
  t.throws(() => q.forward(x), { message: /float model changed after it was quantized/ });
  q = await calibrated();
  net.to('float64'); // said as the float model's change, not as the input's dtype
  t.throws(() => q.forward(x), { message: /float model changed after it was quantized/ });
  await t.throwsAsync(predict(q, x), { message: /float model changed after it was quantized/ });
  net.to('float32');
  q = await calibrated();
  net.addModule('extra', new nn.ReLU());
  t.throws(() => q.forward(x), { message: /float model changed after it was quantized/ });
  // ... and changes while it is calibrated.
  const trainedMeanwhile = async function* () {
    yield x;
    net.get('final_conv').weight.copy_(torch.ones([21, 512, 1, 1]));
    yield x;
  };
  const body = new nn.Sequential(...net.children().slice(0, 8), net.get('final_conv'));
  await t.throwsAsync(quantizeInt8(body, trainedMeanwhile()), { message: /float model changed during calibration/ });
});

test('an int8 model is evaluated like the float one, stays on the CPU in float32 and is not saved', async (t) => {
  const net = createFcn({ backbone: await backbone() }).eval();
  const X = torch.randn([2, 3, 64, 96]);
  const Y = torch.rand([2, 64, 96]).mul(21).to('int64');
  const q = await quantizeInt8(net, [X]);
  const batchesOf = async function* () {
    yield { X: X.clone(), Y: Y.clone() }; // evaluate disposes its batches
  };
  const float32 = await evaluate(net, batchesOf());
  const int8 = await evaluate(q, batchesOf());
  t.true(Number.isFinite(int8.loss) && Math.abs(int8.loss - float32.loss) < 0.1 * float32.loss, `${int8.loss}`);
  t.notThrows(() => q.to('cpu'));
  t.throws(() => q.to('float64'), { message: /cannot be copied or moved off the CPU or float32/ });
  t.throws(() => q.stateDict(), { message: /not saved; save the float model/ });
  t.throws(() => q.loadStateDict(new Map()), { message: /load the weights into the float model/ });
});

test('quantizeInt8 refuses what it cannot quantize, with errors that say what', async (t) => {
  const resnet = await backbone();
  await t.throwsAsync(quantizeInt8(createFcn({ arch: 'fcn8s', backbone: resnet }), []), {
    message: /must be a Sequential whose first layers are a ResNet body.*got FCN8s/,
  });
  await t.throwsAsync(quantizeInt8(new nn.Sequential(new nn.Conv2d(3, 8, { kernelSize: 3 })), []), {
    message: /does not start with a ResNet body.*Conv2d/,
  });
  const body = new nn.Sequential(...resnet.children().slice(0, -2));
  await t.throwsAsync(quantizeInt8(body, []), { message: /no calibration batch/ });
  await t.throwsAsync(quantizeInt8(body, 5 as unknown as Tensor[]), { instanceOf: TypeError });
  await t.throwsAsync(quantizeInt8(body, [torch.zeros([2, 3])]), { message: /\[3, H, W\] or \[N, 3, H, W\]/ });
  const q = await quantizeInt8(body, [torch.randn([1, 3, 64, 64])]);
  t.throws(() => q.forward(torch.randn([1, 3, 64, 64]).to('float64')), { message: /float32 images/ });
  t.throws(() => q.to('float64'), { message: /cannot be copied or moved/ });
});
