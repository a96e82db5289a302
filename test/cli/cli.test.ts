import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { decode } from 'fast-png';
import sharp from 'sharp';
import {
  cpuCapabilities,
  createFcn,
  loadCheckpoint,
  optim,
  predict,
  readImage,
  save,
  saveCheckpoint,
  torch,
  train,
} from '../../src';
import { cli, fixtures, repeatBatch, runNode, scratchDir } from '../helpers';

const tmp = scratchDir('fcn-torch-cli-');

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
  // ... and rebuilds through the API: its config names the model, whose labels are those fcn predict gives below.
  t.is(saved.config.numClasses, 21);
  const rebuilt = createFcn({ arch: 'fcn8s', numClasses: 21 });
  rebuilt.loadStateDict(saved.model);

  // eval and predict take the checkpoint or the weights file (with its spec), and the synth root as --data.
  const weights = path.join(tmp, 'run', 'model.safetensors');
  const dataRoot = path.join(tmp, 'data');
  for (const file of [checkpoint, weights]) {
    const evaluated = await fcn('eval', '--checkpoint', file, '--data', dataRoot, '--batch-size', '2');
    t.is(evaluated.code, 0, evaluated.stderr);
    t.regex(evaluated.stdout, /pixel accuracy 0\.\d+, mean IoU 0\.\d+/);
    t.regex(evaluated.stdout, /background\s+0\.\d+/);
    t.regex(evaluated.stdout, /aeroplane\s+(-|0\.\d+)/);
  }
  const whole = await fcn('eval', '--checkpoint', weights, '--data', root, '--whole');
  t.is(whole.code, 0, whole.stderr);
  t.regex(whole.stdout, /pixel accuracy 0\.\d+, mean IoU 0\.\d+\n/);

  // predict labels whole images by default; --crop gives the chapter's top-left crop.
  const image = path.join(root, 'JPEGImages', 'synth_000000.jpg');
  const labelled = await fcn('predict', '--checkpoint', weights, '--out', 'pred', '--precision', 'float32', image);
  t.is(labelled.code, 0, labelled.stderr);
  t.regex(labelled.stdout, /^precision: float32$/m);
  t.regex(labelled.stdout, /synth_000000\.labels\.png \(72x104\)/);
  t.true(fs.existsSync(path.join(tmp, 'pred', 'grid.png')));
  const cliLabels = decode(fs.readFileSync(path.join(tmp, 'pred', 'synth_000000.labels.png'))).data;
  const apiLabels = (await predict(rebuilt, await readImage(image))).to('int32').toTypedArray();
  t.deepEqual([...cliLabels], [...apiLabels], "fcn predict's labels are the API model's");
  const crop = await fcn('predict', '--checkpoint', checkpoint, '--out', 'pred-crop', '--crop', '64x96', image);
  t.is(crop.code, 0, crop.stderr);
  t.regex(crop.stdout, /synth_000000\.labels\.png \(64x96\)/);
  const mixed = await fcn(
    'predict',
    '--checkpoint',
    checkpoint,
    '--out',
    'pred-mixed',
    '--precision',
    'bfloat16',
    image,
  );
  t.is(mixed.code, 0, mixed.stderr);
  t.regex(mixed.stdout, /synth_000000\.labels\.png \(72x104\)/);
  // What ran is said: bfloat16 where the CPU has bfloat16 units, else float32 and why.
  t.regex(
    mixed.stdout,
    cpuCapabilities().bfloat16Units
      ? /^precision: bfloat16$/m
      : /^precision: float32 \(bfloat16 asked; .* has no bfloat16 units: AVX-512 BF16 or AMX\)$/m,
  );
  const badPrecision = await fcn('predict', '--checkpoint', checkpoint, '--precision', 'fp16', image);
  t.is(badPrecision.code, 1);
  t.regex(
    badPrecision.stderr,
    /option '--precision <p>' argument 'fp16' is invalid\. Allowed choices are auto, float32, bfloat16/,
  );
});

