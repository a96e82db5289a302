// torch.backends.fusedInference: in eval mode without gradients, Conv2d + BatchNorm2d (+ ReLU,
// + residual) runs as one folded convolution. These tests hold it to the unfused model (the
// switch off, which the PyTorch parity tests cover) within 1e-4 relative, in both memory
// formats, and check that the cached folded weights follow every change of the weights.
// Serial: the switches are process-wide.
import test from 'ava';
import { createFcn, nn, optim, predict, type Tensor, torch } from '../../src';
import { exactlyEqual, maxAbsDiff } from '../helpers';

type Net = nn.Module;

/** max |a - b| / max |b|. */
function relativeDiff(a: Tensor, b: Tensor): number {
  return maxAbsDiff(a, b) / (b.abs().max().item() as number);
}

/** fn's result with the fused path switched on and off (the default). */
function bothWays<T>(fn: () => T): { fused: T; unfused: T } {
  torch.backends.fusedInference = true;
  try {
    return {
      fused: fn(),
      unfused: (() => {
        torch.backends.fusedInference = false;
        return fn();
      })(),
    };
  } finally {
    torch.backends.fusedInference = false;
  }
}

/** A seeded model whose BatchNorms have moved off the identity: a few train-mode forwards. */
function trainedStats(make: () => Net, seed: number, size: [number, number]): Net {
  torch.manualSeed(seed);
  const net = make();
  net.train();
  torch.noGrad(() => {
    for (let i = 0; i < 3; i++)
      net.forward(
        torch
          .randn([2, 3, ...size])
          .mul(2)
          .add(0.5),
      );
  });
  return net.eval();
}

function expectFusedEqualsUnfused(t: import('ava').ExecutionContext, net: Net, x: Tensor, what: string) {
  const calls = torch.backends.fusedConvolutionCalls();
  const { fused, unfused } = bothWays(() => torch.noGrad(() => net.forward(x)));
  const ran = torch.backends.fusedConvolutionCalls() - calls;
  // oneDNN's fused convolutions for channels-last inputs, folded at::conv2d for contiguous ones.
  t.true(torch.backends.channelsLast ? ran > 0 : ran === 0, `${what}: ${ran} oneDNN fused convolutions`);
  const diff = relativeDiff(fused, unfused);
  t.true(diff < 1e-4, `${what}: fused differs from unfused by ${diff} relative`);
  // Folding rounds differently: equal to the last bit would mean the fused path never ran.
  t.true(diff > 0, `${what}: the fused path was taken`);
  return fused;
}

const MODELS: [string, () => Net, [number, number]][] = [
  ['fcn32s', () => createFcn({ arch: 'fcn32s' }), [64, 96]],
  ['fcn16s', () => createFcn({ arch: 'fcn16s' }), [64, 96]],
  ['fcn8s', () => createFcn({ arch: 'fcn8s' }), [64, 96]],
  ['resnet18', () => nn.resnet18(), [64, 64]],
  ['resnet50', () => nn.resnet50({ numClasses: 10 }), [64, 64]],
];

for (const channelsLast of [true, false]) {
  const format = channelsLast ? 'channels-last' : 'contiguous';
  for (const [name, make, size] of MODELS) {
    test.serial(`${name} (${format}): fused noGrad forward equals the unfused one and follows new weights`, (t) => {
      torch.backends.channelsLast = channelsLast;
      try {
        const net = trainedStats(make, 1, size);
        const x = torch.randn([2, 3, ...size]);
        const first = expectFusedEqualsUnfused(t, net, x, 'trained stats');
        // Weights kept in oneDNN's layout are for one input size: another size, then the first.
        expectFusedEqualsUnfused(t, net, torch.randn([1, 3, size[0] + 32, size[1]]), 'another input size');
        t.true(exactlyEqual(bothWays(() => torch.noGrad(() => net.forward(x))).fused, first), 'the first size again');

        // Train-mode forwards move only the running statistics: the folded weights follow.
        net.train();
        torch.noGrad(() => net.forward(torch.randn([2, 3, ...size]).mul(3)));
        net.eval();
        const before = expectFusedEqualsUnfused(t, net, x, 'after more running-stat updates');
        t.true(relativeDiff(before, first) > 1e-3, 'the running statistics changed the output');

        // A step after a backward in eval mode: no training forward drops the folded weights,
        // the parameters' versions tell them.
        const evalSgd = new optim.SGD(net.parameters(), { lr: 0.01 });
        net.forward(x).pow(2).mean().backward();
        evalSgd.step();
        const evalStepped = expectFusedEqualsUnfused(t, net, x, 'after an SGD step in eval mode');
        t.true(relativeDiff(evalStepped, before) > 1e-4, 'the eval-mode step changed the output');

        // An SGD step changes every weight in place: the folded weights must follow.
        net.zeroGrad();
        net.train();
        const sgd = new optim.SGD(net.parameters(), { lr: 0.1 });
        net.forward(x).pow(2).mean().backward();
        sgd.step();
        net.eval();
        const stepped = expectFusedEqualsUnfused(t, net, x, 'after an SGD step');
        t.true(relativeDiff(stepped, evalStepped) > 1e-3, 'the step changed the output');

        // Other weights loaded by name: the fused output is the other model's.
        const other = trainedStats(make, 2, size);
        net.loadStateDict(other.stateDict());
        const loaded = expectFusedEqualsUnfused(t, net, x, 'after loadStateDict');
        const expected = bothWays(() => torch.noGrad(() => other.forward(x))).unfused;
        t.true(relativeDiff(loaded, expected) < 1e-4);
      } finally {
        torch.backends.channelsLast = true;
      }
    });
  }

  test.serial(`fcn32s (${format}): predict's labels are the same fused and unfused`, async (t) => {
    torch.backends.channelsLast = channelsLast;
    try {
      const net = trainedStats(() => createFcn(), 3, [64, 96]);
      const image = torch.randn([2, 3, 64, 96]);
      t.false(torch.backends.fusedInference, 'off by default: a plain forward stays PyTorch-exact');
      const calls = torch.backends.fusedConvolutionCalls();
      const fused = await predict(net, image); // fused by default
      const afterFused = torch.backends.fusedConvolutionCalls();
      // oneDNN's fused convolutions take channels-last inputs; contiguous ones take at::conv2d.
      if (channelsLast) t.true(afterFused > calls, 'predict ran oneDNN fused convolutions');
      else t.is(afterFused, calls);
      const unfused = await predict(net, image, { fused: false });
      t.is(torch.backends.fusedConvolutionCalls(), afterFused, '{ fused: false } runs none');
      torch.noGrad(() => net.forward(image));
      t.is(torch.backends.fusedConvolutionCalls(), afterFused, 'nor does a plain forward');
      t.true(exactlyEqual(fused, unfused));
      await t.throwsAsync(predict(net, image, { fused: 1 as unknown as boolean }), { message: /fused/ });
    } finally {
      torch.backends.channelsLast = true;
    }
  });
}

