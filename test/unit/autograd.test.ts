import test from 'ava';
import { nn, optim, torch } from '../../src';

test('backward fills grad of leaves; noGrad records nothing', (t) => {
  const w = torch.tensor([1, 2, 3], { dtype: 'float32', requiresGrad: true });
  const y = w.mul(w).sum();
  t.true(y.requiresGrad);
  y.backward();
  t.deepEqual(w.grad?.toArray(), [2, 4, 6]);
  const z = torch.noGrad(() => w.mul(2));
  t.false(z.requiresGrad);
  t.true(torch.isGradEnabled());
  t.throws(() => torch.ones([2], { requiresGrad: true }).mul(2).backward(), {
    message: /grad can be implicitly created only for scalar outputs/,
  });
});

test('an async call started inside noGrad runs without autograd to its end', async (t) => {
  const net = new nn.Sequential(new nn.Conv2d(1, 2, { kernelSize: 3 }));
  const x = torch.ones([1, 1, 5, 5]);
  const pending = torch.noGrad(() => net.forwardAsync(x));
  t.true(torch.isGradEnabled(), 'restored when fn returns');
  t.false((await pending).requiresGrad);
  t.true((await net.forwardAsync(x)).requiresGrad);
});

test('SGD with weight decay and momentum updates as PyTorch documents', (t) => {
  const w = torch.tensor([1], { dtype: 'float32', requiresGrad: true });
  const sgd = new optim.SGD([w], { lr: 0.1, weightDecay: 0.5 });
  w.mul(2).sum().backward(); // grad 2, plus decay 0.5 * 1
  sgd.step();
  t.true(Math.abs((w.item() as number) - (1 - 0.1 * 2.5)) < 1e-7);
  sgd.zeroGrad();
  t.is(w.grad, null);
  t.throws(() => new optim.SGD([torch.ones([1])], { lr: 0.1 }), { message: /does not require grad/ });
  t.throws(() => new optim.SGD([w], { lr: -1 }), { message: /lr: expected a finite number >= 0/ });
  t.throws(() => new optim.SGD([], { lr: 1 }), { message: /params is empty/ });
});

test('crossEntropy: values, ignoreIndex, reductions and bad targets', (t) => {
  const logits = torch.zeros([1, 2, 1, 2]);
  const target = torch.tensor([[[0, 255]]]);
  const none = nn.functional.crossEntropy(logits, target, { reduction: 'none', ignoreIndex: 255 });
  t.deepEqual(none.shape, [1, 1, 2]);
  const [a, b] = Array.from(none.toTypedArray() as Float32Array);
  t.true(Math.abs(a - Math.LN2) < 1e-6);
  t.is(b, 0);
  const mean = nn.functional.crossEntropy(logits, target, { ignoreIndex: 255 }).item() as number;
  t.true(Math.abs(mean - Math.LN2) < 1e-6);
  t.throws(() => nn.functional.crossEntropy(logits, torch.tensor([[[0, 7]]])), { message: /out of bounds|Target 7/ });
  t.throws(() => nn.functional.crossEntropy(logits, torch.zeros([1, 1, 2], { dtype: 'int32' })), {
    message: /target must be int64/,
  });
  t.throws(() => nn.functional.crossEntropy(logits, target, { reduction: 'avg' as never }), { message: /reduction/ });
});
