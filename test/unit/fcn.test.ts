import path from 'node:path';
import test from 'ava';
import { bilinearKernel, createFcn, load, nn, predict, type Tensor, torch } from '../../src';
import { exactlyEqual, fixture, fixtures, maxAbsDiff, pick } from '../helpers';

const strided = path.join(fixtures, 'resnet18-strided.pth');

async function backbone(): Promise<nn.ResNet> {
  const resnet = nn.resnet18();
  resnet.loadStateDict(await load(strided));
  return resnet;
}

/** An FCN-16s / FCN-8s with the fixture's body and heads, in eval mode. */
async function skipNet(arch: 'fcn16s' | 'fcn8s'): Promise<nn.Module> {
  const f = await fixture('fcn-skip.safetensors');
  const net = createFcn({ arch, backbone: await backbone() });
  for (const [name, child] of net.namedChildren()) {
    if (name.startsWith('score')) {
      child.weight.copy_(pick(f, `${arch}.${name}.weight`));
      (child.bias as Tensor).copy_(pick(f, `${arch}.${name}.bias`));
    } else if (name.startsWith('upscore')) {
      (child.bias as Tensor).copy_(torch.zeros([21])); // the fixture's upsampling has no bias
    }
  }
  return net.eval();
}

test("createFcn('fcn32s') is the chapter's net with its state-dict names", (t) => {
  const net = createFcn();
  t.is(net.kind, 'Sequential');
  t.deepEqual(
    net.namedChildren().map(([n]) => n),
    ['0', '1', '2', '3', '4', '5', '6', '7', 'final_conv', 'transpose_conv'],
  );
  const keys = [...net.stateDict().keys()];
  t.deepEqual(keys.slice(-4), ['final_conv.weight', 'final_conv.bias', 'transpose_conv.weight', 'transpose_conv.bias']);
  t.is(maxAbsDiff(net.get('transpose_conv').weight, bilinearKernel(21, 21, 64)), 0);
  t.deepEqual(net.forward(torch.rand([1, 3, 320, 480])).shape, [1, 21, 320, 480]);
});

test("init 'xavier' fills the transposed convolution with Xavier-uniform values instead", (t) => {
  torch.manualSeed(3);
  const w = createFcn({ init: 'xavier' }).get('transpose_conv').weight;
  const bound = Math.sqrt(6 / (21 * 64 * 64 + 21 * 64 * 64));
  const largest = w.abs().max().item() as number;
  t.true(largest <= bound);
  t.true(largest > bound * 0.99);
  t.true(maxAbsDiff(w, bilinearKernel(21, 21, 64)) > 0.01);
});

test('FCN-16s and FCN-8s name their layers as Long et al. and start with zero skip scores', (t) => {
  const net16 = createFcn({ arch: 'fcn16s', numClasses: 5 });
  t.is(net16.kind, 'FCN16s');
  t.deepEqual(
    net16.namedChildren().map(([n]) => n),
    ['stem', 'layer2', 'layer3', 'layer4', 'score_fr', 'score_pool4', 'upscore2', 'upscore16'],
  );
  const net8 = createFcn({ arch: 'fcn8s' });
  t.deepEqual(
    net8.namedChildren().map(([n]) => n),
    [
      'stem',
      'layer2',
      'layer3',
      'layer4',
      'score_fr',
      'score_pool4',
      'score_pool3',
      'upscore2',
      'upscore_pool4',
      'upscore8',
    ],
  );
  t.is(net8.get('score_pool3').weight.abs().sum().item(), 0);
  t.is(maxAbsDiff(net8.get('upscore8').weight, bilinearKernel(21, 21, 16)), 0);
  t.true([...net8.stateDict().keys()].includes('stem.conv1.weight'));
  t.deepEqual(net8.forward(torch.rand([2, 3, 64, 96])).shape, [2, 21, 64, 96]);
  t.deepEqual(net16.forward(torch.rand([1, 3, 96, 64])).shape, [1, 5, 96, 64]);
});

test('FCN-16s and FCN-8s forwards equal PyTorch (eval mode)', async (t) => {
  const f = await fixture('fcn-skip.safetensors');
  for (const arch of ['fcn16s', 'fcn8s'] as const) {
    const net = await skipNet(arch);
    const diff = maxAbsDiff(await net.forwardAsync(pick(f, 'X')), pick(f, `${arch}.logits`));
    t.true(diff < 1e-4, `${arch}: max abs diff ${diff}`);
  }
});

test('skip architectures refuse sides that are not multiples of 32, naming the rule', (t) => {
  const net = createFcn({ arch: 'fcn8s' });
  t.throws(() => net.forward(torch.rand([1, 3, 70, 96])), {
    message: /FCN8s needs .* multiples of 32, got \[1, 3, 70, 96\]/,
  });
  t.throws(() => createFcn({ arch: 'fcn4s' as 'fcn8s' }), { message: /arch: expected one of fcn32s, fcn16s, fcn8s/ });
  t.throws(() => createFcn({ init: 'kaiming' as 'xavier' }), { message: /init: expected one of bilinear, xavier/ });
});

test('whole-image prediction by tiles equals PyTorch, odd sizes and sides under 32 included', async (t) => {
  const f = await fixture('fcn-skip.safetensors');
  const net = await skipNet('fcn8s');
  for (const key of ['whole', 'small']) {
    const X = pick(f, `${key}.X`);
    const labels = await predict(net, X, { mode: 'whole', tileSize: [64, 64] });
    const expected = pick(f, `${key}.labels`);
    t.deepEqual(labels.shape, expected.shape);
    const differing = labels.ne(expected).sum().item();
    t.is(differing, 0, `${key}: ${differing} pixels differ`);
  }
});

