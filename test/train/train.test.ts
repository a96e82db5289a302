import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { createFcn, load, loadCheckpoint, nn, optim, type Tensor, Trainer, torch, train, voc } from '../../src';
import { fixture, fixtures, maxAbsDiff, pick, repeatBatch, scratchDir, syntheticVoc } from '../helpers';

const tmp = scratchDir('fcn-torch-train-');
const quiet = { log: null, progress: false } as const;

/** A small synthetic VOC shared by the tests of this file. */
const vocTree = () =>
  syntheticVoc(path.join(tmp, 'voc'), { count: 160, height: 72, width: 104, seed: 5, classes: [1, 2, 3, 4, 5] });

async function data(batchSize = 8) {
  return voc.loadDataVoc(batchSize, [64, 96], { root: await vocTree(), log: null, seed: 1 });
}

test("train steps equal PyTorch's: chapter loss, SGD with weight decay, 3 steps", async (t) => {
  const f = await fixture('fcn-sgd.safetensors');
  const pretrained = nn.resnet18();
  pretrained.loadStateDict(await load(path.join(fixtures, 'resnet18-strided.pth')));
  const net = createFcn({ backbone: pretrained });
  net.get('final_conv').weight.copy_(pick(f, 'final_conv.weight'));
  net.get('final_conv').bias?.copy_(pick(f, 'final_conv.bias'));
  net.get('transpose_conv').bias?.copy_(torch.zeros([21]));
  const optimizer = new optim.SGD(net.parameters(), { lr: 0.001, weightDecay: 1e-3 });
  const batches = repeatBatch(pick(f, 'X'), pick(f, 'Y'));
  const history = await train(net, batches, batches, { epochs: 3, optimizer, ...quiet });
  const expected = Array.from(pick(f, 'losses').toTypedArray() as Float64Array);
  history.forEach((m, i) => {
    const got = m.trainLoss * 2; // PyTorch's number is the sum over the 2 images
    t.true(Math.abs(got - expected[i]) / expected[i] < 1e-4, `epoch ${i + 1}: ${got} vs ${expected[i]}`);
  });
  t.true(maxAbsDiff(net.get('final_conv').weight, pick(f, 'final_conv.weight.after')) < 1e-5);
  t.true(maxAbsDiff(net.get('transpose_conv').bias as Tensor, pick(f, 'transpose_conv.bias.after')) < 1e-5);
});

test('training on synthetic VOC lowers the loss and beats always-background accuracy', async (t) => {
  const { trainIter, testIter } = await data();
  torch.manualSeed(0);
  const net = createFcn({ arch: 'fcn8s' });
  const optimizer = new optim.SGD(net.parameters(), { lr: 0.005, momentum: 0.9, weightDecay: 1e-3 });
  const plot = path.join(tmp, 'curves.svg');
  const history = await train(net, trainIter, testIter, { epochs: 5, optimizer, plot, ...quiet });
  t.is(history.length, 5);
  t.true(history[4].trainLoss < history[0].trainLoss * 0.5, `losses ${history.map((m) => m.trainLoss)}`);
  // Always predicting background gets the background share of the labelled test pixels.
  let background = 0;
  let labelled = 0;
  for await (const { Y } of testIter.epoch(4)) {
    background += Y.eq(0).sum().item() as number;
    labelled += Y.ne(255).sum().item() as number;
  }
  const baseline = background / labelled;
  const last = history[4];
  t.true(last.testAccuracy > baseline + 0.05, `test accuracy ${last.testAccuracy} vs background share ${baseline}`);
  t.true(last.testMeanIoU > 0.5 && last.testMeanIoU <= 1, `test mIoU ${last.testMeanIoU}`);
  t.is(last.testClassIoU.length, 21);
  const svg = fs.readFileSync(plot, 'utf8');
  t.true(svg.startsWith('<svg') && svg.includes('test mIoU') && svg.includes('train loss'));
});

test('resuming from a checkpoint continues exactly as an uninterrupted run', async (t) => {
  const { trainIter, testIter } = await data();
  const run = async (epochs: number, file: string, resumeFrom?: string) => {
    torch.manualSeed(resumeFrom ? 99 : 7); // a resumed model starts from other weights
    const net = createFcn({ arch: 'fcn16s' });
    const optimizer = new optim.SGD(net.parameters(), { lr: 0.005, momentum: 0.9, weightDecay: 1e-3 });
    const resume = resumeFrom ? await loadCheckpoint(resumeFrom) : undefined;
    const history = await train(net, trainIter, testIter, { epochs, optimizer, resume, checkpoint: file, ...quiet });
    return { net, history };
  };
  const whole = await run(3, path.join(tmp, 'whole.safetensors'));
  const first = path.join(tmp, 'part.safetensors');
  await run(1, first);
  const saved = await loadCheckpoint(first);
  t.is(saved.epoch, 1);
  t.true(saved.optimizer.size > 0, 'momentum buffers are saved');
  const resumed = await run(3, first, first);
  t.deepEqual(
    resumed.history.map((m) => m.trainLoss),
    whole.history.map((m) => m.trainLoss),
  );
  t.deepEqual(
    resumed.history.map((m) => m.testMeanIoU),
    whole.history.map((m) => m.testMeanIoU),
  );
  t.is(maxAbsDiff(resumed.net.get('score_fr').weight, whole.net.get('score_fr').weight), 0);
  t.is((await loadCheckpoint(first)).epoch, 3);
});

