/**
 * `fcn train`: the chapter's training (or torchvision's reference recipe for a `--model`)
 * from the shell, in named steps: launch workers (with --nproc-per-node), settle the run's
 * config (new, or the checkpoint's with --resume), build model, optimizer, scheduler and
 * data, join the process group of a distributed run, train with Ctrl-C stopping after the
 * current step, and write the outputs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from '@commander-js/extra-typings';
import { type Checkpoint, loadCheckpoint } from '../checkpoint';
import { medianFrequencyWeights, readClassWeights } from '../data/class-weights';
import { detectFormat } from '../data/dataset';
import { loadData, writeSplit } from '../data/loader';
import { initProcessGroup, type ProcessGroup, type TorchrunEnv, torchrunEnv } from '../distributed';
import { FCN_ARCHS, UPSAMPLING_INITS } from '../fcn';
import { launchWorkers, watchLauncher, workerArgs } from '../launch';
import type { EpochMetrics } from '../metrics';
import { buildModel, MODEL_METADATA_KEY } from '../model-file';
import type { ModelSpec } from '../model-spec';
import { SEGMENTATION_MODELS } from '../models/segmentation';
import type { Module } from '../nn/module';
import {
  AdamW,
  CosineAnnealingLR,
  LinearLR,
  type LRScheduler,
  type Optimizer,
  type ParamGroup,
  PolynomialLR,
  SequentialLR,
  SGD,
  StepLR,
} from '../optim';
import { plotHistory } from '../plot';
import { save } from '../serialization';
import type { Device } from '../tensor';
import * as torch from '../torch';
import { train } from '../train';
import type { LossOptions } from '../trainer';
import * as voc from '../voc';
import type { Example } from '../voc/dataset';
import { action, setPrecision, setThreads } from './common';
import { cropSize, datasetOptions, devices, existingDir, integer, nonNegative, tcpPort } from './options';
import { LOSS_TERMS, OPTIMIZERS, type RunConfig, runConfigOf, SCHEDULERS } from './run-config';

export const trainCommand = new Command('train')
  .description(
    "train an FCN as the chapter's train_ch13 does, or a torchvision segmentation model (--model) as torchvision's " +
      'reference recipe does; a checkpoint per epoch, curves and weights in --out',
  )
  .requiredOption(
    '--data <dir>',
    'a dataset: a VOC2012 folder (or the --out of fcn synth / download-voc), or images/ beside masks/ with a ' +
      'classes.txt or classes.json (see fcn data check)',
    existingDir,
  )
  .addOption(datasetOptions.format())
  .addOption(datasetOptions.ignoreIndex())
  .addOption(datasetOptions.valFraction())
  .option(
    '--base-size <px>',
    "a dataset of your own: resize each training image's shorter side to 0.5-2x this before the crop (torchvision's " +
      "recipe; default: the crop's shorter side x 520/480; 0: no resize)",
    integer(0),
  )
  .addOption(
    new Option('--loss <terms>', "cross-entropy (ce), Dice, Focal (smp's), or ce with one of them").choices(LOSS_TERMS),
  )
  .option(
    '--class-weights <w>',
    "the cross-entropy's class weights: median (median frequency balancing over the train split) or a file of numbers",
  )
  .addOption(new Option('--arch <arch>', "the chapter's FCN (default fcn32s)").choices(FCN_ARCHS))
  .addOption(
    new Option('--init <init>', 'transposed convolution init').choices(UPSAMPLING_INITS).default('bilinear' as const),
  )
  .addOption(new Option('--model <name>', 'a torchvision segmentation model instead').choices(SEGMENTATION_MODELS))
  .option('--epochs <n>', 'epochs', integer(1), 5)
  .option('--batch-size <n>', 'batch size', integer(1), 32)
  .option(
    '--accumulate <n>',
    'batches whose gradients make one update (an effective batch of n x --batch-size)',
    integer(1, 1 << 20),
    1,
  )
  .option('--lr <rate>', 'learning rate (default 0.001; 0.01 with --model)', nonNegative)
  .option('--wd <decay>', 'weight decay (default 1e-3; 1e-4 with --model)', nonNegative)
  .option('--momentum <m>', 'SGD momentum (default 0; 0.9 with --model)', nonNegative)
  .addOption(new Option('--optimizer <name>', 'optimizer').choices(OPTIMIZERS).default('sgd' as const))
  .addOption(
    new Option('--scheduler <name>', 'learning-rate schedule over all steps (default none; poly with --model)').choices(
      SCHEDULERS,
    ),
  )
  .option('--warmup-epochs <n>', 'epochs of linear learning-rate warm-up from 1 % before the schedule', integer(0), 0)
  .option('--no-aux-loss', 'with --model: no auxiliary classifier (its loss counts 0.5 by default)')
  .addOption(
    new Option('--crop <HxW>', 'random crop size, multiples of 32')
      .argParser(cropSize)
      .default([320, 480] as [number, number], '320x480'),
  )
  .addOption(
    new Option('--device <list>', 'cpu, cuda, cuda:N; several (comma-separated) train data-parallel')
      .argParser(devices)
      .default(['cpu'] as Device[], 'cpu'),
  )
  .option(
    '--weights <w>',
    'the FCN: backbone weights, IMAGENET1K_V1 or a file; --model: the whole model, COCO_WITH_VOC_LABELS_V1 (or ' +
      'DEFAULT) or a file (published names download once)',
  )
  .option('--weights-backbone <w>', 'with --model: ImageNet backbone weights, IMAGENET1K_V1, IMAGENET1K_V2 or a file')
  .option('--seed <n>', 'seed of initialisation, order and crops', integer(0), 0)
  .option('--threads <n>', 'CPU threads for libtorch', integer(1, 65_536))
  .option(
    '--autocast',
    'forwards in bfloat16 mixed precision (torch.autocast) where the hardware has bfloat16 units (AVX-512 BF16, AMX, GPUs)',
    false,
  )
  .option('--out <dir>', 'output folder', 'fcn-output')
  .option('--resume', 'continue from DIR/checkpoint.safetensors with its settings', false)
  .option('--nproc-per-node <n>', 'start n worker processes here that train together (c10d: Gloo/NCCL)', integer(1))
  .option('--nnodes <n>', 'machines taking part, each running the same command', integer(1), 1)
  .option('--node-rank <n>', "this machine's index (0 hosts the rendezvous)", integer(0), 0)
  .option('--master-addr <addr>', "machine 0's address, as every machine reaches it", '127.0.0.1')
  .option('--master-port <port>', 'a free TCP port on machine 0 for the rendezvous', tcpPort, 29500)
  .option(
    '--max-restarts <n>',
    "start the workers again up to n times after a failure; they resume from the last checkpoint (torchrun's elastic restarts)",
    integer(0, 1000),
    0,
  )
  .option('--dist-timeout <s>', 'seconds the rendezvous and each collective may take', integer(1, 2_147_483), 300);

/** The options as commander parsed them (types inferred from the chain above). */
type TrainFlags = ReturnType<typeof trainCommand.opts>;

