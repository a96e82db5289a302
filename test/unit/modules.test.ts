import test from 'ava';
import { bilinearKernel, createFcn, init, models, nn, quantizeInt8, type Tensor, torch } from '../../src';
import { native } from '../../src/native';
import { Module, moduleClassKinds } from '../../src/nn/module';
import { exactlyEqual, fixture, maxAbsDiff, pick } from '../helpers';

function layerFor(name: string): nn.Conv2d | nn.ConvTranspose2d {
  switch (name) {
    case 'conv':
      return new nn.Conv2d(4, 6, { kernelSize: [3, 2], stride: [2, 1], padding: [1, 2], dilation: [1, 2], groups: 2 });
    case 'convreflect':
      return new nn.Conv2d(3, 2, { kernelSize: 3, padding: 1, paddingMode: 'reflect', bias: false });
    case 'tconv':
      return new nn.ConvTranspose2d(4, 6, { kernelSize: 4, stride: 2, padding: 1, outputPadding: 1, groups: 2 });
    case 'tconvsub':
      return new nn.ConvTranspose2d(3, 2, { kernelSize: 16, stride: 8, padding: 4 });
    case 'tconvsubodd':
      return new nn.ConvTranspose2d(3, 2, { kernelSize: 16, stride: 8, padding: 3, bias: false });
    default:
      return new nn.ConvTranspose2d(3, 2, { kernelSize: 3, stride: 3, padding: 2, dilation: 2 });
  }
}

/** layerFor(name) holding the fixture's weight and bias (where it has one). */
function loadedLayer(f: Map<string, Tensor>, name: string): nn.Conv2d | nn.ConvTranspose2d {
  const layer = layerFor(name);
  layer.weight.copy_(pick(f, `${name}.weight`));
  if (f.has(`${name}.bias`)) layer.bias?.copy_(pick(f, `${name}.bias`));
  return layer;
}

for (const name of ['conv', 'convreflect', 'tconv', 'tconvdil', 'tconvsub', 'tconvsubodd']) {
  test(`${name}: forward and input/weight/bias gradients equal PyTorch`, async (t) => {
    const f = await fixture('conv.safetensors');
    const layer = layerFor(name);
    layer.weight.copy_(pick(f, `${name}.weight`));
    if (f.has(`${name}.bias`)) layer.bias?.copy_(pick(f, `${name}.bias`));
    else t.is(layer.bias, null);
    const x = pick(f, `${name}.x`).clone().detach();
    x.requiresGrad = true;
    const y = layer.forward(x);
    t.true(maxAbsDiff(y, pick(f, `${name}.y`)) < 1e-5);
    y.mul(pick(f, `${name}.g`))
      .sum()
      .backward();
    t.true(maxAbsDiff(x.grad as Tensor, pick(f, `${name}.x.grad`)) < 1e-4);
    t.true(maxAbsDiff(layer.weight.grad as Tensor, pick(f, `${name}.weight.grad`)) < 1e-4);
    if (f.has(`${name}.bias.grad`)) t.true(maxAbsDiff(layer.bias?.grad as Tensor, pick(f, `${name}.bias.grad`)) < 1e-4);
  });
}

test.serial(
  'kernel = 2 x stride transposed convolutions: the sub-pixel path and its gradients equal PyTorch',
  async (t) => {
    const f = await fixture('conv.safetensors');
    t.teardown(() => {
      torch.backends.subpixelUpsampling = true;
    });
    for (const name of ['tconvsub', 'tconvsubodd']) {
      for (const subpixel of [true, false]) {
        torch.backends.subpixelUpsampling = subpixel;
        const layer = loadedLayer(f, name);
        const y = torch.noGrad(() => layer.forward(pick(f, `${name}.x`)));
        const diff = maxAbsDiff(y, pick(f, `${name}.y`));
        t.true(diff < 1e-5, `${name}, subpixel ${subpixel}: ${diff}`);
        // With gradients (training's path): the output, and the input, weight and bias gradients.
        const x = pick(f, `${name}.x`).clone().detach();
        x.requiresGrad = true;
        const trained = layer.forward(x);
        t.true(maxAbsDiff(trained, pick(f, `${name}.y`)) < 1e-5, `${name}, subpixel ${subpixel}, with grad`);
        trained
          .mul(pick(f, `${name}.g`))
          .sum()
          .backward();
        t.true(maxAbsDiff(x.grad as Tensor, pick(f, `${name}.x.grad`)) < 1e-4, `${name}, subpixel ${subpixel}: x.grad`);
        t.true(maxAbsDiff(layer.weight.grad as Tensor, pick(f, `${name}.weight.grad`)) < 1e-4, `${name}: weight.grad`);
        if (f.has(`${name}.bias.grad`)) {
          t.true(maxAbsDiff(layer.bias?.grad as Tensor, pick(f, `${name}.bias.grad`)) < 1e-4, `${name}: bias.grad`);
        }
      }
    }
  },
);