test('predict of uint8 pixels normalises them as the chapter does (natively) and equals PyTorch', async (t) => {
  const f = await fixture('fcn-skip.safetensors');
  const net = await skipNet('fcn8s');
  const labels = await predict(net, pick(f, 'pixels.u8'), { mode: 'whole', tileSize: [64, 96] });
  const expected = pick(f, 'pixels.labels');
  t.deepEqual(labels.shape, expected.shape);
  t.is(labels.ne(expected).sum().item(), 0);
});

test("predict: the chapter's top-left crop, whole images of any size, clear errors", async (t) => {
  const net = createFcn({ arch: 'fcn16s' });
  const image = torch.rand([3, 75, 101]).mul(255).to('uint8');
  const whole = await predict(net, image, { mode: 'whole', tileSize: [64, 64] });
  t.deepEqual(whole.shape, [75, 101]);
  t.is(whole.dtype, 'int64');
  const crop = await predict(net, image, { mode: 'crop', cropSize: [64, 96] });
  t.deepEqual(crop.shape, [64, 96]);
  // The crop is the top-left corner: predicting that corner alone gives the same labels.
  const corner = image.narrow(1, 0, 64).narrow(2, 0, 96).contiguous();
  t.is((await predict(net, corner, { mode: 'whole', tileSize: [64, 96] })).ne(crop).sum().item(), 0);
  await t.throwsAsync(predict(net, image, { mode: 'crop' }), {
    message: /image is 75x101, smaller than the 320x480 crop; the default mode 'whole' labels images of any size/,
  });
  await t.throwsAsync(async () => predict(net, image, { mode: 'crop', cropSize: [60, 90] }), {
    message: /cropSize: expected .* multiples of 32/,
  });
  await t.throwsAsync(async () => predict(net, torch.rand([75, 101])), { message: /image: expected uint8 pixels/ });
  // Whole images are bounded before anything is converted or run.
  await t.throwsAsync(predict(net, image, { maxPixels: 75 * 100 }), {
    message: /image is 75x101 \(7575 pixels\), more than maxPixels \(7500\)/,
  });
});

test.serial("predict takes the chapter FCN's labels from its sub-pixel scores: the argmax of its logits", async (t) => {
  t.teardown(() => {
    torch.backends.subpixelUpsampling = true;
  });
  const net = createFcn().eval();
  const x = torch.randn([2, 3, 64, 96]);
  const expected = torch.noGrad(() => net.forward(x)).argmax(1);
  // Unfused, predict runs the same convolutions as forward: only the labels' path differs.
  t.true(exactlyEqual(await predict(net, x, { fused: false }), expected));
  torch.backends.subpixelUpsampling = false; // libtorch's ConvTranspose2d, then the argmax of its output
  const general = await predict(net, x, { fused: false });
  torch.backends.subpixelUpsampling = true;
  t.true(general.ne(expected).sum().item() <= 2, 'the general kernel rounds otherwise: near-ties only');
  // Equal maxima give the first of them, a NaN ranks above every number (as at::argmax).
  const up = net.children().at(-1) as nn.ConvTranspose2d;
  up.weight.copy_(torch.zeros(up.weight.shape));
  const bias = up.bias as Tensor;
  // 0 1 2 3 0 1 2 3 ...: channel 3 is the first to reach the maximum
  bias.copy_(torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0]));
  t.is((await predict(net, x)).ne(3).sum().item(), 0);
  bias.copy_(torch.zeros([21]));
  t.is((await predict(net, x)).ne(0).sum().item(), 0);
  bias.copy_(torch.tensor([0, 1, 2, 3, 4, 5, 6, Number.NaN, 1, Number.NaN, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
  t.is((await predict(net, x)).ne(7).sum().item(), 0);
});

test('labels from sub-pixel scores at other strides equal the argmax of the output', async (t) => {
  // Strides that divide the argmax kernel's 1024-pixel blocks into whole rows, and one that does not.
  for (const s of [8, 12, 48]) {
    const down = new nn.Conv2d(3, 4, { kernelSize: s, stride: s });
    const up = new nn.ConvTranspose2d(4, 5, { kernelSize: 2 * s, stride: s, padding: s / 2 });
    const net = new nn.Sequential(down, up).eval();
    const x = torch.randn([2, 3, 96, 96]);
    const expected = torch.noGrad(() => net.forward(x)).argmax(1);
    t.true(exactlyEqual(await predict(net, x), expected), `stride ${s}`);
  }
});

test('predict names a model whose labels lose the image size', async (t) => {
  const net = new nn.Sequential(new nn.Conv2d(3, 21, { kernelSize: 3, stride: 2, padding: 1 })).eval();
  await t.throwsAsync(predict(net, torch.randn([1, 3, 64, 96])), {
    message: /the model turned a 64x96 image into labels \[1, 32, 48\]; an FCN must keep the image's height and width/,
  });
  const flat = new nn.Sequential(new nn.Conv2d(3, 21, { kernelSize: 3, padding: 1 }), new nn.Flatten()).eval();
  await t.throwsAsync(predict(flat, torch.randn([1, 3, 64, 96])), {
    message: /labels are the argmax over the classes of logits \[N, classes, H, W\], but Flatten gave \[1, 129024\]/,
  });
});