trainCommand.action(action('train', (flags) => trainFromFlags(flags)));

/** The options of a process that starts workers, by commander's name and as typed. */
const LAUNCHER_OPTIONS = {
  nprocPerNode: '--nproc-per-node',
  nnodes: '--nnodes',
  nodeRank: '--node-rank',
  masterAddr: '--master-addr',
  masterPort: '--master-port',
  maxRestarts: '--max-restarts',
} as const;

async function trainFromFlags(o: TrainFlags): Promise<void> {
  const dist = torchrunEnv();
  if (dist) {
    // A launcher's options in a worker would be dropped: a PyTorchJob's `--nproc-per-node 4`
    // would quietly train one process per pod.
    const given = Object.entries(LAUNCHER_OPTIONS).filter(
      ([name]) => trainCommand.getOptionValueSource(name) === 'cli',
    );
    if (given.length > 0) {
      throw new RangeError(
        `${given.map(([, flag]) => flag).join(', ')}: this process is a worker of a distributed run ` +
          `(WORLD_SIZE=${dist.worldSize} and RANK=${dist.rank} in its environment, from its launcher), and a worker starts ` +
          'no workers; drop the option, or start workers here without WORLD_SIZE (env -u WORLD_SIZE fcn train ...)',
      );
    }
  }
  watchLauncher(() => {
    console.error(`fcn train [rank ${dist?.rank}]: the launcher ended; stopping`);
    process.exit(1);
  });
  if (o.nprocPerNode !== undefined && !dist) {
    process.exitCode = await launch(o, o.nprocPerNode);
    return;
  }
  if (dist && o.device.length > 1) {
    throw new RangeError('--device: each process of a distributed run trains on one device (cpu or cuda)');
  }
  // torchrun's convention: a worker trains on the GPU of its local rank.
  const device: Device = dist && o.device[0] === 'cuda' ? `cuda:${dist.localRank}` : o.device[0];
  const lead = !dist || dist.rank === 0;
  setThreads(o.threads);
  if (o.autocast && lead) console.log(setPrecision('bfloat16', device));
  else if (o.autocast) setPrecision('bfloat16', device);
  const created = !fs.existsSync(o.out);
  fs.mkdirSync(o.out, { recursive: true });
  const checkpointFile = path.join(o.out, 'checkpoint.safetensors');
  // A restarted worker (torchrun's elastic agent, or --max-restarts) goes on from the last
  // complete checkpoint; with another world size its shard of the data is drawn anew.
  const restart = Number(process.env.TORCHELASTIC_RESTART_COUNT ?? '0');
  const flags = dist && restart > 0 && !o.resume && fs.existsSync(checkpointFile) ? { ...o, resume: true } : o;
  if (flags !== o && lead) console.log(`restart ${restart}: resuming from ${checkpointFile}`);
  try {
    await interruptibly(checkpointFile, (signal) => trainInto(flags, dist, device, lead, checkpointFile, signal));
  } catch (err) {
    // A run that failed before writing anything leaves no empty folder behind.
    if (created && fs.readdirSync(o.out).length === 0) fs.rmdirSync(o.out);
    throw err;
  }
}