test.serial(
  "under CPU autocast a kernel = 2 x stride transposed convolution stays float32 on the sub-pixel path: PyTorch's float32",
  async (t) => {
    const f = await fixture('conv.safetensors');
    const layer = loadedLayer(f, 'tconvsub');
    const expected = pick(f, 'tconvsub.y');
    torch.setAutocast('cpu', 'bfloat16');
    torch.backends.emulatedBfloat16 = true; // autocast on, even on a CPU without bfloat16 units
    try {
      const y = torch.noGrad(() => layer.forward(pick(f, 'tconvsub.x')));
      const diff = maxAbsDiff(y, expected) / (expected.abs().max().item() as number);
      t.true(diff < 1e-5, `against PyTorch's float32: ${diff} relative`);
    } finally {
      torch.setAutocast('cpu', null);
      torch.backends.emulatedBfloat16 = false;
    }
  },
);

test.serial(
  'the sub-pixel path reads weights changed in place after a forward (its kernel is kept between forwards)',
  async (t) => {
    const f = await fixture('conv.safetensors');
    const layer = loadedLayer(f, 'tconvsub');
    const x = pick(f, 'tconvsub.x');
    t.true(
      maxAbsDiff(
        torch.noGrad(() => layer.forward(x)),
        pick(f, 'tconvsub.y'),
      ) < 1e-5,
    );
    // A transposed convolution is linear in (weight, bias): doubling both doubles PyTorch's output.
    torch.noGrad(() => {
      layer.weight.copy_(pick(f, 'tconvsub.weight').mul(2));
      layer.bias?.copy_(pick(f, 'tconvsub.bias').mul(2));
    });
    const diff = maxAbsDiff(
      torch.noGrad(() => layer.forward(x)),
      pick(f, 'tconvsub.y').mul(2),
    );
    t.true(diff < 2e-5, `after doubling the weights: ${diff}`);
  },
);

test.serial(
  'torch.backends.cudaGraphs is off by default and leaves CPU forwards as PyTorch computes them',
  async (t) => {
    t.false(torch.backends.cudaGraphs);
    const f = await fixture('conv.safetensors');
    const layer = layerFor('tconvsub');
    layer.weight.copy_(pick(f, 'tconvsub.weight'));
    if (f.has('tconvsub.bias')) layer.bias?.copy_(pick(f, 'tconvsub.bias'));
    layer.eval();
    torch.backends.cudaGraphs = true;
    try {
      t.true(torch.backends.cudaGraphs);
      for (let call = 0; call < 3; call++) {
        const y = torch.noGrad(() => layer.forward(pick(f, 'tconvsub.x')));
        t.true(maxAbsDiff(y, pick(f, 'tconvsub.y')) < 1e-5, `call ${call + 1}`);
      }
    } finally {
      torch.backends.cudaGraphs = false;
    }
  },
);

test('default Conv2d init and xavierUniform_ draw the same numbers as PyTorch', async (t) => {
  const f = await fixture('init.safetensors');
  torch.manualSeed(7);
  const conv = new nn.Conv2d(3, 4, { kernelSize: 3 });
  t.true(exactlyEqual(conv.weight.detach(), pick(f, 'conv.default.weight')));
  t.true(exactlyEqual(conv.bias?.detach() as Tensor, pick(f, 'conv.default.bias')));
  torch.manualSeed(3);
  const w = init.xavierUniform_(torch.empty([21, 512, 1, 1]));
  t.true(exactlyEqual(w, pick(f, 'xavier.seed3')));
});

test('bilinearKernel equals the chapter function bit for bit', async (t) => {
  const f = await fixture('init.safetensors');
  for (const [i, o, k] of [
    [3, 3, 4],
    [2, 2, 5],
    [1, 3, 4],
    [4, 4, 1],
  ]) {
    t.true(exactlyEqual(bilinearKernel(i, o, k), pick(f, `bilinear.${i}.${o}.${k}`)), `${i},${o},${k}`);
  }
  const big = bilinearKernel(21, 21, 64);
  const diagonal = torch.stack(
    Array.from({ length: 21 }, (_, i) => big.narrow(0, i, 1).narrow(1, i, 1).reshape([64, 64])),
  );
  t.true(exactlyEqual(diagonal, pick(f, 'bilinear.21.21.64.diagonal')));
  t.is(big.to('float64').sum().item(), pick(f, 'bilinear.21.21.64.total').item());
  t.throws(() => bilinearKernel(2, 3, 4), { message: /must be equal or one of them 1/ });
  t.throws(() => bilinearKernel(0, 0, 4), { message: />= 1/ });
});

