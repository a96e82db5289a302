/**
 * The bad-input catalogue: each case must end in a JS Error whose message says what was
 * wrong (async APIs reject rather than throw), and the process must go on working.
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import {
  createFcn,
  load,
  loadCheckpoint,
  nn,
  optim,
  predict,
  save,
  type Tensor,
  Trainer,
  torch,
  train,
  voc,
} from '../../src';
import { fixtures, repeatBatch, scratchDir } from '../helpers';

const tmp = scratchDir('fcn-torch-bad-');
const file = (name: string, bytes: Uint8Array | string) => {
  const target = path.join(tmp, name);
  fs.writeFileSync(target, bytes);
  return target;
};
const disposed = () => {
  const t = torch.ones([2]);
  t.dispose();
  return t;
};
const conv = () => new nn.Conv2d(3, 4, { kernelSize: 3 });
const small = () => createFcn({ numClasses: 3 });
const sgd = (net: nn.Module) => new optim.SGD(net.parameters(), { lr: 0.1 });

type Case = [string, () => unknown, RegExp];

const cases: Case[] = [
  // tensors
  ['negative size', () => torch.zeros([2, -1]), /-1|negative/i],
  ['NaN size', () => torch.zeros([Number.NaN]), /integer/],
  ['fractional size', () => torch.ones([1.5]), /integer/],
  ['a size past int64', () => torch.empty([2 ** 40, 2 ** 30]), /more elements than int64 can count/],
  ['an allocation past memory', () => torch.empty([2 ** 25, 2 ** 25]), /allocate|memory/i],
  ['unknown dtype', () => torch.zeros([2], { dtype: 'float16' as 'float32' }), /dtype/],
  ['ragged nested array', () => torch.tensor([[1, 2], [3]]), /ragged|shape|length/i],
  ['data and shape disagree', () => torch.tensor(new Float32Array(5), { shape: [2, 3] }), /5|6|shape/],
  ['use after dispose', () => disposed().add(1), /disposed/],
  ['item of a disposed tensor', () => disposed().item(), /disposed/],
  ['reshape to a wrong size', () => torch.ones([6]).reshape([4, 2]), /shape '\[4, 2\]' is invalid for input of size 6/],
  ['matmul shape mismatch', () => torch.ones([2, 3]).matmul(torch.ones([2, 3])), /cannot be multiplied|shapes/],
  [
    'add shapes that do not broadcast',
    () => torch.ones([2, 3]).add(torch.ones([4])),
    /size of tensor a \(3\) must match/,
  ],
  ['narrow past the end', () => torch.ones([4]).narrow(0, 3, 5), /start \(3\) \+ length \(5\) exceeds/],
  ['index with a float tensor', () => torch.ones([4]).index([torch.ones([2])]), /long|int|bool|byte/i],
  ['item of a many-element tensor', () => torch.ones([3]).item(), /one element|1 element|numel/i],
  ['backward of a non-scalar', () => torch.ones([3], { requiresGrad: true }).mul(2).backward(), /scalar/],
  ['arange with step 0', () => torch.arange(0, 4, 0), /step must not be 0/],
  // modules
  [
    'Conv2d channel mismatch',
    () => conv().forward(torch.rand([1, 5, 8, 8])),
    /expected input\[1, 5, 8, 8\] to have 3 channels/,
  ],
  ['Conv2d wrong rank', () => conv().forward(torch.rand([8, 8])), /3D|4D|dim/],
  ['Conv2d zero channels', () => new nn.Conv2d(0, 4, { kernelSize: 3 }), /inChannels|channels/],
  ['Conv2d negative kernel', () => new nn.Conv2d(3, 4, { kernelSize: -3 }), /kernelSize|kernel/],
  [
    'Conv2d bad padding mode',
    () => new nn.Conv2d(3, 4, { kernelSize: 3, paddingMode: 'mirror' as 'zeros' }),
    /paddingMode/,
  ],
  ['groups that do not divide', () => new nn.Conv2d(3, 4, { kernelSize: 3, groups: 2 }), /groups|divisible/],
  ['Linear feature mismatch', () => new nn.Linear(4, 2).forward(torch.rand([3, 5])), /cannot be multiplied|shapes/],
  [
    'loadStateDict shape mismatch',
    () => conv().loadStateDict({ weight: torch.zeros([1]), bias: torch.zeros([4]) }),
    /shape mismatch for weight/,
  ],
  [
    'loadStateDict missing key',
    () => conv().loadStateDict({ weight: torch.zeros([4, 3, 3, 3]) }),
    /missing keys: bias/,
  ],
  ['get an unknown child', () => createFcn().get('head'), /has no child 'head'/],
  [
    'forward with a non-tensor',
    () => conv().forward([1, 2] as unknown as Tensor),
    /input: expected a Tensor, got an array/,
  ],
  ['unknown architecture', () => createFcn({ arch: 'fcn2s' as 'fcn8s' }), /arch: expected one of/],
  // devices
  ['an unknown device', () => torch.zeros([2], { device: 'tpu' as 'cpu' }), /unknown device 'tpu'/],
  ['cuda on a CPU build', () => torch.zeros([2], { device: 'cuda:3' }), /CUDA/],
  ['model to an unknown device', () => conv().to('gpu' as 'cpu'), /device/],
  // losses and optimizers
  [
    'cross-entropy target out of range',
    () => nn.functional.crossEntropy(torch.rand([2, 3]), torch.tensor([0, 7], { dtype: 'int64' })),
    /out of bounds|7/,
  ],
  [
    'cross-entropy float logits with int32 targets',
    () => nn.functional.crossEntropy(torch.rand([2, 3]), torch.tensor([0, 1], { dtype: 'int32' })),
    /int64/,
  ],
  [
    'cross-entropy on integer logits',
    () => nn.functional.crossEntropy(torch.ones([2, 3], { dtype: 'int64' }), torch.tensor([0, 1], { dtype: 'int64' })),
    /float32 or float64 logits/,
  ],
  ['negative learning rate', () => new optim.SGD(conv().parameters(), { lr: -1 }), /lr: expected a finite number >= 0/],
  ['SGD over nothing', () => new optim.SGD([], { lr: 0.1 }), /params is empty/],
  [
    'training labels out of range',
    () => {
      const net = small();
      const X = torch.rand([2, 3, 64, 64]);
      const bad = repeatBatch(X, torch.full([2, 64, 64], 9, { dtype: 'int64' }));
      return train(net, bad, bad, { epochs: 1, optimizer: sgd(net), log: null, progress: false });
    },
    /label 9 is not a class of the model's 3 outputs/,
  ],
  [
    'train step with float labels',
    () => {
      const net = small();
      return new Trainer(net, sgd(net)).step(torch.rand([1, 3, 32, 32]), torch.zeros([1, 32, 32]));
    },
    /labels must be an int64 tensor \[B, H, W\], got float32 \[1, 32, 32\]/,
  ],
  [
    'a train step on an evaluation-only trainer',
    () => new Trainer(small(), null).step(torch.rand([1, 3, 32, 32]), torch.zeros([1, 32, 32], { dtype: 'int64' })),
    /only evaluates/,
  ],
  [
    'predict with a float64 image',
    () => predict(small(), torch.rand([3, 64, 64], { dtype: 'float64' })),
    /image: expected uint8 pixels/,
  ],
  // weight files
  ['load a missing file', () => load(path.join(tmp, 'nope.pth')), /no weights file at/],
  ['load a text file', () => load(file('text.pth', 'hello, not weights')), /cannot load .*text\.pth/],
  [
    'load a truncated safetensors',
    () => load(file('cut.safetensors', fs.readFileSync(path.join(fixtures, 'python.safetensors')).subarray(0, 100))),
    /cannot load/,
  ],
  ['load a pickle that asks for os.system', () => load(path.join(fixtures, 'evil.pth')), /os|system|global/i],
  [
    'save to a non-safetensors name',
    () => save({ a: torch.ones([1]) }, path.join(tmp, 'x.pth')),
    /path ending in \.safetensors/,
  ],
  [
    'save into a missing folder',
    () => save({ a: torch.ones([1]) }, path.join(tmp, 'no', 'dir', 'x.safetensors')),
    /cannot write/,
  ],
  [
    'a weights file is not a checkpoint',
    () => loadCheckpoint(path.join(fixtures, 'python.safetensors')),
    /not an fcn-torch checkpoint/,
  ],
  // datasets
  [
    'a VOC folder without split files',
    () => voc.loadDataVoc(2, [32, 32], { root: tmp, log: null }),
    /no split file|ImageSets/,
  ],
  [
    'a zero batch size',
    () => voc.loadDataVoc(0, [32, 32], { root: tmp, log: null }),
    /batchSize: expected an integer >= 1/,
  ],
  [
    'a synthetic VOC of 1 image',
    () => voc.synthesize(path.join(tmp, 'one'), { count: 1 }),
    /count: expected an integer >= 2/,
  ],
];

test(`the bad-input catalogue: ${cases.length} cases, each a clear JS Error, the process lives on`, async (t) => {
  t.true(cases.length >= 40);
  for (const [name, fn, message] of cases) {
    let outcome: unknown;
    try {
      outcome = fn();
    } catch (err) {
      t.true(err instanceof Error, `${name}: threw a non-Error`);
      t.regex((err as Error).message, message, name);
      continue;
    }
    t.true(outcome instanceof Promise, `${name}: neither threw nor returned a promise`);
    const err = await t.throwsAsync(outcome as Promise<unknown>, undefined, `${name}: did not reject`);
    if (err) t.regex(err.message, message, name);
  }
  // Still alive and computing.
  t.deepEqual(torch.ones([2]).add(1).toTypedArray(), new Float32Array([2, 2]));
});
