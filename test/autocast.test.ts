/**
 * torch.setAutocast: bfloat16 mixed precision around every forward, compared with PyTorch's
 * torch.autocast('cpu', dtype=torch.bfloat16) on the same weights (test/fixtures/autocast.safetensors,
 * scripts/make_fixtures.py). The same code path serves CUDA (scripts/check-cuda.ts checks it
 * on a GPU). The setting is process-wide, so these tests run serially and restore it.
 */
import path from 'node:path';
import test from 'ava';
import { bilinearKernel, load, nn, optim, type Tensor, torch } from '../src';
import { fixture, fixtures, maxAbsDiff, pick } from './helpers';

const strided = path.join(fixtures, 'resnet18-strided.pth');

async function resnet(): Promise<nn.ResNet> {
  const model = nn.resnet18();
  model.loadStateDict(await load(strided));
  return model.eval();
}

function withAutocast<T>(deviceType: 'cpu' | 'cuda', fn: () => T): T {
  torch.setAutocast(deviceType, 'bfloat16');
  try {
    return fn();
  } finally {
    torch.setAutocast(deviceType, null);
  }
}

test.serial("a forward under autocast equals PyTorch's autocast within bfloat16's rounding, in float32", async (t) => {
  const f = await fixture('autocast.safetensors');
  const model = await resnet();
  const x = pick(f, 'input');
  const full = torch.noGrad(() => model.forward(x));
  t.true(maxAbsDiff(full, pick(f, 'logits.float32')) < 1e-4, 'float32 first');
  const mixed = withAutocast('cpu', () => torch.noGrad(() => model.forward(x)));
  t.is(mixed.dtype, 'float32');
  const scale = (pick(f, 'logits.float32').abs().max().item() as number) || 1;
  const fromTorch = maxAbsDiff(mixed, pick(f, 'logits'));
  const fromFull = maxAbsDiff(mixed, full);
  t.true(fromTorch / scale < 1e-2, `ours vs PyTorch autocast: ${fromTorch} (logits up to ${scale})`);
  t.true(fromFull > 1e-3, `autocast changed the numbers (${fromFull} from float32)`);
  // On the torch thread too, and off again afterwards.
  // The setting is read when the forward runs on the torch thread: keep it until the call settles.
  torch.setAutocast('cpu', 'bfloat16');
  const async = await torch.noGrad(() => model.forwardAsync(x)).finally(() => torch.setAutocast('cpu', null));
  t.true(maxAbsDiff(async, pick(f, 'logits')) / scale < 1e-2);
  t.true(maxAbsDiff(model.forward(x), full) < 1e-6, 'float32 again once autocast is off');
});

test.serial("three SGD steps of the chapter's FCN under autocast: losses within 1e-2 of PyTorch's", async (t) => {
  const f = await fixture('autocast.safetensors');
  const sgd = await fixture('fcn-sgd.safetensors');
  const pretrained = await resnet();
  const net = new nn.Sequential(...pretrained.children().slice(0, -2));
  net.addModule('final_conv', new nn.Conv2d(512, 21, { kernelSize: 1 }));
  net.addModule('transpose_conv', new nn.ConvTranspose2d(21, 21, { kernelSize: 64, padding: 16, stride: 32 }));
  net.get('final_conv').weight.copy_(pick(sgd, 'final_conv.weight'));
  net.get('final_conv').bias?.copy_(pick(sgd, 'final_conv.bias'));
  net.get('transpose_conv').weight.copy_(bilinearKernel(21, 21, 64));
  net.get('transpose_conv').bias?.copy_(torch.zeros([21]));
  const X = pick(sgd, 'X');
  const Y = pick(sgd, 'Y');
  const trainer = new optim.SGD(net.parameters(), { lr: 0.001, weightDecay: 1e-3 });
  net.train();
  const expected = Array.from(pick(f, 'losses').toTypedArray() as Float64Array);
  const float32 = Array.from(pick(sgd, 'losses').toTypedArray() as Float64Array);
  withAutocast('cpu', () => {
    for (let step = 0; step < 3; step++) {
      trainer.zeroGrad();
      const out: Tensor = net.forward(X);
      t.is(out.dtype, 'float32');
      const l = nn.functional.crossEntropy(out, Y, { reduction: 'none', ignoreIndex: 255 }).mean(1).mean(1);
      l.sum().backward();
      trainer.step();
      const got = l.sum().item();
      t.true(Math.abs(got - expected[step]) / expected[step] < 1e-2, `step ${step}: ${got} vs ${expected[step]}`);
      t.true(Math.abs(got - float32[step]) / float32[step] < 1e-2, `step ${step}: ${got} vs float32 ${float32[step]}`);
    }
  });
  t.is(net.get('final_conv').weight.dtype, 'float32', 'the weights stay float32');
});

test.serial('autocast for CUDA leaves CPU models in float32; bad arguments are clear errors', async (t) => {
  const f = await fixture('autocast.safetensors');
  const model = await resnet();
  const x = pick(f, 'input');
  const full = model.forward(x);
  withAutocast('cuda', () => {
    t.is(torch.getAutocast('cuda'), 'bfloat16');
    t.is(torch.getAutocast('cpu'), null);
    t.true(maxAbsDiff(model.forward(x), full) < 1e-6);
  });
  t.is(torch.getAutocast('cuda'), null);
  t.throws(() => torch.setAutocast('mps' as 'cpu', 'bfloat16'), {
    message: /deviceType: expected one of cpu, cuda, got "mps"/,
  });
  t.throws(() => torch.setAutocast('cpu', 'float16' as 'bfloat16'), {
    message: /dtype: expected one of bfloat16, got "float16"/,
  });
  t.is(torch.getAutocast('cpu'), null, 'nothing was set by the refused calls');
});
