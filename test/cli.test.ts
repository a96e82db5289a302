import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { loadCheckpoint } from '../src';
import { cli, runNode } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fcn-torch-cli-'));

/** Runs `fcn args...` in tmp. */
const fcn = (...args: string[]) => runNode([cli, ...args], { cwd: tmp });

let data: Promise<string> | undefined;
async function synthetic(): Promise<string> {
  data ??= fcn('synth', '--out', 'data', '--count', '12', '--height', '72', '--width', '104').then((r) => {
    if (r.code !== 0) throw new Error(r.stderr);
    return r.stdout.trim();
  });
  return data;
}

test.serial('fcn synth, train, train --resume, eval and predict run end to end', async (t) => {
  const root = await synthetic();
  t.true(fs.existsSync(path.join(root, 'ImageSets', 'Segmentation', 'train.txt')));
  const common = ['--data', root, '--crop', '64x96', '--batch-size', '3', '--out', 'run', '--threads', '1'];
  const first = await fcn('train', ...common, '--epochs', '1', '--arch', 'fcn8s', '--init', 'xavier');
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /epoch 1\/1: loss [\d.]+, train acc [\d.]+, test acc [\d.]+, test mIoU [\d.]+/);
  for (const file of ['checkpoint.safetensors', 'model.safetensors', 'curves.svg', 'curves.png', 'history.json']) {
    t.true(fs.existsSync(path.join(tmp, 'run', file)), file);
  }
  const resumed = await fcn('train', ...common, '--epochs', '2', '--resume');
  t.is(resumed.code, 0, resumed.stderr);
  t.regex(resumed.stdout, /resuming after epoch 1 \(fcn8s, crop 64x96, batch 3\)/);
  t.regex(resumed.stdout, /epoch 2\/2/);
  const checkpoint = path.join(tmp, 'run', 'checkpoint.safetensors');
  const saved = await loadCheckpoint(checkpoint);
  t.is(saved.epoch, 2);
  t.is(saved.history.length, 2);
  t.is(saved.config.arch, 'fcn8s');

  const evaluated = await fcn('eval', '--checkpoint', checkpoint, '--data', root, '--batch-size', '2');
  t.is(evaluated.code, 0, evaluated.stderr);
  t.regex(evaluated.stdout, /pixel accuracy 0\.\d+, mean IoU 0\.\d+/);
  t.regex(evaluated.stdout, /background\s+0\.\d+/);
  t.regex(evaluated.stdout, /aeroplane\s+(-|0\.\d+)/);

  const image = path.join(root, 'JPEGImages', 'synth_000000.jpg');
  const crop = await fcn('predict', '--checkpoint', checkpoint, '--out', 'pred', image);
  t.is(crop.code, 0, crop.stderr);
  t.regex(crop.stdout, /synth_000000\.png \(64x96\)/);
  const whole = await fcn('predict', '--checkpoint', checkpoint, '--out', 'pred-full', '--full', image);
  t.is(whole.code, 0, whole.stderr);
  t.regex(whole.stdout, /synth_000000\.png \(72x104\)/);
  t.true(fs.existsSync(path.join(tmp, 'pred-full', 'grid.png')));
});

test('fcn --help lists every command, and each command has --help', async (t) => {
  const help = await fcn('--help');
  t.is(help.code, 0);
  for (const command of ['synth', 'download-voc', 'train', 'eval', 'predict']) {
    t.regex(help.stdout, new RegExp(`\\n  ${command}`));
    const own = await fcn(command, '--help');
    t.is(own.code, 0, command);
    t.regex(own.stdout, /Usage: fcn /);
  }
});

test('user mistakes end in one line on stderr and exit code 1', async (t) => {
  const root = await synthetic();
  const cases: [string[], RegExp][] = [
    [['train', '--data', 'no-such-dir'], /'--data <dir>' argument 'no-such-dir' is invalid\. no such folder/],
    [['train', '--data', root, '--crop', '100x100'], /multiples of 32/],
    [['train', '--data', root, '--arch', 'fcn4s'], /Allowed choices are fcn32s, fcn16s, fcn8s/],
    [['train', '--data', root, '--epochs', 'two'], /expected an integer >= 1/],
    [['train', '--data', root, '--lr', '-1'], /expected a number >= 0/],
    [['train', '--data', root, '--device', 'gpu'], /expected cpu, cuda or cuda:N/],
    [['train', '--data', root, '--crop', '64x96', '--device', 'cuda', '--out', 'gpu'], /^fcn train: .*CUDA/],
    [['train', '--data', root, '--out', 'empty', '--resume'], /^fcn train: .*checkpoint\.safetensors/],
    [
      ['train', '--data', root, '--crop', '480x640', '--out', 'big'],
      /^fcn train: the train split has 0 examples of at least 480x640 .*too few for one batch of 32/,
    ],
    [['eval', '--checkpoint', 'missing.safetensors', '--data', root], /no such file/],
    [
      ['predict', '--checkpoint', path.join(root, 'ImageSets', 'Segmentation', 'val.txt'), 'x.jpg'],
      /no such image file 'x\.jpg'/,
    ],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ];
  for (const [args, message] of cases) {
    const r = await fcn(...args);
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: ${r.stderr}`);
  }
});
