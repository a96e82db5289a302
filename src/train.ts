/**
 * The chapter's `train_ch13`: epochs of native training steps, then an evaluation of the
 * test batches with pixel accuracy and mean IoU, a progress bar, a plot of the curves, and
 * an atomic checkpoint per epoch from which a run resumes exactly. With a process group the
 * run is one rank of a distributed data-parallel run (see src/distributed.ts). Each epoch is
 * the same named steps: train, test, measure, record.
 */
import type { SingleBar } from 'cli-progress';
import { type Checkpoint, saveCheckpoint } from './checkpoint';
import { checkInteger, checkWritablePath } from './checks';
import type { ProcessGroup } from './distributed';
import { type EpochMetrics, segmentationMetrics } from './metrics';
import type { Module } from './nn/module';
import type { LRScheduler, Optimizer } from './optim';
import { plotHistory } from './plot';
import type { Device } from './tensor';
import { type EvaluationSums, eachBatch, evaluateBatches, type LossOptions, Trainer } from './trainer';
import type { Batch } from './voc/loader';

/**
 * Batches by epoch: epoch e always gives the same batches (VOCBatches does). {@link train}
 * disposes each batch once it has used it.
 */
export interface EpochBatches {
  /** Batches per epoch. */
  readonly length: number;
  /** The batches of epoch e (0-based). */
  epoch(e: number): AsyncIterable<Batch>;
}

/** Options of {@link train}. */
export interface TrainOptions {
  /** Total epochs (a resumed run continues up to this number). */
  epochs: number;
  /** The optimizer over the model's parameters (the chapter: SGD, lr 0.001, wd 1e-3). */
  optimizer: Optimizer;
  /**
   * A learning-rate scheduler of optimizer, stepped after every update of the optimizer
   * (torchvision's recipe: `PolynomialLR` with `totalIters` = updates per epoch x epochs, power
   * 0.9). Its step count goes into each checkpoint and comes back on resume.
   */
  scheduler?: LRScheduler;
  /**
   * Batches whose gradients make one update (default 1), as PyTorch users accumulate them under
   * DDP's `no_sync()`: N batches of B images train as one of N x B where the memory holds B. The
   * chapter's loss (a sum over the images) sums as it is; torchvision's (a mean) counts 1/N per
   * batch, which equals the mean over N x B when the batches have as many labelled pixels. With
   * a process group, only each update's batch averages the gradients across the ranks. An epoch
   * whose batches do not fill its last accumulation updates with what it has.
   */
  accumulate?: number;
  /** The loss (default: torchvision's for `models.segmentation` models, else the chapter's). */
  loss?: LossOptions;
  /**
   * Devices (default ['cpu']). The model moves to the first; with several, every batch is
   * split across them data-parallel and the gradients are summed onto the model.
   */
  devices?: Device[];
  /** Continue from this checkpoint: weights, optimizer state, epoch and history. */
  resume?: Checkpoint;
  /** Write a checkpoint here (a `.safetensors` path) after every epoch. */
  checkpoint?: string;
  /** Stored in each checkpoint (how to rebuild the model, say). */
  config?: Record<string, unknown>;
  /** Write the curves here after every epoch (`.svg` or `.png`). */
  plot?: string;
  /** Show a progress bar (default: when stderr is a terminal). */
  progress?: boolean;
  /** Where the per-epoch lines go (default console.log; null for silence). */
  log?: ((line: string) => void) | null;
  /** Stops the run between steps; the last checkpoint stays as it was. */
  signal?: AbortSignal;
  /**
   * Train as one rank of a distributed data-parallel run, as PyTorch's DDP does: rank 0's
   * weights go to every rank first, every step averages the gradients across the ranks (and
   * copies rank 0's BatchNorm statistics before the forward), the epoch's metrics are summed
   * over the ranks so that every rank returns the same numbers, and only rank 0 logs, plots
   * and writes checkpoints. Each rank must be given its own shard of the batches (the
   * `shard` option of the loaders), with the same number of training batches.
   */
  processGroup?: ProcessGroup;
}

/** What the training batches of an epoch summed to. */
interface TrainSums {
  loss: number;
  correct: number;
  pixels: number;
  examples: number;
}