/** The run itself, writing into o.out (which exists); signal stops it between steps. */
async function trainInto(
  o: TrainFlags,
  dist: TorchrunEnv | null,
  device: Device,
  lead: boolean,
  checkpointFile: string,
  signal: AbortSignal,
): Promise<void> {
  const say = lead ? console.log : () => {};
  const { config, resume } = await settleConfig(o, checkpointFile, say);
  torch.zeros([1], { device }).dispose(); // a device that is not there is said before any data is read
  // The data first: a new run's model is built for its dataset's classes (reading the data
  // draws nothing from libtorch's generator, so the model's initialisation is the seed's).
  const { trainIter, testIter, classes, ignoreIndex, data } = await loadData(config.batchSize, config.crop, {
    root: o.data,
    ...config.dataset,
    ...(resume ? { splitFile: path.join(o.out, 'split.json') } : {}),
    ...(resume && config.classes ? { classes: config.classes } : {}),
    ...(config.baseSize !== undefined ? { baseSize: config.baseSize === 0 ? null : config.baseSize } : {}),
    seed: config.seed,
    log: lead ? console.log : null,
    ...(dist ? { shard: { rank: dist.rank, worldSize: dist.worldSize } } : {}),
  });
  if (testIter.length === 0) {
    throw new RangeError(
      `the val split of '${o.data}' has ${testIter.dataset.length} images, too few for one batch of ` +
        `${config.batchSize}; give a smaller --batch-size`,
    );
  }
  if (!resume && data) Object.assign(config, { numClasses: classes.length, classes });
  if (!resume && o.classWeights) {
    config.classWeights = classWeightsOf(o.classWeights, trainIter.dataset.examples, config.numClasses, ignoreIndex);
    const names = classes.map((c, id) => `${c.name} ${(config.classWeights as number[])[id].toFixed(3)}`);
    say(`class weights (${o.classWeights === 'median' ? 'median frequency' : o.classWeights}): ${names.join(', ')}`);
  }
  if (!config.model && config.numClasses > 64 && lead) {
    // ConvTranspose2d(N, N, 64): N^2 x 64^2 weights (300 classes: 1.5 GB, with its gradient and momentum 3x that).
    const megabytes = (config.numClasses ** 2 * 64 * 64 * 4) / 2 ** 20;
    console.error(
      `fcn train: the chapter's FCN upsamples ${config.numClasses} classes with a transposed convolution of ` +
        `${Math.round(megabytes)} MB of weights; a --model (torchvision's, upsampling by interpolation) suits many classes`,
    );
  }
  if (resume && classes.length !== config.numClasses) {
    throw new Error(
      `the run trained on ${config.numClasses} classes, but '${o.data}' has ${classes.length}; resume on the same dataset`,
    );
  }
  if (lead && data?.split === 'random') writeSplit(data, path.join(o.out, 'split.json'));
  torch.manualSeed(config.seed);
  const weights = resume ? [] : [o.weights, o.weightsBackbone];
  const net = await buildModel(config, device, weights[0], weights[1], say);
  const optimizer = makeOptimizer(net, config);
  const group = dist ? await joinGroup(dist, device, o.distTimeout, say) : undefined;
  try {
    const history = await train(net, trainIter, testIter, {
      signal,
      epochs: o.epochs,
      optimizer,
      scheduler: makeScheduler(optimizer, config, o.epochs, Math.ceil(trainIter.length / config.accumulate)),
      accumulate: config.accumulate,
      devices: [device],
      processGroup: group,
      resume,
      loss: lossOf(config, ignoreIndex),
      checkpoint: checkpointFile,
      config,
      plot: path.join(o.out, 'curves.svg'),
    });
    if (lead) await writeOutputs(o.out, net, config, history, say);
  } finally {
    await group?.close();
  }
}

