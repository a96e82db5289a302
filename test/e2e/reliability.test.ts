/**
 * Long runs, concurrency and crashes: memory stays flat, concurrent calls are serialised
 * safely, the event loop keeps ticking, and a killed or interrupted training run keeps its
 * last good checkpoint.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import { createFcn, loadCheckpoint, nn, optim, predict, Trainer, torch, train, voc } from '../../src';
import { cli, loopTurnsWhile, scratchDir } from '../helpers';

const tmp = scratchDir('fcn-torch-reliability-');
const gc = () => (globalThis as { gc?: () => void }).gc?.();

function rssAfterGc(): number {
  gc();
  return process.memoryUsage().rss;
}

test.serial('300 training steps and 2000 forward calls keep RSS flat and live tensors at baseline', async (t) => {
  // Handles made while building (parameters listed for SGD, init kernels) are freed by tidy.
  const net = torch.tidy(() => createFcn({ numClasses: 5 }));
  const trainer = torch.tidy(() => new Trainer(net, new optim.SGD(net.parameters(), { lr: 0.01 })));
  const X = torch.rand([2, 3, 64, 64]);
  const Y = torch.tidy(() => torch.keep(torch.rand([2, 64, 64]).mul(5).to('int64')));
  const baseline = torch.liveTensors();
  const rss: number[] = [];
  for (let step = 0; step < 300; step++) {
    await trainer.step(X, Y);
    if (step === 49 || step === 299) rss.push(rssAfterGc()); // after warm-up, and at the end
  }
  t.is(torch.liveTensors(), baseline);
  const trainGrowth = rss[1] / rss[0] - 1;
  t.true(trainGrowth < 0.05, `training RSS grew ${(trainGrowth * 100).toFixed(1)}% (${rss.map((r) => r >> 20)} MB)`);

  const small = new nn.Sequential(new nn.Conv2d(3, 8, { kernelSize: 3, padding: 1 }), new nn.ReLU()).eval();
  const input = torch.rand([1, 3, 32, 32]);
  const before: number[] = [];
  for (let i = 0; i < 2000; i++) {
    await torch.tidy(async () => {
      await small.forwardAsync(input);
    });
    if (i === 199) before.push(rssAfterGc(), torch.liveTensors());
  }
  const growth = rssAfterGc() / before[0] - 1;
  t.is(torch.liveTensors(), before[1]); // rssAfterGc collected the unreferenced handles
  t.true(growth < 0.05, `forward RSS grew ${(growth * 100).toFixed(1)}%`);
});

test.serial(
  'predicting and synchronous calls during training are serialised; the event loop keeps ticking',
  async (t) => {
    const root = await voc.synthesize(path.join(tmp, 'voc'), { count: 24, height: 72, width: 104 });
    const { trainIter, testIter } = await voc.loadDataVoc(4, [64, 96], { root, log: null });
    const net = createFcn({ numClasses: 21 });
    const training = train(net, trainIter, testIter, {
      epochs: 2,
      optimizer: new optim.SGD(net.parameters(), { lr: 0.01 }),
      log: null,
      progress: false,
    });
    const image = torch.rand([3, 64, 96]).mul(255).to('uint8');
    let predictions = 0;
    let done = false;
    training.finally(() => {
      done = true;
    });
    while (!done) {
      // Each prediction waits for the training step in flight, then runs: the loop turns meanwhile.
      const { value: labels, turns } = await loopTurnsWhile(predict(net, image, { mode: 'crop', cropSize: [64, 96] }));
      t.deepEqual(labels.shape, [64, 96]);
      t.true(turns > 0, `prediction ${predictions} held the event loop`);
      predictions++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const history = await training;
    t.is(history.length, 2);
    t.true(predictions > 0);
  },
);

function waitFor(proc: ChildProcess, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (pattern.test(seen)) {
        proc.stdout?.off('data', onData);
        resolve();
      }
    };
    proc.stdout?.on('data', onData);
    proc.on('exit', () => reject(new Error(`exited before ${pattern}: ${seen}`)));
  });
}

function exitOf(proc: ChildProcess): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  let stderr = '';
  proc.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal, stderr })));
}

test.serial('SIGKILL in the middle of checkpoint saves leaves the last complete checkpoint loadable', async (t) => {
  const file = path.join(tmp, 'saving.safetensors');
  // A child that saves a ResNet-sized checkpoint over and over, epoch after epoch.
  const script = `
    const { createFcn, saveCheckpoint } = require(${JSON.stringify(path.resolve(__dirname, '..', '..', 'src'))});
    (async () => {
      const model = createFcn();
      for (let epoch = 1; ; epoch++) {
        await saveCheckpoint(${JSON.stringify(file)}, { model, epoch, history: [], config: {} });
        console.log('saved ' + epoch);
      }
    })();`;
  const child = spawn(process.execPath, ['-e', script]);
  const exit = exitOf(child);
  await waitFor(child, /saved 2/);
  await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 200));
  child.kill('SIGKILL');
  t.is((await exit).signal, 'SIGKILL');
  const saved = await loadCheckpoint(file);
  t.true(saved.epoch >= 2);
  t.is(saved.model.size, createFcn().stateDict().size);
});

test.serial(
  'SIGKILL during training keeps the last checkpoint loadable; --resume continues; Ctrl-C exits cleanly',
  async (t) => {
    const root = await voc.synthesize(path.join(tmp, 'kill-voc'), { count: 40, height: 72, width: 104 });
    const out = path.join(tmp, 'kill-run');
    const args = [cli, 'train', '--data', root, '--crop', '64x96', '--batch-size', '2', '--out', out, '--threads', '1'];
    // Killed at once after the first epoch's line: mid-way through the next epoch or its save.
    const first = spawn(process.execPath, [...args, '--epochs', '3']);
    const firstExit = exitOf(first);
    await waitFor(first, /epoch 1\/3/);
    await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 700));
    first.kill('SIGKILL');
    t.is((await firstExit).signal, 'SIGKILL');
    const checkpoint = path.join(out, 'checkpoint.safetensors');
    const saved = await loadCheckpoint(checkpoint);
    t.true(saved.epoch >= 1);
    t.is(saved.history.length, saved.epoch);

    // Resume, then interrupt with SIGINT: a one-line message, exit code 130, checkpoint kept.
    const second = spawn(process.execPath, [...args, '--epochs', '6', '--resume']);
    const secondExit = exitOf(second);
    await waitFor(second, /epoch \d\/6/);
    second.kill('SIGINT');
    const { code, stderr } = await secondExit;
    t.is(code, 130);
    t.regex(stderr, /fcn train: interrupted; the last complete epoch's checkpoint is/);
    const after = await loadCheckpoint(checkpoint);
    t.true(after.epoch > saved.epoch);
    t.is(after.history.length, after.epoch);
  },
);
