import path from 'node:path';
import test from 'ava';
import { bilinearKernel, load, nn, optim, type Tensor, Trainer, torch } from '../../src';
import { fixture, fixtures, maxAbsDiff, pick } from '../helpers';

const strided = path.join(fixtures, 'resnet18-strided.pth');

test('resnet18 has torchvision module tree and state-dict names', (t) => {
  const model = nn.resnet18();
  t.deepEqual(
    model.namedChildren().map(([n]) => n),
    ['conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4', 'avgpool', 'fc'],
  );
  const keys = [...model.stateDict().keys()];
  t.is(keys.length, 122);
  t.deepEqual(keys.slice(0, 7), [
    'conv1.weight',
    'bn1.weight',
    'bn1.bias',
    'bn1.running_mean',
    'bn1.running_var',
    'bn1.num_batches_tracked',
    'layer1.0.conv1.weight',
  ]);
  t.true(keys.includes('layer2.0.downsample.0.weight'));
  t.true(keys.includes('layer4.1.bn2.running_var'));
  t.deepEqual(keys.slice(-2), ['fc.weight', 'fc.bias']);
  t.true(model.get('layer1').get(0) instanceof nn.BasicBlock);
  t.deepEqual(nn.resnet18({ numClasses: 21 }).get('fc').weight.shape, [21, 512]);
  t.throws(() => nn.resnet18({ numClasses: 0 }), { message: /numClasses/ });
});

for (const file of ['resnet18-strided.pth', 'resnet18-strided-legacy.pth']) {
  test(`eval forward after loading ${file} equals PyTorch within 1e-4`, async (t) => {
    const f = await fixture('resnet18-forward.safetensors');
    const model = nn.resnet18();
    model.loadStateDict(await load(path.join(fixtures, file)));
    model.eval();
    const x = pick(f, 'input');
    t.true(maxAbsDiff(model.forward(x), pick(f, 'logits')) < 1e-4);
    const body = new nn.Sequential(...model.children().slice(0, -2));
    t.true(maxAbsDiff(await body.forwardAsync(x), pick(f, 'body')) < 1e-4);
  });
}

test('resnet18({ weights: { path } }) loads a local state dict', async (t) => {
  const f = await fixture('resnet18-forward.safetensors');
  const model = await nn.resnet18({ weights: { path: strided } });
  t.true(maxAbsDiff(model.eval().forward(pick(f, 'input')), pick(f, 'logits')) < 1e-4);
});

/** The chapter's FCN on a ResNet-18 body (the contract, line for line). */
function buildFcn(pretrained: nn.ResNet): nn.Sequential {
  const net = new nn.Sequential(...pretrained.children().slice(0, -2));
  net.addModule('final_conv', new nn.Conv2d(512, 21, { kernelSize: 1 }));
  net.addModule('transpose_conv', new nn.ConvTranspose2d(21, 21, { kernelSize: 64, padding: 16, stride: 32 }));
  net.get('transpose_conv').weight.copy_(bilinearKernel(21, 21, 64));
  return net;
}

test('the chapter FCN: shapes [1,512,10,15] and [1,21,320,480], async forward', async (t) => {
  torch.manualSeed(0);
  const X = torch.rand([1, 3, 320, 480]);
  const pretrained = nn.resnet18();
  const body = new nn.Sequential(...pretrained.children().slice(0, -2));
  t.deepEqual(body.forward(X).shape, [1, 512, 10, 15]);
  const net = buildFcn(pretrained);
  const Y = await net.forwardAsync(X);
  t.deepEqual(Y.shape, [1, 21, 320, 480]);
});

/** The chapter's FCN with the fixture's head, as scripts/make_fixtures.py builds it. */
async function fixtureFcn(f: Map<string, Tensor>) {
  const pretrained = nn.resnet18();
  pretrained.loadStateDict(await load(strided));
  const net = buildFcn(pretrained);
  net.get('final_conv').weight.copy_(pick(f, 'final_conv.weight'));
  net.get('final_conv').bias?.copy_(pick(f, 'final_conv.bias'));
  net.get('transpose_conv').bias?.copy_(torch.zeros([21]));
  return net;
}

test('3 SGD steps on the full FCN reproduce PyTorch losses within 1e-4 relative', async (t) => {
  const f = await fixture('fcn-sgd.safetensors');
  const net = await fixtureFcn(f);
  const X = pick(f, 'X');
  const Y = pick(f, 'Y');
  const loss = (inputs: Tensor, targets: Tensor) =>
    nn.functional.crossEntropy(inputs, targets, { reduction: 'none', ignoreIndex: 255 }).mean(1).mean(1);
  const trainer = new optim.SGD(net.parameters(), { lr: 0.001, weightDecay: 1e-3 });
  net.train();
  const expected = Array.from(pick(f, 'losses').toTypedArray() as Float64Array);
  for (let step = 0; step < 3; step++) {
    trainer.zeroGrad();
    const l = loss(net.forward(X), Y);
    l.sum().backward();
    trainer.step();
    const got = l.sum().item() as number;
    t.true(
      Math.abs(got - expected[step]) / Math.abs(expected[step]) < 1e-4,
      `step ${step}: ${got} vs ${expected[step]}`,
    );
  }
  t.true(maxAbsDiff(net.get('final_conv').weight, pick(f, 'final_conv.weight.after')) < 1e-5);
  t.true(maxAbsDiff(net.get('transpose_conv').bias as Tensor, pick(f, 'transpose_conv.bias.after')) < 1e-5);
});

// Trainer.step: the chapter's loss on the logits as the model gives them (channels-last from
// the sub-pixel upsampling, whose loss and gradient take the pixels as rows; channels-first
// from libtorch's transposed convolution), the caching allocator's blocks reused across steps.
for (const subpixel of [true, false]) {
  test.serial(
    `3 Trainer steps on the full FCN reproduce PyTorch (sub-pixel upsampling ${subpixel ? 'on' : 'off'})`,
    async (t) => {
      const before = torch.backends.subpixelUpsampling;
      torch.backends.subpixelUpsampling = subpixel;
      t.teardown(() => {
        torch.backends.subpixelUpsampling = before;
      });
      const f = await fixture('fcn-sgd.safetensors');
      const net = await fixtureFcn(f);
      const trainer = new Trainer(net, new optim.SGD(net.parameters(), { lr: 0.001, weightDecay: 1e-3 }));
      const expected = Array.from(pick(f, 'losses').toTypedArray() as Float64Array);
      const expectedCorrect = Array.from(pick(f, 'correct').toTypedArray() as BigInt64Array, Number);
      for (let step = 0; step < 3; step++) {
        const { loss, correct, pixels } = await trainer.step(pick(f, 'X'), pick(f, 'Y'));
        t.true(
          Math.abs(loss - expected[step]) / Math.abs(expected[step]) < 1e-4,
          `step ${step}: ${loss} vs ${expected[step]}`,
        );
        // The accuracy's count, as train_batch_ch13 takes it: logits within 1e-4 may still
        // swap a near-tie's argmax, so a pixel in a thousand may differ.
        t.is(pixels, 2 * 60 * 96, 'the labelled pixels (the 4-row void border left out)');
        t.true(
          Math.abs(correct - expectedCorrect[step]) <= pixels / 1000,
          `step ${step}: ${correct} vs ${expectedCorrect[step]} correct`,
        );
      }
      t.true(maxAbsDiff(net.get('final_conv').weight, pick(f, 'final_conv.weight.after')) < 1e-5);
      t.true(maxAbsDiff(net.get('transpose_conv').bias as Tensor, pick(f, 'transpose_conv.bias.after')) < 1e-5);
    },
  );
}