/** A run in progress: the settings every epoch step reads. */
interface Run {
  net: Module;
  trainer: Trainer;
  options: TrainOptions;
  devices: Device[];
  group: ProcessGroup | undefined;
  /** Rank 0 (or no group): logs, plots and writes checkpoints. */
  lead: boolean;
  log: ((line: string) => void) | null;
  bar: SingleBar | null;
  history: EpochMetrics[];
}

const fixed = (v: number, digits = 3) => v.toFixed(digits);

/** Checks the options, applies a resume, binds the trainer and joins the group's ranks. */
async function startRun(net: Module, trainIter: EpochBatches, testIter: EpochBatches, options: TrainOptions) {
  checkInteger(options.epochs, 'epochs', 1);
  for (const [name, iter] of [
    ['trainIter', trainIter],
    ['testIter', testIter],
  ] as const) {
    if (iter.length === 0) throw new RangeError(`${name} has no batches (too few examples for one batch?)`);
  }
  const devices = options.devices ?? ['cpu'];
  const group = options.processGroup;
  const lead = !group || group.rank === 0;
  if (lead && options.checkpoint !== undefined) checkWritablePath(options.checkpoint, 'checkpoint', ['.safetensors']);
  if (lead && options.plot !== undefined) checkWritablePath(options.plot, 'plot', ['.svg', '.png']);
  const history: EpochMetrics[] = [];
  if (options.resume) {
    net.loadStateDict(options.resume.model);
    options.optimizer.loadStateDict(options.resume.optimizer);
    if (options.scheduler) {
      // A checkpoint from a run without a scheduler: the steps it made.
      options.scheduler.loadStateDict(
        options.resume.scheduler ?? {
          lastEpoch: options.resume.epoch * Math.ceil(trainIter.length / (options.accumulate ?? 1)),
        },
      );
    }
    history.push(...options.resume.history);
  }
  const trainer = new Trainer(net, options.optimizer, {
    devices,
    loss: options.loss,
    processGroup: group,
    accumulate: options.accumulate,
  });
  if (group) {
    await checkSameLength(group, trainIter.length);
    await group.broadcastModule(net, 0);
  }
  const bar =
    lead && (options.progress ?? process.stderr.isTTY)
      ? new (await import('cli-progress')).default.SingleBar({
          format: 'epoch {epoch} |{bar}| {value}/{total} batches | loss {loss} | {rate} img/s',
          hideCursor: true,
          clearOnComplete: true,
        })
      : null;
  const log = !lead ? null : options.log === undefined ? console.log : options.log;
  return { net, trainer, options, devices, group, lead, log, bar, history } satisfies Run;
}

/** Fails on every rank alike when the ranks would make different numbers of steps. */
async function checkSameLength(group: ProcessGroup, length: number): Promise<void> {
  const [least] = await group.allReduceNumbers([length], 'min');
  const [most] = await group.allReduceNumbers([length], 'max');
  if (least !== most) {
    throw new RangeError(
      `the ranks have from ${least} to ${most} training batches per epoch; every rank must make the same ` +
        "number of steps (shard the data with padding, as the loaders' shard option does)",
    );
  }
}

/** The training steps of epoch e, summed over every rank of the group. */
async function trainEpoch(run: Run, batches: EpochBatches, epoch: number, started: number): Promise<TrainSums> {
  const sums: TrainSums = { loss: 0, correct: 0, pixels: 0, examples: 0 };
  run.bar?.start(batches.length, 0, { epoch: `${epoch + 1}/${run.options.epochs}`, loss: '-', rate: '-' });
  sums.examples = await eachBatch(batches.epoch(epoch), run.options.signal, async (X, Y, seen) => {
    const r = await run.trainer.step(X, Y);
    if (r.updated) run.options.scheduler?.step();
    sums.loss += r.loss;
    sums.correct += r.correct;
    sums.pixels += r.pixels;
    const seconds = (performance.now() - started) / 1000;
    run.bar?.increment({ loss: fixed(sums.loss / seen), rate: fixed(seen / seconds, 1) });
  });
  if (await run.trainer.applyPending()) run.options.scheduler?.step();
  run.bar?.stop();
  if (run.group) {
    const [loss, correct, pixels, examples] = await run.group.allReduceNumbers([
      sums.loss,
      sums.correct,
      sums.pixels,
      sums.examples,
    ]);
    Object.assign(sums, { loss, correct, pixels, examples });
  }
  if (sums.examples === 0) throw new Error(`epoch ${epoch + 1}: the training batches were empty`);
  return sums;
}