test.serial(
  "a model's folded weights are kept while it predicts and dropped at its first training forward",
  async (t) => {
    const kept = () => torch.backends.fusedConvolutionsKept();
    // The count is process-wide: the models of earlier tests are collected first.
    for (let i = 0; i < 2; i++) {
      (globalThis as { gc?: () => void }).gc?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const before = kept();
    const net = trainedStats(() => createFcn(), 7, [64, 96]);
    const image = torch.randn([2, 3, 64, 96]);
    await predict(net, image);
    // ResNet-18: the stem, 16 block convolutions and 3 downsamples, each with its BatchNorm.
    t.is(kept() - before, 20, 'predict folds each conv + BN pair once');
    await predict(net, image);
    t.is(kept() - before, 20, 'and the next predict uses them again');
    torch.noGrad(() => net.forward(image));
    t.is(kept() - before, 20, 'an exact forward in eval mode leaves them');
    net.train();
    const sgd = new optim.SGD(net.parameters(), { lr: 0.01 });
    net.forward(image).pow(2).mean().backward();
    sgd.step();
    t.is(kept(), before, 'training drops them (they would be stale, and two more copies of the weights)');
    const labels = await predict(net, image);
    t.is(kept() - before, 20, 'the next predict folds the trained weights');
    t.true(exactlyEqual(labels, await predict(net, image, { fused: false })));
  },
);

test.serial('under CPU autocast the layers run one by one in bfloat16, fused inference asked for or not', async (t) => {
  const net = trainedStats(() => createFcn(), 6, [64, 96]);
  const x = torch.randn([1, 3, 64, 96]);
  const float32 = torch.noGrad(() => net.forward(x));
  torch.setAutocast('cpu', 'bfloat16');
  torch.backends.emulatedBfloat16 = true; // bfloat16 even on a CPU without bfloat16 units
  try {
    const calls = torch.backends.fusedConvolutionCalls();
    const { fused, unfused } = bothWays(() => torch.noGrad(() => net.forward(x)));
    t.true(exactlyEqual(fused, unfused), 'the fused float32 path would differ from bfloat16 layers');
    t.is(torch.backends.fusedConvolutionCalls(), calls);
    t.true(relativeDiff(unfused, float32) > 1e-4, 'autocast ran in bfloat16');
    t.true(exactlyEqual(await predict(net, x), await predict(net, x, { fused: false })));
    t.is(torch.backends.fusedConvolutionCalls(), calls, 'predict under autocast runs none');
  } finally {
    torch.setAutocast('cpu', null);
    torch.backends.emulatedBfloat16 = false;
  }
});

test.serial('a model in train mode under noGrad normalises with batch statistics, as unfused', (t) => {
  for (const [name, make, size] of MODELS) {
    const net = trainedStats(make, 4, size);
    const x = torch.randn([2, 3, ...size]);
    const evalOut = torch.noGrad(() => net.forward(x));
    net.train();
    const { fused, unfused } = bothWays(() => torch.noGrad(() => net.forward(x)));
    t.true(relativeDiff(fused, unfused) < 1e-6, name);
    t.true(relativeDiff(fused, evalOut) > 1e-3, `${name}: batch statistics differ from running ones`);
  }
});

test.serial(
  'a Sequential folds Conv2d, BatchNorm2d runs with or without a ReLU, and runs the rest as they are',
  (t) => {
    const make = () =>
      new nn.Sequential(
        new nn.Conv2d(3, 8, { kernelSize: 3, padding: 1 }),
        new nn.BatchNorm2d(8),
        new nn.ReLU(),
        new nn.Conv2d(8, 8, { kernelSize: 3, padding: 'same' }), // not folded: 'same' padding
        new nn.BatchNorm2d(8),
        new nn.Conv2d(8, 8, { kernelSize: 3, padding: 1, paddingMode: 'reflect' }), // not folded either
        new nn.BatchNorm2d(8),
        new nn.Conv2d(8, 4, { kernelSize: 1 }),
        new nn.BatchNorm2d(4),
      );
    const net = trainedStats(make, 5, [16, 16]);
    const out = expectFusedEqualsUnfused(t, net, torch.randn([2, 3, 16, 16]), 'Sequential');
    t.true((out.neg().max().item() as number) > 0, 'the last BatchNorm has no ReLU after it');
  },
);