test('fcn predict never overwrites an input, and names outputs of same-named inputs apart', async (t) => {
  const root = await synthetic();
  const photos = path.join(tmp, 'photos');
  fs.mkdirSync(path.join(photos, 'a'), { recursive: true });
  fs.mkdirSync(path.join(photos, 'b'), { recursive: true });
  fs.copyFileSync(path.join(root, 'JPEGImages', 'synth_000001.jpg'), path.join(photos, 'a', 'img.jpg'));
  fs.copyFileSync(path.join(root, 'JPEGImages', 'synth_000002.jpg'), path.join(photos, 'b', 'img.jpg'));
  fs.copyFileSync(path.join(root, 'JPEGImages', 'synth_000003.jpg'), path.join(photos, 'a', 'grid.png'));
  const model = path.join(tmp, 'run', 'model.safetensors');
  const images = ['photos/a/img.jpg', 'photos/b/img.jpg'];
  const both = await fcn('predict', '--checkpoint', model, '--out', 'two', ...images);
  t.is(both.code, 0, both.stderr);
  t.deepEqual(fs.readdirSync(path.join(tmp, 'two')).sort(), [
    'grid.png',
    ...['img-2', 'img'].flatMap((name) => ['labels.png', 'legend.svg', 'overlay.png'].map((x) => `${name}.${x}`)),
  ]);
  const before = fs.readFileSync(path.join(photos, 'a', 'grid.png'));
  const over = await fcn(
    'predict',
    '--checkpoint',
    model,
    '--out',
    'photos/a',
    'photos/a/img.jpg',
    'photos/a/grid.png',
  );
  t.is(over.code, 1);
  t.regex(over.stderr, /refusing to overwrite the input '.*grid\.png' with a prediction/);
  t.deepEqual(fs.readFileSync(path.join(photos, 'a', 'grid.png')), before);
  const bomb = await fcn('predict', '--checkpoint', model, '--out', 'bomb', '--max-pixels', '1000', ...images);
  t.is(bomb.code, 1);
  t.regex(bomb.stderr, /it is 104x72 \(7488 pixels\), more than the 1000 allowed/);
  t.false(fs.existsSync(path.join(tmp, 'bomb')), 'no empty output folder');
});

test('fcn --help lists every command, each command has --help, and defaults read as typed', async (t) => {
  const help = await fcn('--help');
  t.is(help.code, 0);
  for (const command of ['synth', 'download-voc', 'train', 'eval', 'predict']) {
    t.regex(help.stdout, new RegExp(`\\n  ${command}`));
    const own = await fcn(command, '--help');
    t.is(own.code, 0, command);
    t.regex(own.stdout, /Usage: fcn /);
  }
  const train = await fcn('train', '--help');
  t.regex(train.stdout, /\(default: 320x480\)/);
  t.regex(train.stdout, /\(default: cpu\)/);
});

