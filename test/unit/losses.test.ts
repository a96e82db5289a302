/**
 * Dice and Focal losses (nn.functional, and as Trainer terms) against
 * segmentation_models_pytorch's definitions computed with PyTorch (scripts/make_loss_fixtures.py).
 */
import test from 'ava';
import { nn, optim, type Tensor, Trainer, torch } from '../../src';
import { fixture, maxAbsDiff, pick } from '../helpers';

for (const [name, loss] of [
  ['dice', (x: Tensor, y: Tensor) => nn.functional.diceLoss(x, y, { ignoreIndex: 255 })],
  ['focal', (x: Tensor, y: Tensor) => nn.functional.focalLoss(x, y, { ignoreIndex: 255 })],
  ['focal_gamma_0.5', (x: Tensor, y: Tensor) => nn.functional.focalLoss(x, y, { ignoreIndex: 255, gamma: 0.5 })],
] as const) {
  test(`${name}: value and gradient equal segmentation_models_pytorch's`, async (t) => {
    const f = await fixture('losses.safetensors');
    const logits = pick(f, 'logits').clone();
    logits.requiresGrad = true;
    const value = loss(logits, pick(f, 'labels'));
    value.backward();
    t.true(maxAbsDiff(value.reshape([1]), pick(f, name)) < 1e-12, `${value.item()} vs ${pick(f, name).item()}`);
    t.true(maxAbsDiff(logits.grad as Tensor, pick(f, `${name}.grad`)) < 1e-12);
  });
}

test('the losses refuse what they cannot take, in the caller terms', (t) => {
  const x = torch.rand([1, 3, 4, 4]);
  t.throws(() => nn.functional.diceLoss(x, torch.zeros([1, 4, 4])), {
    message: /diceLoss: expected float logits \[B, C, H, W\] and int64 labels \[B, H, W\], got .*float32/,
  });
  t.throws(() => nn.functional.focalLoss(x, torch.zeros([1, 4, 4], { dtype: 'int64' }), { gamma: -1 }), {
    message: /gamma: expected a finite number >= 0/,
  });
});

test('Trainer: cross-entropy, Dice and Focal terms add up as weighted, per image under the chapter', async (t) => {
  torch.manualSeed(3);
  const net = new nn.Sequential(new nn.Conv2d(3, 4, { kernelSize: 1 }));
  const X = torch.rand([2, 3, 8, 8]);
  const Y = torch.rand([2, 8, 8]).mul(3.999).to('int64'); // classes 0..3
  const out = torch.noGrad(() => net.forward(X));
  const ce = nn.functional.crossEntropy(out, Y, { reduction: 'none' }).mean(1).mean(1).sum().item();
  const dice = nn.functional.diceLoss(out, Y).item();
  const focal = nn.functional.focalLoss(out, Y, { gamma: 1 }).item();
  const trainer = new Trainer(net, new optim.SGD(net.parameters(), { lr: 0 }), {
    loss: { terms: { crossEntropy: 1, dice: 0.5, focal: 2 }, focalGamma: 1 },
  });
  const r = await trainer.step(X, Y);
  t.true(Math.abs(r.loss - (ce + 2 * 0.5 * dice + 2 * 2 * focal)) < 1e-4, `${r.loss}`);
  const diceOnly = new Trainer(net, null, { loss: { kind: 'torchvision', terms: { dice: 1 } } });
  const e = await diceOnly.evaluate(X, Y);
  t.true(Math.abs(e.loss - 2 * dice) < 1e-5, `${e.loss} vs ${2 * dice} (the mean times the images)`);
});