test('the chapter 2x bilinear upsampling of an image equals PyTorch', async (t) => {
  const f = await fixture('init.safetensors');
  const convTrans = new nn.ConvTranspose2d(3, 3, { kernelSize: 4, padding: 1, stride: 2, bias: false });
  convTrans.weight.copy_(bilinearKernel(3, 3, 4));
  const Y = convTrans.forward(pick(f, 'upsample.x'));
  t.deepEqual(Y.shape, [1, 3, 48, 72]);
  t.true(maxAbsDiff(Y, pick(f, 'upsample.y')) < 1e-6);
});

test('Sequential: names, get, addModule, shared children, one forward', (t) => {
  const conv = new nn.Conv2d(3, 4, { kernelSize: 3, padding: 1 });
  const net = new nn.Sequential(conv, new nn.ReLU());
  net.addModule('pool', new nn.MaxPool2d({ kernelSize: 2 }));
  t.deepEqual(
    net.namedChildren().map(([n, m]) => `${n}:${m.kind}`),
    ['0:Conv2d', '1:ReLU', 'pool:MaxPool2d'],
  );
  t.is(net.length, 3);
  t.true(net.get(0) instanceof nn.Conv2d);
  t.true(net.get('pool') instanceof nn.MaxPool2d);
  net.get(0).weight.copy_(torch.zeros([4, 3, 3, 3]));
  t.is(conv.weight.abs().sum().item(), 0, 'children share parameters with the original module');
  t.deepEqual(net.forward(torch.rand([2, 3, 8, 8])).shape, [2, 4, 4, 4]);
  t.deepEqual([...net.stateDict().keys()], ['0.weight', '0.bias']);
  t.throws(() => net.get('nope'), { message: /no child 'nope'; children: 0, 1, pool/ });
  t.throws(() => net.addModule('pool', new nn.ReLU()), { message: /already defined|pool/ });
  t.throws(() => net.addModule('a.b', new nn.ReLU()), { message: /without '\.'/ });
  t.throws(() => net.addModule('self', net), { message: /cannot contain itself/ });
});

test('tensors and modules are disposed by using and by dispose(); their shared parts live on', (t) => {
  let tensor: Tensor;
  let net: nn.Sequential;
  const x = torch.rand([1, 3, 8, 8]);
  {
    using scoped = torch.ones([2, 2]);
    using scopedNet = new nn.Sequential(new nn.Conv2d(3, 2, { kernelSize: 1 }), new nn.ReLU());
    tensor = scoped;
    net = scopedNet;
    t.false(tensor.isDisposed);
    t.false(net.isDisposed);
  }
  t.true(tensor.isDisposed, 'using disposes the tensor at the end of the block');
  t.true(net.isDisposed, 'and the module');
  t.throws(() => tensor.sum(), { message: /tensor was disposed/ });
  t.throws(() => net.forward(x), { message: /module was disposed and can no longer be used/ });
  t.throws(() => net.parameters(), { message: /module was disposed/ });
  t.throws(() => new nn.Sequential(net), { message: /module was disposed/ }, 'nor can it join another model');
  // A child's handle let go: the parent still holds the child and runs it.
  const parent = new nn.Sequential(new nn.Conv2d(3, 2, { kernelSize: 1 }));
  const child = parent.get(0);
  const weight = child.weight;
  child.dispose();
  t.true(child.isDisposed);
  t.deepEqual(parent.forward(x).shape, [1, 2, 8, 8]);
  t.false(weight.isDisposed, 'a parameter taken before stays usable');
  parent[Symbol.dispose]();
  t.true(parent.isDisposed);
  t.is(weight.shape.join(','), '2,3,1,1');
  x.dispose();
});

test('modules refuse bad options before anything native runs', (t) => {
  t.throws(() => new nn.Conv2d(0, 4, { kernelSize: 3 }), { message: /inChannels: expected an integer >= 1, got 0/ });
  t.throws(() => new nn.Conv2d(3, 4, { kernelSize: [3] as never }), { message: /kernelSize/ });
  t.throws(() => new nn.Conv2d(3, 4, { kernelSize: 3, groups: 2 }), { message: /groups \(2\) must divide/ });
  t.throws(() => new nn.Conv2d(3, 4, { kernelSize: 3, paddingMode: 'mirror' as never }), { message: /paddingMode/ });
  t.throws(() => new nn.ConvTranspose2d(3, 3, { kernelSize: 3, stride: 2, outputPadding: 2 }), {
    message: /outputPadding \(2\) must be smaller/,
  });
  t.throws(() => new nn.Linear(3, 4, { bias: 1 as never }), { message: /bias: expected a boolean/ });
});