test('data-parallel over two devices sums gradients as one device would', async (t) => {
  // No BatchNorm: replicas then compute exactly the single-device gradient, split in two.
  const make = () => {
    torch.manualSeed(4);
    return new nn.Sequential(
      new nn.Conv2d(3, 8, { kernelSize: 3, padding: 1 }),
      new nn.ReLU(),
      new nn.Conv2d(8, 21, { kernelSize: 1 }),
    );
  };
  const X = torch.rand([4, 3, 16, 24]);
  const Y = torch.rand([4, 16, 24]).mul(21).to('int64');
  const results = [];
  for (const devices of [['cpu'], ['cpu', 'cpu']] as const) {
    const net = make();
    const optimizer = new optim.SGD(net.parameters(), { lr: 0.1, momentum: 0.5 });
    const history = await train(net, repeatBatch(X, Y, 2), repeatBatch(X, Y), {
      epochs: 2,
      optimizer,
      devices: [...devices],
      ...quiet,
    });
    results.push({ net, history });
  }
  const [one, two] = results;
  two.history.forEach((m, i) => {
    t.true(Math.abs(m.trainLoss - one.history[i].trainLoss) < 1e-5, `epoch ${i + 1}`);
  });
  for (const [name, p] of one.net.namedParameters()) {
    t.true(maxAbsDiff(p, two.net.namedParameters().get(name) as Tensor) < 1e-5, name);
  }
});

test('training errors are clear: labels out of range, wrong output size, missing GPU', async (t) => {
  const net = createFcn({ numClasses: 3 });
  const optimizer = new optim.SGD(net.parameters(), { lr: 0.01 });
  const X = torch.rand([2, 3, 64, 64]);
  const bad = torch.full([2, 64, 64], 7, { dtype: 'int64' });
  await t.throwsAsync(train(net, repeatBatch(X, bad), repeatBatch(X, bad), { epochs: 1, optimizer, ...quiet }), {
    message: /label 7 is not a class of the model's 3 outputs \(0..2\) nor the ignore index 255/,
  });
  const odd = torch.rand([2, 3, 50, 70]);
  const labels = torch.zeros([2, 50, 70], { dtype: 'int64' });
  await t.throwsAsync(
    train(net, repeatBatch(odd, labels), repeatBatch(odd, labels), { epochs: 1, optimizer, ...quiet }),
    {
      message: /the model's output \[2, 3, 64, 96\] does not fit the labels \[2, 50, 70\]/,
    },
  );
  await t.throwsAsync(
    train(net, repeatBatch(X, bad), repeatBatch(X, bad), { epochs: 1, optimizer, devices: ['cuda'], ...quiet }),
    {
      message: /CUDA/,
    },
  );
  await t.throwsAsync(train(net, repeatBatch(X, bad), repeatBatch(X, bad), { epochs: 0, optimizer, ...quiet }), {
    message: /epochs: expected an integer >= 1/,
  });
  await t.throwsAsync(loadCheckpoint(path.join(fixtures, 'python.safetensors')), {
    message: /is not an fcn-torch checkpoint/,
  });
});

test('a step refuses a negative label or a class past the outputs before the loss, changing no weight; ignored pixels are not counted', async (t) => {
  torch.manualSeed(0);
  const net = new nn.Sequential(new nn.Conv2d(3, 4, { kernelSize: 1 }));
  const trainer = new Trainer(net, new optim.SGD(net.parameters(), { lr: 0.1 }));
  const before = net.stateDict();
  const X = torch.rand([2, 3, 8, 8]);
  const labels = (values: number[]) =>
    torch
      .tensor(
        Array.from({ length: 128 }, (_, i) => values[i % values.length]),
        { dtype: 'int64' },
      )
      .reshape([2, 8, 8]);
  await t.throwsAsync(trainer.step(X, labels([0, 1, -2, 255])), {
    message: /label -2 is not a class of the model's 4 outputs \(0..3\) nor the ignore index 255/,
  });
  await t.throwsAsync(trainer.step(X, labels([0, 4, 255])), { message: /label 4 is not a class/ });
  await t.throwsAsync(trainer.evaluate(X, labels([3, 9])), { message: /label 9 is not a class/ });
  for (const [name, p] of net.stateDict()) t.is(maxAbsDiff(p, before.get(name) as Tensor), 0, name);
  const ignored = await trainer.step(X, labels([255]));
  t.deepEqual(ignored, { loss: 0, correct: 0, pixels: 0, updated: true, allReduceWait: 0 });
  const mixed = await trainer.step(X, labels([0, 3, 255, 255]));
  t.is(mixed.pixels, 64);
  t.true(mixed.correct >= 0 && mixed.correct <= 64 && Number.isFinite(mixed.loss) && mixed.loss > 0);
});