/** The test batches of epoch e in eval mode, summed over every rank of the group. */
async function testEpoch(run: Run, batches: EpochBatches, epoch: number): Promise<EvaluationSums> {
  let test = await evaluateBatches(run.trainer, batches.epoch(epoch), run.options.signal);
  if (run.group) test = await sumOverRanks(run.group, test);
  if (!test.confusion) throw new Error(`epoch ${epoch + 1}: the test batches were empty`);
  return test;
}

/** The test batches' sums over every rank of the group. */
async function sumOverRanks(group: ProcessGroup, test: EvaluationSums): Promise<EvaluationSums> {
  const [classes] = await group.allReduceNumbers([test.confusion?.length ?? 0], 'max');
  if (classes === 0) return test;
  const local = test.confusion ?? Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  const [loss, examples, ...flat] = await group.allReduceNumbers([test.loss, test.examples, ...local.flat()]);
  const confusion = Array.from({ length: classes }, (_, r) => flat.slice(r * classes, (r + 1) * classes));
  return { loss, examples, confusion };
}

/** An epoch's metrics from its sums. */
function measure(
  epoch: number,
  train: TrainSums,
  test: EvaluationSums,
  trainSeconds: number,
  started: number,
): EpochMetrics {
  const metrics = segmentationMetrics(test.confusion ?? []);
  return {
    epoch: epoch + 1,
    trainLoss: train.loss / train.examples,
    trainAccuracy: train.pixels > 0 ? train.correct / train.pixels : 0,
    testLoss: test.loss / test.examples,
    testAccuracy: metrics.pixelAccuracy,
    testMeanIoU: metrics.meanIoU,
    testClassIoU: metrics.classIoU,
    examplesPerSecond: train.examples / trainSeconds,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Rank 0 keeps the epoch: the checkpoint, the curves and the log line. */
async function record(run: Run, m: EpochMetrics): Promise<void> {
  const { options } = run;
  if (run.lead && options.checkpoint) {
    await saveCheckpoint(options.checkpoint, {
      model: run.net,
      optimizer: options.optimizer,
      scheduler: options.scheduler?.stateDict(),
      epoch: m.epoch,
      history: run.history,
      config: options.config ?? {},
    });
  }
  if (run.lead && options.plot) await plotHistory(run.history, options.plot);
  run.log?.(
    `epoch ${m.epoch}/${options.epochs}: loss ${fixed(m.trainLoss)}, train acc ${fixed(m.trainAccuracy)}, ` +
      `test acc ${fixed(m.testAccuracy)}, test mIoU ${fixed(m.testMeanIoU)}, ` +
      `${fixed(m.examplesPerSecond, 1)} examples/sec on ${run.group ? `${run.group.worldSize} processes` : run.devices.join(', ')}`,
  );
}

/**
 * Trains net as the chapter's `train_ch13` does and returns the metrics of every epoch
 * (those of a resumed checkpoint first). Resuming from the checkpoint of epoch k with the
 * same batches gives the losses an uninterrupted run would have.
 */
export async function train(
  net: Module,
  trainIter: EpochBatches,
  testIter: EpochBatches,
  options: TrainOptions,
): Promise<EpochMetrics[]> {
  const run = await startRun(net, trainIter, testIter, options);
  try {
    for (let epoch = options.resume?.epoch ?? 0; epoch < options.epochs; epoch++) {
      const started = performance.now();
      const trainSums = await trainEpoch(run, trainIter, epoch, started);
      const trainSeconds = (performance.now() - started) / 1000;
      const testSums = await testEpoch(run, testIter, epoch);
      const metrics = measure(epoch, trainSums, testSums, trainSeconds, started);
      run.history.push(metrics);
      await record(run, metrics);
    }
  } finally {
    run.bar?.stop();
  }
  return run.history;
}