test('user mistakes end in one line on stderr and exit code 1', async (t) => {
  const root = await synthetic();
  const cases: [string[], RegExp][] = [
    [['train', '--data', 'no-such-dir'], /'--data <dir>' argument 'no-such-dir' is invalid\. no such folder/],
    [['train', '--data', root, '--crop', '100x100'], /multiples of 32/],
    [['train', '--data', root, '--arch', 'fcn4s'], /Allowed choices are fcn32s, fcn16s, fcn8s/],
    [['train', '--data', root, '--epochs', 'two'], /expected an integer >= 1/],
    [['train', '--data', root, '--lr', '-1'], /expected a number >= 0/],
    [['train', '--data', root, '--lr', '0x10'], /'--lr <rate>' argument '0x10' is invalid\. expected a number >= 0/],
    [['train', '--data', root, '--threads', '4294967297'], /expected an integer in \[1, 65536\]/],
    [['train', '--data', root, '--seed', '1e16'], /'--seed <n>' argument '1e16' is invalid/],
    [['train', '--data', root, '--dist-timeout', '3000000'], /expected an integer in \[1, 2147483\]/],
    [
      ['train', '--data', root, '--accumulate', '0'],
      /'--accumulate <n>' argument '0' is invalid\. expected an integer in \[1, 1048576\]/,
    ],
    [['train', '--data', root, '--device', 'gpu'], /expected cpu, cuda or cuda:N/],
    [['train', '--data', root, '--crop', '64x96', '--device', 'cuda', '--out', 'gpu'], /^fcn train: .*CUDA/],
    [['train', '--data', root, '--out', 'empty', '--resume'], /^fcn train: .*checkpoint\.safetensors/],
    [
      ['train', '--data', root, '--crop', '64x96', '--batch-size', '4', '--out', 'b4'],
      /^fcn train: the val split of '.*' has \d images, too few for one batch of 4; give a smaller --batch-size/,
    ],
    [
      ['train', '--data', root, '--crop', '480x640', '--out', 'big'],
      /^fcn train: the train split has 0 examples of at least 480x640 .*too few for one batch of 32/,
    ],
    [['eval', '--checkpoint', 'missing.safetensors', '--data', root], /no such file/],
    [
      ['eval', '--checkpoint', path.join(root, 'ImageSets', 'Segmentation', 'val.txt'), '--data', root],
      /^fcn eval: cannot load '.*val\.txt'/,
    ],
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
  for (const out of ['gpu', 'empty', 'big'])
    t.false(fs.existsSync(path.join(tmp, out)), `no empty folder '${out}' left`);
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
  t.regex(r.stdout, /synth_000001\.labels\.png \(72x104\)/);
  t.regex(r.stdout, /\n {2}\S.* #[0-9a-f]{6} {2}\d+\.\d %/, 'the legend lines');
  for (const suffix of ['.labels.png', '.overlay.png']) {
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
    // Weights of 5 classes on VOC's 21: their class layers start afresh (torchvision's fine-tuning recipe).
    const tunedArgs = [...common.slice(0, -4), '--threads', '1', '--out', 'tuned', ...model, '--weights', weights];
    const tuned = await fcn('train', ...tunedArgs, '--epochs', '1');
    t.is(tuned.code, 0, tuned.stderr);
    t.regex(tuned.stdout, /fine-tuning from .*nc5-aux\.pth: classifier\.4, aux_classifier\.4 start afresh/);
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
    t.regex(predicted.stdout, /synth_000002\.labels\.png \(72x104\)/);
  },
);

test.serial(
  'a checkpoint the API wrote (3 classes) loads in fcn eval and fcn predict, which say its classes',
  async (t) => {
    // Trained from the API with batches of its own, one step, then saved without a config.
    const root = path.join(fixtures, 'datasets', 'index'); // 3 classes: background, circle é, square 漢字
    const ids = BigInt64Array.from({ length: 2 * 64 * 96 }, (_, i) => BigInt(Math.floor((i % 96) / 32)));
    const batches = repeatBatch(torch.randn([2, 3, 64, 96]), torch.tensor(ids, { shape: [2, 64, 96] }));
    torch.manualSeed(3);
    const net = createFcn({ arch: 'fcn16s', numClasses: 3 });
    const optimizer = new optim.SGD(net.parameters(), { lr: 0.01 });
    const history = await train(net, batches, batches, { epochs: 1, optimizer, log: null, progress: false });
    const file = path.join(tmp, 'api-3.safetensors');
    await saveCheckpoint(file, {
      model: net,
      optimizer,
      epoch: 1,
      history,
      classes: ['background', 'circle', 'square'],
    });
    const saved = await loadCheckpoint(file);
    t.like(saved.config, { arch: 'fcn16s', numClasses: 3, auxLoss: false });

    const image = path.join(root, 'images', 'plain_3.jpg');
    const predicted = await fcn('predict', '--checkpoint', file, '--out', 'api-pred', image);
    t.is(predicted.code, 0, predicted.stderr);
    t.regex(predicted.stdout, /plain_3\.labels\.png \(64x128\)/);
    const mask = decode(fs.readFileSync(path.join(tmp, 'api-pred', 'plain_3.labels.png')));
    t.is(mask.palette?.length, 3, 'a palette of 3 classes');
    const labels = (await predict(net, await readImage(image))).to('int32').toTypedArray();
    t.deepEqual([...mask.data], [...labels], "fcn predict's labels are the API model's own");
    t.notRegex(predicted.stdout, /aeroplane|class_/, 'the names given to saveCheckpoint');

    const evaluated = await fcn('eval', '--checkpoint', file, '--data', root, '--whole');
    t.is(evaluated.code, 0, evaluated.stderr);
    t.regex(evaluated.stdout, /2 val images of .*pixel accuracy [01]\.\d+, mean IoU [01]\.\d+/s);
    const rows = evaluated.stdout
      .split('\n')
      .slice(evaluated.stdout.split('\n').findIndex((l) => l.startsWith('class')) + 1);
    t.deepEqual(
      rows.filter((l) => l.trim()).map((l) => l.split(/\s+/)[0]),
      ['background', 'circle', 'square'],
      'one IoU row per class of the checkpoint',
    );
    const crops = await fcn('eval', '--checkpoint', file, '--data', root);
    t.regex(crops.stderr, /does not say which crop it was trained with; give --crop HxW or --whole/);
    const onVoc = await fcn('eval', '--checkpoint', file, '--data', await synthetic(), '--whole');
    t.regex(onVoc.stderr, /has 3 classes, but '.*' is a VOC2012 tree of 21/);

    // A plain state dict (save(net.stateDict(), file)) is told by its tensors: fcn16s with 3 classes.
    const plain = path.join(tmp, 'api-3-weights.safetensors');
    await save(net.stateDict(), plain);
    const fromWeights = await fcn('predict', '--checkpoint', plain, '--out', 'api-weights-pred', image);
    t.is(fromWeights.code, 0, fromWeights.stderr);
    const plainMask = decode(fs.readFileSync(path.join(tmp, 'api-weights-pred', 'plain_3.labels.png')));
    t.deepEqual([...plainMask.data], [...labels]);
    t.regex(fromWeights.stdout, /class_[012]/, 'unnamed classes');
  },
);
