import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { loadCheckpoint } from '../src';
import { cli, fixtures, runNode } from './helpers';

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
    [['train', '--data', root, '--model', 'fcn_resnet18'], /Allowed choices are fcn_resnet50, fcn_resnet101/],
    [['train', '--data', root, '--model', 'fcn_resnet50', '--arch', 'fcn8s'], /--arch is for the chapter's FCN/],
    [['predict', 'x.jpg'], /no such image file 'x\.jpg'/],
  ];
  for (const [args, message] of cases) {
    const r = await fcn(...args);
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: ${r.stderr}`);
  }
});

test.serial('fcn predict --model writes the label map at the photo size, an overlay and a legend', async (t) => {
  const root = await synthetic();
  const image = path.join(root, 'JPEGImages', 'synth_000001.jpg');
  const weights = path.join(fixtures, 'seg-lraspp_mobilenet_v3_large.pth');
  const r = await fcn(
    'predict',
    '--model',
    'lraspp_mobilenet_v3_large',
    '--weights',
    weights,
    '--out',
    'model-pred',
    image,
  );
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /synth_000001\.png \(72x104\)/);
  t.regex(r.stdout, /\n {2}\S.* #[0-9a-f]{6} {2}\d+\.\d %/, 'the legend lines');
  for (const suffix of ['.png', '.overlay.png']) {
    const meta = await sharp(path.join(tmp, 'model-pred', `synth_000001${suffix}`)).metadata();
    t.deepEqual([meta.height, meta.width], [72, 104], suffix);
  }
  t.regex(fs.readFileSync(path.join(tmp, 'model-pred', 'synth_000001.legend.svg'), 'utf8'), /<svg .*<rect .*<text/s);

  const missing = await fcn('predict', '--model', 'lraspp_mobilenet_v3_large', '--weights', 'no-such.pth', image);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^fcn predict: lraspp_mobilenet_v3_large: weights: no such weights file 'no-such\.pth'\n$/);
  fs.writeFileSync(path.join(tmp, 'corrupt.pth'), fs.readFileSync(weights).subarray(0, 5000));
  const corrupt = await fcn('predict', '--model', 'lraspp_mobilenet_v3_large', '--weights', 'corrupt.pth', image);
  t.is(corrupt.code, 1);
  t.regex(corrupt.stderr, /^fcn predict: .*corrupt\.pth.*\n$/);
  const backbone = path.join(fixtures, 'cls-mobilenet_v3_large.pth');
  const wrong = await fcn('predict', '--model', 'lraspp_mobilenet_v3_large', '--weights', backbone, image);
  t.regex(wrong.stderr, /holds no whole segmentation model/);
});

test.serial(
  'fcn train --model fine-tunes a torchvision model; resume, eval and predict use its checkpoint',
  async (t) => {
    const root = await synthetic();
    const weights = path.join(fixtures, 'seg-deeplabv3_mobilenet_v3_large-nc5-aux.pth');
    const common = ['--data', root, '--crop', '64x96', '--batch-size', '3', '--out', 'model-run', '--threads', '1'];
    const model = ['--model', 'deeplabv3_mobilenet_v3_large'];
    const wrong = await fcn('train', ...common, ...model, '--epochs', '1', '--weights', weights);
    t.is(wrong.code, 1);
    t.regex(wrong.stderr, /numClasses 21 disagrees with the weights .*, which have numClasses 5/);
    const first = await fcn('train', ...common, ...model, '--epochs', '1', '--optimizer', 'adamw', '--lr', '0.0001');
    t.is(first.code, 0, first.stderr);
    t.regex(first.stdout, /epoch 1\/1: loss [\d.]+, train acc [\d.]+, test acc [\d.]+, test mIoU [\d.]+/);
    const checkpoint = path.join(tmp, 'model-run', 'checkpoint.safetensors');
    const saved = await loadCheckpoint(checkpoint);
    t.is(saved.config.model, 'deeplabv3_mobilenet_v3_large');
    t.is(saved.config.auxLoss, true);
    t.is(saved.config.scheduler, 'poly');
    t.true([...saved.model.keys()].some((k) => k.startsWith('aux_classifier.')));
    t.true(saved.optimizer.has('state.0.exp_avg'));
    const stepsPerEpoch = saved.scheduler?.lastEpoch ?? 0;
    t.true(stepsPerEpoch > 0, 'the schedule stepped once per batch');
    const resumed = await fcn('train', ...common, '--epochs', '2', '--resume');
    t.is(resumed.code, 0, resumed.stderr);
    t.regex(resumed.stdout, /resuming after epoch 1 \(deeplabv3_mobilenet_v3_large, crop 64x96, batch 3\)/);
    const after = await loadCheckpoint(checkpoint);
    t.is(after.scheduler?.lastEpoch, 2 * stepsPerEpoch);
    const evaluated = await fcn('eval', '--checkpoint', checkpoint, '--data', root, '--batch-size', '2');
    t.is(evaluated.code, 0, evaluated.stderr);
    t.regex(evaluated.stdout, /pixel accuracy 0\.\d+, mean IoU 0\.\d+/);
    const image = path.join(root, 'JPEGImages', 'synth_000002.jpg');
    const predicted = await fcn('predict', '--checkpoint', checkpoint, '--out', 'model-run-pred', image);
    t.is(predicted.code, 0, predicted.stderr);
    t.regex(predicted.stdout, /synth_000002\.png \(72x104\)/);
  },
);