/** The cross-entropy's class weights of `--class-weights`: median frequency balancing, or a file's. */
function classWeightsOf(given: string, examples: readonly Example[], numClasses: number, ignore: number): number[] {
  if (given !== 'median') return readClassWeights(given, numClasses);
  const labels = examples.map((e) => e.label.toTypedArray() as Uint8Array | Int32Array);
  return medianFrequencyWeights(labels, numClasses, ignore);
}

/** The loss of a run: its terms (`--loss`) and class weights, the dataset's ignore label. */
function lossOf(config: RunConfig, ignoreIndex: number): LossOptions {
  const terms = {
    ce: { crossEntropy: 1 },
    dice: { dice: 1 },
    focal: { focal: 1 },
    'ce+dice': { crossEntropy: 1, dice: 1 },
    'ce+focal': { crossEntropy: 1, focal: 1 },
  }[config.loss];
  const weights = config.classWeights;
  return {
    ignoreIndex,
    terms,
    ...(weights ? { classWeights: torch.tensor(Float32Array.from(weights), { shape: [weights.length] }) } : {}),
  };
}

/** This machine's workers of a distributed run (`--nproc-per-node`); resolves with the run's exit code. */
function launch(o: TrainFlags, nprocPerNode: number): Promise<number> {
  if (o.nodeRank >= o.nnodes) throw new RangeError(`--node-rank ${o.nodeRank} must be below --nnodes ${o.nnodes}`);
  return launchWorkers(process.argv[1], workerArgs(process.argv.slice(2)), { ...o, nprocPerNode });
}

/** The run's config: from the flags, or with --resume the checkpoint's (validated). */
async function settleConfig(
  o: TrainFlags,
  checkpointFile: string,
  say: (line: string) => void,
): Promise<{ config: RunConfig; resume?: Checkpoint }> {
  if (!o.resume) {
    if (o.model && o.arch) throw new RangeError("--arch is for the chapter's FCN; --model names another model");
    const recipe = o.model !== undefined; // torchvision's references/segmentation defaults
    const format = o.format ?? detectFormat(o.data);
    const config: RunConfig = {
      ...(o.model ? { model: o.model } : {}),
      arch: o.arch ?? 'fcn32s',
      init: o.init,
      numClasses: voc.VOC_CLASSES.length, // the dataset's, once it is read
      auxLoss: recipe && o.auxLoss && !o.model?.startsWith('lraspp'),
      crop: o.crop,
      batchSize: o.batchSize,
      accumulate: o.accumulate,
      lr: o.lr ?? (recipe ? 0.01 : 0.001),
      wd: o.wd ?? (recipe ? 1e-4 : 1e-3),
      momentum: o.momentum ?? (recipe ? 0.9 : 0),
      optimizer: o.optimizer,
      scheduler: o.scheduler ?? (recipe ? 'poly' : 'none'),
      warmupEpochs: o.warmupEpochs,
      seed: o.seed,
      loss: o.loss ?? 'ce',
      ...(o.baseSize !== undefined ? { baseSize: o.baseSize } : {}),
      data: format === 'voc' ? voc.resolveVocRoot(o.data) : path.resolve(o.data),
      ...(format === 'voc'
        ? {}
        : { dataset: { format, ignoreIndex: o.ignoreIndex, valFraction: o.valFraction, seed: o.seed } }),
    };
    if (config.warmupEpochs >= o.epochs) throw new RangeError('--warmup-epochs must be fewer than --epochs');
    return { config };
  }
  const resume = await loadCheckpoint(checkpointFile);
  const config = runConfigOf(resume.config, checkpointFile);
  if (resume.epoch >= o.epochs) {
    throw new Error(`the checkpoint has ${resume.epoch} epochs already; ask for more with --epochs`);
  }
  say(
    `resuming after epoch ${resume.epoch} (${config.model ?? config.arch}, crop ${config.crop.join('x')}, batch ${config.batchSize})`,
  );
  return { config, resume };
}

