import path from 'node:path';
import { Worker } from 'node:worker_threads';
import test from 'ava';
import { load, nn, save, torch } from '../../src';
import { loopTurnsWhile } from '../helpers';

const root = path.resolve(__dirname, '..', '..', '..');

test('unknown devices and CUDA on a CPU build are clear errors', (t) => {
  t.throws(() => torch.zeros([1], { device: 'gpu' as never }), { message: /unknown device 'gpu'/ });
  if (!torch.cuda.isAvailable()) {
    t.throws(() => torch.zeros([1], { device: 'cuda' }), { message: /no CUDA support|CUDA device/ });
    t.throws(() => torch.zeros([1]).to('cuda:1'), { message: /no CUDA support|CUDA device/ });
    t.throws(() => nn.resnet18().to('cuda'), { message: /no CUDA support|CUDA device/ });
  }
  t.is(torch.zeros([1], { device: 'cpu' }).device, 'cpu');
  t.regex(torch.version, /^2\.\d+\.\d+/);
});

test('forwardAsync leaves the event loop free while the model runs', async (t) => {
  const net = new nn.Sequential(...nn.resnet18().children().slice(0, -2));
  const X = torch.rand([2, 3, 320, 480]);
  const { value: Y, turns } = await loopTurnsWhile(net.forwardAsync(X));
  t.deepEqual(Y.shape, [2, 512, 10, 15]);
  t.true(turns > 0, 'the event loop did not turn while the forward ran');
});

test('16 concurrent forwardAsync calls on one model give the sequential results', async (t) => {
  torch.manualSeed(11);
  const net = new nn.Sequential(new nn.Conv2d(3, 8, { kernelSize: 3, padding: 1 }), new nn.ReLU()).eval();
  const inputs = Array.from({ length: 16 }, () => torch.rand([1, 3, 24, 24]));
  const sequential = inputs.map((x) => net.forward(x));
  const concurrent = await Promise.all(inputs.map((x) => net.forwardAsync(x)));
  concurrent.forEach((y, i) => {
    t.true(y.sub(sequential[i]).abs().max().item() === 0, `call ${i}`);
  });
});

test('async errors reject with a message and the caller stack', async (t) => {
  const conv = new nn.Conv2d(512, 21, { kernelSize: 1 });
  const err = await t.throwsAsync(conv.forwardAsync(torch.rand([1, 3, 4, 4])), { message: /512 channels/ });
  t.regex(err?.stack ?? '', /system\.test/);
  // Bad arguments to async APIs reject; they never throw synchronously.
  const bad = conv.forwardAsync('x' as never);
  t.true(bad instanceof Promise);
  await t.throwsAsync(bad, { message: /input: expected a Tensor, got string/ });
  await t.throwsAsync(load(42 as never), { message: /path must be a string/ });
  await t.throwsAsync(save(new Map(), 'x.pth'), { message: /ending in \.safetensors/ });
});

test('the addon loads and works in two worker_threads at once', async (t) => {
  const script = `
    const { parentPort } = require('node:worker_threads');
    const { torch, nn } = require(${JSON.stringify(path.join(root, 'dist', 'src'))});
    const conv = new nn.Conv2d(3, 2, { kernelSize: 3 });
    conv.forwardAsync(torch.ones([1, 3, 5, 5])).then((y) => parentPort.postMessage(y.shape));
  `;
  const run = () =>
    new Promise<number[]>((resolve, reject) => {
      const worker = new Worker(script, { eval: true });
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  t.deepEqual(await Promise.all([run(), run()]), [
    [1, 2, 3, 3],
    [1, 2, 3, 3],
  ]);
});
