import test from 'ava';
import { torch } from '../../src';
import { exactlyEqual, fixture, pick } from '../helpers';

test('rand and randn give PyTorch numbers for the same seed', async (t) => {
  const f = await fixture('init.safetensors');
  torch.manualSeed(0);
  t.true(exactlyEqual(torch.rand([2, 3, 4]), pick(f, 'rand.seed0')));
  t.true(exactlyEqual(torch.randn([5]), pick(f, 'randn.seed0')));
  torch.manualSeed(42);
  t.true(exactlyEqual(torch.randn([2, 2]), pick(f, 'randn.seed42')));
});

test('tensor() from TypedArrays keeps their dtype and copies the data', (t) => {
  const data = new Float32Array([1, 2, 3, 4, 5, 6]);
  const T = torch.tensor(data, { shape: [1, 2, 3] });
  t.deepEqual(T.shape, [1, 2, 3]);
  t.is(T.dtype, 'float32');
  data[0] = 100;
  const copy = T.toTypedArray();
  t.true(copy instanceof Float32Array);
  t.deepEqual(Array.from(copy as Float32Array), [1, 2, 3, 4, 5, 6]);
  t.is(torch.tensor(new Float64Array(2)).dtype, 'float64');
  t.is(torch.tensor(new Int32Array(2)).dtype, 'int32');
  t.is(torch.tensor(new Uint8Array(2)).dtype, 'uint8');
  const big = torch.tensor(new BigInt64Array([-(2n ** 40n), 7n]));
  t.is(big.dtype, 'int64');
  t.deepEqual(Array.from(big.toTypedArray() as BigInt64Array), [-(2n ** 40n), 7n]);
  t.is(torch.tensor(new Uint8Array([0, 1, 1]), { dtype: 'bool' }).dtype, 'bool');
  const tracked = torch.ones([2], { requiresGrad: true }).mul(3);
  t.deepEqual(Array.from(tracked.toTypedArray() as Float32Array), [3, 3], 'also on tensors that track gradients');
  t.is(torch.tensor(new Float32Array([1.7]), { dtype: 'int64' }).item(), 1);
});

test('tensor() reads TypedArrays over a SharedArrayBuffer; thread counts are range-checked', (t) => {
  const shared = new Float32Array(new SharedArrayBuffer(16));
  shared.set([1, 2, 3, 4]);
  t.deepEqual(torch.tensor(shared, { shape: [2, 2] }).toArray(), [
    [1, 2],
    [3, 4],
  ]);
  t.throws(() => torch.setNumThreads(2 ** 32 + 1), {
    message: /threads: expected an integer in \[1, 65536\], got 4294967297/,
  });
  t.throws(() => torch.setNumThreads(0), { message: /threads: expected an integer in \[1, 65536\]/ });
});

test('tensor() from nested arrays infers shape and dtype like torch.tensor', (t) => {
  const ints = torch.tensor([
    [1, 2],
    [3, 4],
  ]);
  t.deepEqual(ints.shape, [2, 2]);
  t.is(ints.dtype, 'int64');
  t.deepEqual(ints.toArray(), [
    [1, 2],
    [3, 4],
  ]);
  t.is(torch.tensor([0.5, 1]).dtype, 'float32');
  t.is(torch.tensor([true, false]).dtype, 'bool');
  t.is(torch.tensor(3.5).ndim, 0);
  t.throws(() => torch.tensor([[1, 2], [3]]), { message: /ragged/ });
  t.throws(() => torch.tensor([1, 'a' as unknown as number]), { message: /only numbers/ });
  t.throws(() => torch.tensor(new Float32Array(5), { shape: [2, 3] }), { message: /5 elements.*needs 6/ });
});

test('factories: zeros ones full arange and their options', (t) => {
  t.deepEqual(torch.zeros([2]).toArray(), [0, 0]);
  t.deepEqual(torch.ones([2], { dtype: 'int32' }).toArray(), [1, 1]);
  t.deepEqual(torch.full([3], 2.5).toArray(), [2.5, 2.5, 2.5]);
  const r = torch.arange(4);
  t.is(r.dtype, 'int64');
  t.deepEqual(r.toArray(), [0, 1, 2, 3]);
  t.deepEqual(torch.arange(0, 1, 0.25).toArray(), [0, 0.25, 0.5, 0.75]);
  t.true(torch.zeros([1], { requiresGrad: true }).requiresGrad);
  t.throws(() => torch.zeros([-1]), { message: /shape\[0\] must be an integer >= 0/ });
  t.throws(() => torch.zeros([2.5]), { message: /integer/ });
  t.throws(() => torch.zeros([2], { dtype: 'complex' as never }), { message: /dtype: expected one of/ });
});

test('shape ops: reshape permute unsqueeze squeeze narrow slice flatten', (t) => {
  const x = torch.arange(6).reshape([2, 3]);
  t.deepEqual(x.permute([1, 0]).toArray(), [
    [0, 3],
    [1, 4],
    [2, 5],
  ]);
  t.deepEqual(x.unsqueeze(0).shape, [1, 2, 3]);
  t.deepEqual(x.unsqueeze(0).squeeze().shape, [2, 3]);
  t.deepEqual(x.unsqueeze(1).squeeze(1).shape, [2, 3]);
  t.deepEqual(x.narrow(1, 1, 2).toArray(), [
    [1, 2],
    [4, 5],
  ]);
  t.deepEqual(x.slice(1, 0, undefined, 2).toArray(), [
    [0, 2],
    [3, 5],
  ]);
  t.deepEqual(x.flatten().shape, [6]);
  t.throws(() => x.reshape([4, 2]), { message: /shape '\[4, 2\]' is invalid for input of size 6/ });
  t.throws(() => x.permute([0]), { message: /permute/ });
});

