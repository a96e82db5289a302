/**
 * torch.setAutocast: bfloat16 mixed precision around every forward, compared with PyTorch's
 * torch.autocast('cpu', dtype=torch.bfloat16) on the same weights (test/fixtures/autocast.safetensors,
 * scripts/make_fixtures.py), with `backends.emulatedBfloat16` so that a CPU without bfloat16
 * units runs it too; without it such a CPU runs float32, and the FCN's sub-pixel upsampling
 * stays float32 under autocast everywhere. predict's `precision`. The same code path serves
 * CUDA (scripts/check-cuda.ts checks it on a GPU). The settings are process-wide, so these
 * tests run serially and restore them.
 */
import path from 'node:path';
import test from 'ava';
import { bilinearKernel, cpuCapabilities, createFcn, load, nn, optim, predict, type Tensor, torch } from '../../src';
import { fixture, fixtures, maxAbsDiff, pick } from '../helpers';

const strided = path.join(fixtures, 'resnet18-strided.pth');

async function resnet(): Promise<nn.ResNet> {
  const model = nn.resnet18();
  model.loadStateDict(await load(strided));
  return model.eval();
}

/** fn under bfloat16 autocast for deviceType, run in bfloat16 on any CPU (emulated where it has no bfloat16 units). */
function withAutocast<T>(deviceType: 'cpu' | 'cuda', fn: () => T): T {
  torch.setAutocast(deviceType, 'bfloat16');
  torch.backends.emulatedBfloat16 = true;
  try {
    return fn();
  } finally {
    torch.setAutocast(deviceType, null);
    torch.backends.emulatedBfloat16 = false;
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
  torch.backends.emulatedBfloat16 = true;
  const async = await torch
    .noGrad(() => model.forwardAsync(x))
    .finally(() => {
      torch.setAutocast('cpu', null);
      torch.backends.emulatedBfloat16 = false;
    });
  t.true(maxAbsDiff(async, pick(f, 'logits')) / scale < 1e-2);
  t.true(maxAbsDiff(model.forward(x), full) < 1e-6, 'float32 again once autocast is off');
});

test.serial(
  "SGD steps of the chapter's FCN under autocast: 3 within 1e-2 of PyTorch's, 50 more as close as its bfloat16 is to float32",
  async (t) => {
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
        t.true(
          Math.abs(got - float32[step]) / float32[step] < 1e-2,
          `step ${step}: ${got} vs float32 ${float32[step]}`,
        );
      }
    });
    t.is(net.get('final_conv').weight.dtype, 'float32', 'the weights stay float32');

    // 50 steps more: the losses stay as close to PyTorch's bfloat16 run as its bfloat16 and
    // float32 runs are to each other (3e-4 relative at most over these steps), to a small margin.
    const long = Array.from(pick(f, 'losses50').toTypedArray() as Float64Array);
    const longFloat32 = Array.from(pick(f, 'losses50.float32').toTypedArray() as Float64Array);
    const drift = Math.max(...long.map((l, i) => Math.abs(l - longFloat32[i]) / longFloat32[i]));
    let worst = 0;
    withAutocast('cpu', () => {
      for (let step = 0; step < 50; step++) {
        trainer.zeroGrad();
        const l = nn.functional
          .crossEntropy(net.forward(X), Y, { reduction: 'none', ignoreIndex: 255 })
          .mean(1)
          .mean(1);
        l.sum().backward();
        trainer.step();
        worst = Math.max(worst, Math.abs(l.sum().item() - long[step]) / long[step]);
      }
    });
    t.log(
      `50 steps: ours vs PyTorch bfloat16 ${worst.toExponential(2)}; PyTorch bfloat16 vs float32 ${drift.toExponential(2)}`,
    );
    t.true(worst <= 2 * drift + 1e-4, `ours vs PyTorch's bfloat16 losses: ${worst}`);
  },
);

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

test.serial(
  'without bfloat16 units CPU autocast runs float32 unless emulatedBfloat16; autocastRuns says which',
  async (t) => {
    const model = await resnet();
    const x = torch.randn([1, 3, 64, 64]);
    const full = torch.noGrad(() => model.forward(x));
    const units = cpuCapabilities().bfloat16Units;
    t.log(`${cpuCapabilities().name}: bfloat16 units ${units}`);
    torch.setAutocast('cpu', 'bfloat16');
    try {
      t.is(torch.getAutocast('cpu'), 'bfloat16', 'the setting is what was asked');
      t.is(torch.autocastRuns('cpu'), units ? 'bfloat16' : 'float32');
      const asked = maxAbsDiff(
        torch.noGrad(() => model.forward(x)),
        full,
      );
      if (units) t.true(asked > 1e-4, `bfloat16 ran: ${asked} from float32`);
      else t.is(asked, 0, 'float32 ran, exactly');
      torch.backends.emulatedBfloat16 = true;
      t.is(torch.autocastRuns('cpu'), 'bfloat16');
      const emulated = maxAbsDiff(
        torch.noGrad(() => model.forward(x)),
        full,
      );
      t.true(emulated > 1e-4, `bfloat16 ran: ${emulated} from float32`);
    } finally {
      torch.setAutocast('cpu', null);
      torch.backends.emulatedBfloat16 = false;
    }
    t.is(torch.autocastRuns('cpu'), 'float32');
  },
);

test.serial("under CPU autocast the FCN's upsampling runs float32 on the sub-pixel path", async (t) => {
  const up = new nn.ConvTranspose2d(21, 21, { kernelSize: 64, padding: 16, stride: 32 });
  up.weight.copy_(bilinearKernel(21, 21, 64));
  const x = torch.randn([1, 21, 10, 15]);
  const full = torch.noGrad(() => up.forward(x));
  const scale = full.abs().max().item() as number;
  const subpixel = withAutocast('cpu', () => torch.noGrad(() => up.forward(x)));
  t.is(subpixel.dtype, 'float32');
  t.true(maxAbsDiff(subpixel, full) / scale < 1e-5, 'float32, as without autocast');
  torch.backends.subpixelUpsampling = false;
  try {
    const general = withAutocast('cpu', () => torch.noGrad(() => up.forward(x)));
    t.true(maxAbsDiff(general, full) / scale > 1e-4, "the general kernel under autocast runs bfloat16 (PyTorch's way)");
  } finally {
    torch.backends.subpixelUpsampling = true;
  }
});

test.serial("predict's precision overrides the process-wide setting for its call", async (t) => {
  torch.manualSeed(3);
  const net = createFcn({ numClasses: 5 }).eval();
  const image = torch.rand([3, 64, 96]).mul(255).to('uint8');
  const full = await predict(net, image);
  torch.setAutocast('cpu', 'bfloat16');
  torch.backends.emulatedBfloat16 = true;
  try {
    t.is(maxAbsDiff(await predict(net, image, { precision: 'float32' }), full), 0, 'float32 for this call');
  } finally {
    torch.setAutocast('cpu', null);
    torch.backends.emulatedBfloat16 = false;
  }
  const auto = await predict(net, image, { precision: 'auto' });
  if (!cpuCapabilities().bfloat16Units) t.is(maxAbsDiff(auto, full), 0, "'auto' is float32 on this CPU");
  else t.is(auto.shape.join(), full.shape.join());
  await t.throwsAsync(predict(net, image, { precision: 'float16' as 'float32' }), {
    message: /precision: expected one of auto, float32, bfloat16, got "float16"/,
  });
});