/**
 * The run's optimizer. A `--model` gets torchvision's parameter groups: backbone,
 * classifier, and the aux classifier at 10 x lr.
 */
function makeOptimizer(net: Module, config: RunConfig): Optimizer {
  type Group = ParamGroup<{ lr: number }>;
  const groups: Group[] = config.model
    ? net.namedChildren().map(([name, child]) => ({
        params: child.parameters(),
        ...(name === 'aux_classifier' ? { lr: config.lr * 10 } : {}),
      }))
    : [{ params: net.parameters() }];
  if (config.optimizer === 'adamw') return new AdamW(groups, { lr: config.lr, weightDecay: config.wd });
  return new SGD(groups, { lr: config.lr, weightDecay: config.wd, momentum: config.momentum });
}

/** The run's schedule over every step of every epoch, after warmupEpochs of linear warm-up. */
function makeScheduler(
  optimizer: Optimizer,
  config: RunConfig,
  epochs: number,
  updatesPerEpoch: number,
): LRScheduler | undefined {
  const warmup = config.warmupEpochs * updatesPerEpoch;
  const steps = Math.max(1, epochs * updatesPerEpoch - warmup);
  const main = {
    none: () => undefined,
    poly: () => new PolynomialLR(optimizer, { totalIters: steps, power: 0.9 }),
    cosine: () => new CosineAnnealingLR(optimizer, { tMax: steps }),
    step: () => new StepLR(optimizer, { stepSize: Math.max(1, Math.ceil(steps / 3)), gamma: 0.1 }),
  }[config.scheduler]();
  if (warmup === 0) return main;
  const linear = new LinearLR(optimizer, { startFactor: 0.01, endFactor: 1, totalIters: warmup });
  const after = main ?? new StepLR(optimizer, { stepSize: steps + 1, gamma: 1 });
  return new SequentialLR(optimizer, { schedulers: [linear, after], milestones: [warmup] });
}

/** Joins the distributed run described by torchrun's environment. */
async function joinGroup(
  dist: TorchrunEnv,
  device: Device,
  timeoutSeconds: number,
  say: (line: string) => void,
): Promise<ProcessGroup> {
  const group = await initProcessGroup({ ...dist, device, timeoutMs: timeoutSeconds * 1000 });
  say(`${dist.worldSize} processes joined at ${dist.masterAddr}:${dist.masterPort} (${group.backend})`);
  return group;
}

/** Runs with Ctrl-C stopping after the current step (a second Ctrl-C quits at once, exit code 130). */
async function interruptibly<T>(checkpointFile: string, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    console.error('\nstopping after this step (Ctrl-C again to quit at once)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    return await run(controller.signal);
  } catch (err) {
    if ((err as Error).name === 'AbortError' || controller.signal.aborted) {
      throw Object.assign(new Error(`interrupted; the last complete epoch's checkpoint is ${checkpointFile}`), {
        name: 'AbortError',
      });
    }
    throw err;
  } finally {
    // After a Ctrl-C the handler stays until the process ends, so that a second one during the
    // shutdown still quits at once with 130 (removed, the default action killed it by signal).
    if (!controller.signal.aborted) process.off('SIGINT', onSigint);
  }
}

/** The curves as PNG, the history as JSON and the weights (with what rebuilds them), beside the checkpoint. */
async function writeOutputs(
  out: string,
  net: Module,
  config: RunConfig,
  history: EpochMetrics[],
  say: (line: string) => void,
) {
  await plotHistory(history, path.join(out, 'curves.png'));
  fs.writeFileSync(path.join(out, 'history.json'), `${JSON.stringify(history, null, 2)}\n`);
  const spec: ModelSpec = {
    ...(config.model ? { model: config.model } : {}),
    arch: config.arch,
    init: config.init,
    numClasses: config.numClasses,
    auxLoss: config.auxLoss,
    crop: config.crop,
    ...(config.classes ? { classes: config.classes } : {}),
    ...(config.dataset ? { dataset: config.dataset } : {}),
  };
  await save(net.stateDict(), path.join(out, 'model.safetensors'), {
    format: 'pt',
    [MODEL_METADATA_KEY]: JSON.stringify(spec),
  });
  say(`checkpoint, model.safetensors, curves.svg/png and history.json in ${out}`);
}