test('reductions and arithmetic follow PyTorch type promotion', (t) => {
  const x = torch.tensor([
    [1, 5, 3],
    [4, 2, 6],
  ]);
  t.is(x.sum().item(), 21);
  t.deepEqual(x.sum(0).toArray(), [5, 7, 9]);
  t.deepEqual(x.float().mean(1, true).toArray(), [[3], [4]]);
  t.deepEqual(x.argmax(1).toArray(), [1, 2]);
  t.is(x.argmax().item(), 5);
  t.is(x.max().item(), 6);
  const half = x.mul(0.5);
  t.is(half.dtype, 'float32');
  t.deepEqual(half.toArray(), [
    [0.5, 2.5, 1.5],
    [2, 1, 3],
  ]);
  t.is(x.add(1).dtype, 'int64');
  t.deepEqual(x.div(2).toArray(), [
    [0.5, 2.5, 1.5],
    [2, 1, 3],
  ]);
  t.deepEqual(x.sub(x).sum().item(), 0);
  t.deepEqual(x.eq(torch.tensor([1, 2, 3])).toArray(), [
    [true, false, true],
    [false, true, false],
  ]);
  t.deepEqual(
    torch
      .tensor([[1, 2]])
      .float()
      .matmul(torch.tensor([[3], [4]]).float())
      .toArray(),
    [[11]],
  );
  t.throws(() => x.add(torch.ones([4])), { message: /size of tensor a \(3\) must match the size of tensor b \(4\)/ });
});

test('cat, stack and indexing by a tensor (the chapter colormap[X, :])', (t) => {
  const a = torch.tensor([[1, 2]]);
  const b = torch.tensor([[3, 4]]);
  t.deepEqual(torch.cat([a, b]).toArray(), [
    [1, 2],
    [3, 4],
  ]);
  t.deepEqual(torch.stack([a, b], 1).shape, [1, 2, 2]);
  const colormap = torch.tensor([
    [0, 0, 0],
    [128, 0, 0],
    [0, 128, 0],
  ]);
  const pred = torch.tensor([
    [2, 0],
    [1, 1],
  ]);
  const image = colormap.index([pred]);
  t.deepEqual(image.shape, [2, 2, 3]);
  t.deepEqual(image.toArray(), [
    [
      [0, 128, 0],
      [0, 0, 0],
    ],
    [
      [128, 0, 0],
      [128, 0, 0],
    ],
  ]);
  t.deepEqual(colormap.index([null, torch.tensor([0])]).toArray(), [[0], [128], [0]]);
  t.throws(() => colormap.index([torch.tensor([7])]), { message: /out of bounds/ });
});

test('item, toString, to and copy_', (t) => {
  const x = torch.tensor([1.5]);
  t.is(x.item(), 1.5);
  t.throws(() => torch.zeros([2]).item(), { message: /exactly one element/ });
  t.regex(torch.zeros([2, 2]).toString(), /Tensor\(shape=\[2, 2\], dtype=float32, device=cpu\)/);
  t.regex(torch.zeros([100, 100]).toString(), /^Tensor\(shape=\[100, 100\]/);
  t.is(x.to('float64').dtype, 'float64');
  t.is(x.to({ dtype: 'int32', device: 'cpu' }).dtype, 'int32');
  t.is(x.long().dtype, 'int64');
  const dst = torch.zeros([2, 2]);
  dst.copy_(torch.tensor([1, 2]));
  t.deepEqual(dst.toArray(), [
    [1, 2],
    [1, 2],
  ]);
});

test.serial('dispose frees a tensor and later use throws', (t) => {
  const before = torch.liveTensors();
  const x = torch.ones([1000]);
  t.is(torch.liveTensors(), before + 1);
  x.dispose();
  t.is(torch.liveTensors(), before);
  t.true(x.isDisposed);
  t.throws(() => x.shape, { message: /disposed/ });
  t.throws(() => x.add(1), { message: /disposed/ });
  t.notThrows(() => x.dispose());
});

test.serial('tidy frees everything made inside except what it returns', async (t) => {
  const before = torch.liveTensors();
  const kept = torch.tidy(() => {
    const a = torch.ones([10]);
    const b = a.mul(2).add(1);
    return { result: b.sum(), list: [b] };
  });
  t.is(torch.liveTensors(), before + 2);
  t.is(kept.result.item(), 30);
  const outer = torch.tidy(() => {
    const inner = torch.tidy(() => torch.ones([3]).mul(3));
    return inner.sum();
  });
  t.is(outer.item(), 9);
  const fromAsync = await torch.tidy(async () => {
    const a = torch.ones([4]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    return a.mul(2);
  });
  t.deepEqual(fromAsync.toArray(), [2, 2, 2, 2]);
  t.throws(() =>
    torch.tidy(() => {
      torch.ones([1]);
      throw new Error('boom');
    }),
  );
  for (const x of [kept.result, kept.list[0], outer, fromAsync]) x.dispose();
  t.is(torch.liveTensors(), before);
});

test.serial('tensors nobody disposes are freed by the garbage collector', async (t) => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc (the ava config passes it)');
  const before = torch.liveTensors();
  let kept = Array.from({ length: 200 }, () => torch.ones([256, 256]).mul(2));
  t.true(torch.liveTensors() >= before + 200);
  kept = [];
  for (let round = 0; round < 5 && torch.liveTensors() > before + 10; round++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  t.true(torch.liveTensors() <= before + 10, `${torch.liveTensors() - before} handles still alive`);
  t.is(kept.length, 0);
});