test('train() checks its output paths before the first step', async (t) => {
  const { trainIter: batches, testIter } = await data(8);
  let epochsAsked = 0;
  const trainIter = {
    length: batches.length,
    epoch: (e: number) => {
      epochsAsked++;
      return batches.epoch(e);
    },
  };
  const net = createFcn();
  const optimizer = new optim.SGD(net.parameters(), { lr: 0.01 });
  await t.throwsAsync(train(net, trainIter, testIter, { epochs: 1, optimizer, checkpoint: 'run.bin', ...quiet }), {
    message: /checkpoint: expected a path ending in \.safetensors, got 'run\.bin'/,
  });
  await t.throwsAsync(
    train(net, trainIter, testIter, {
      epochs: 1,
      optimizer,
      checkpoint: path.join(tmp, 'nope', 'c.safetensors'),
      ...quiet,
    }),
    { message: /checkpoint: the folder '.*nope' of '.*c\.safetensors' does not exist/ },
  );
  await t.throwsAsync(train(net, trainIter, testIter, { epochs: 1, optimizer, plot: 'curves.pdf', ...quiet }), {
    message: /plot: expected a path ending in \.svg or \.png/,
  });
  t.is(epochsAsked, 0, 'no epoch ran');
});

test('an aborted run stops between steps and keeps the last checkpoint', async (t) => {
  const { trainIter, testIter } = await data(8);
  const file = path.join(tmp, 'abort.safetensors');
  const net = createFcn();
  const optimizer = new optim.SGD(net.parameters(), { lr: 0.01 });
  await train(net, trainIter, testIter, { epochs: 1, optimizer, checkpoint: file, ...quiet });
  const before = fs.readFileSync(file);
  const controller = new AbortController();
  const run = train(net, trainIter, testIter, {
    epochs: 3,
    optimizer,
    checkpoint: file,
    resume: await loadCheckpoint(file),
    signal: controller.signal,
    ...quiet,
  });
  controller.abort();
  await t.throwsAsync(run, { name: 'AbortError', message: /aborted/ });
  t.true(fs.readFileSync(file).equals(before));
});

for (const kind of ['chapter', 'torchvision'] as const) {
  test(`accumulate 2 (${kind} loss): two batches make the update one batch of both makes`, async (t) => {
    const net = () => {
      torch.manualSeed(3);
      return new nn.Sequential(
        new nn.Conv2d(3, 6, { kernelSize: 3, padding: 1 }),
        new nn.ReLU(),
        new nn.Conv2d(6, 4, { kernelSize: 1 }),
      );
    };
    torch.manualSeed(9);
    const X = torch.rand([4, 3, 8, 12]);
    const Y = torch.rand([4, 8, 12]).mul(4).to('int64'); // every pixel labelled: equal counts per half
    const whole = net();
    const wholeTrainer = new Trainer(whole, new optim.SGD(whole.parameters(), { lr: 0.1 }), { loss: { kind } });
    const one = await wholeTrainer.step(X, Y);
    t.true(one.updated);
    const parts = net();
    const partsTrainer = new Trainer(parts, new optim.SGD(parts.parameters(), { lr: 0.1 }), {
      loss: { kind },
      accumulate: 2,
    });
    const first = await partsTrainer.step(X.narrow(0, 0, 2), Y.narrow(0, 0, 2));
    t.false(first.updated);
    const second = await partsTrainer.step(X.narrow(0, 2, 2), Y.narrow(0, 2, 2));
    t.true(second.updated);
    t.true(Math.abs(first.loss + second.loss - one.loss) < 1e-5 * Math.abs(one.loss));
    for (const [name, p] of whole.namedParameters()) {
      const diff = maxAbsDiff(p, parts.namedParameters().get(name) as Tensor);
      t.true(diff < 1e-6, `${name}: ${diff}`);
    }
    // An accumulation cut short (an epoch's end) updates with what it has; nothing pending: no update.
    await partsTrainer.step(X, Y);
    t.true(await partsTrainer.applyPending());
    t.false(await partsTrainer.applyPending());
    t.throws(() => new Trainer(parts, null, { accumulate: 0 }), { message: /accumulate: expected an integer/ });
  });
}