test('a conv given the wrong rank, channels or dtype says so', (t) => {
  const conv = new nn.Conv2d(512, 21, { kernelSize: 1 });
  t.throws(() => conv.forward(torch.rand([1, 3, 4, 4])), {
    message: /expected input\[1, 3, 4, 4\] to have 512 channels/,
  });
  t.throws(() => conv.forward(torch.rand([4, 4])), { message: /Expected 3D \(unbatched\) or 4D \(batched\) input/ });
  t.throws(() => conv.forward(torch.rand([1, 512, 2, 2], { dtype: 'float64' })), {
    message: /^input is float64 \[1, 512, 2, 2\], but the model's weights are float32: convert the input first/,
  });
  t.throws(() => conv.forward('x' as never), { message: /input: expected a Tensor, got string/ });
  const seq = new nn.Sequential(new nn.ReLU(), conv);
  t.throws(() => seq.forward(torch.rand([1, 3, 4, 4])), { message: /in '1' \(Conv2d\): .*512 channels/ });
});

test('loadStateDict lists missing, unexpected and mismatched keys and loads nothing then', (t) => {
  const net = new nn.Sequential(new nn.Conv2d(1, 2, { kernelSize: 1 }), new nn.BatchNorm2d(2));
  t.deepEqual(
    [...net.stateDict().keys()],
    ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked'],
  );
  const good = new Map([...net.stateDict()].map(([k, v]) => [k, v.clone().detach().add(1)]));
  t.deepEqual(net.loadStateDict(good), { missingKeys: [], unexpectedKeys: [] });
  t.is(net.get(1).weight.sum().item(), 4);
  const partial = new Map(good);
  partial.delete('0.bias');
  partial.set('extra', torch.zeros([1]));
  t.throws(() => net.loadStateDict(partial), { message: /missing keys: 0\.bias\. unexpected keys: extra/ });
  t.deepEqual(net.loadStateDict(partial, { strict: false }), { missingKeys: ['0.bias'], unexpectedKeys: ['extra'] });
  const wrong = new Map(good);
  wrong.set('0.weight', torch.zeros([3, 1, 1, 1]));
  const before = net.get(1).weight.sum().item();
  t.throws(() => net.loadStateDict(wrong), {
    message: /shape mismatch for 0\.weight \(given \[3, 1, 1, 1\], model has \[2, 1, 1, 1\]\)/,
  });
  t.is(net.get(1).weight.sum().item(), before);
});

test('train/eval switch BatchNorm between batch and running statistics', (t) => {
  const bn = new nn.BatchNorm2d(1);
  t.true(bn.training);
  const x = torch.tensor([1, 3], { dtype: 'float32' }).reshape([2, 1, 1, 1]);
  const z = bn.forward(x).reshape([2]).toArray() as number[];
  t.true(Math.abs(z[0] + 1 / Math.sqrt(1 + 1e-5)) < 1e-6 && Math.abs(z[1] - 1 / Math.sqrt(1 + 1e-5)) < 1e-6);
  const stats = bn.namedBuffers();
  t.true(Math.abs((stats.get('running_mean')?.item() as number) - 0.2) < 1e-6);
  bn.eval();
  t.false(bn.training);
  const y = bn.forward(x).reshape([2]).toArray() as number[];
  t.true(Math.abs(y[0] - (1 - 0.2) / Math.sqrt(1.1 + 1e-5)) < 1e-5);
});

test('every native module kind has its TypeScript class and every class a native kind, by the same name', async (t) => {
  const kinds = native.moduleKinds();
  t.deepEqual(
    kinds.map((k) => k.name),
    moduleClassKinds(),
  );
  // The kinds made from options: each class's static kind is the registry's name.
  const creatable = kinds.filter((k) => k.creatable).map((k) => k.name);
  const layerClasses = [...Object.values(nn).filter((c) => typeof c === 'function' && 'kind' in c)] as unknown as {
    kind: string;
  }[];
  t.deepEqual(layerClasses.map((c) => c.kind).sort(), creatable);
  // Every module of every model the package builds comes back as its own class, never the base.
  const int8 = await quantizeInt8(createFcn().eval(), [torch.rand([1, 3, 64, 64])]);
  const roots: Module[] = [
    createFcn(),
    createFcn({ arch: 'fcn16s' }),
    createFcn({ arch: 'fcn8s' }),
    await models.segmentation.fcnResnet50({ auxLoss: true }),
    await models.segmentation.deeplabv3MobilenetV3Large(),
    await models.segmentation.lrasppMobilenetV3Large(),
    int8,
  ];
  const seen = new Set<string>();
  const walk = (m: Module): void => {
    t.not(Object.getPrototypeOf(m), Module.prototype, `${m.kind} came back as the base Module`);
    seen.add(m.kind);
    for (const child of m.children()) walk(child);
  };
  for (const root of roots) walk(root);
  t.true(seen.size >= 25, [...seen].join(', '));
});
