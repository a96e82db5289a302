/**
 * The chapter's `train_ch13`: epochs of native training steps (forward, loss, backward,
 * SGD update in one call off the event loop), then an evaluation of the test batches with
 * pixel accuracy and mean IoU, a progress bar, a plot of the curves, and an atomic
 * checkpoint per epoch from which a run resumes exactly. With a process group the run is
 * one rank of a distributed data-parallel run (see src/distributed.ts).
 */
import { SingleBar } from 'cli-progress';
import { type Checkpoint, saveCheckpoint } from './checkpoint';
import type { ProcessGroup } from './distributed';
import { addConfusion, type Confusion, confusionRows, segmentationMetrics } from './metrics';
import { type NativeTrainer, native } from './native';
import { checkTensor, type Module } from './nn/module';
import type { SGD } from './optim';
import { plotHistory } from './plot';
import { type Device, Tensor } from './tensor';
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

/** The loss: the chapter's per-image mean of per-pixel cross-entropy. */
export interface LossOptions {
  /** Label value that counts nowhere (default 255, VOC's object boundaries). */
  ignoreIndex?: number;
  /** PyTorch's `label_smoothing` (default 0). */
  labelSmoothing?: number;
  /** A weight per class (float32 [C]), as PyTorch's `weight`. */
  classWeights?: Tensor;
}

/** Metrics of one epoch. */
export interface EpochMetrics {
  /** 1-based epoch number. */
  epoch: number;
  /** Mean per-image loss over the training batches. */
  trainLoss: number;
  /** Training pixel accuracy (pixels with the ignore label left out). */
  trainAccuracy: number;
  /** Mean per-image loss over the test batches (eval mode). */
  testLoss: number;
  /** Test pixel accuracy. */
  testAccuracy: number;
  /** Test mean intersection over union. */
  testMeanIoU: number;
  /** Test IoU per class (null for a class absent from labels and predictions). */
  testClassIoU: (number | null)[];
  /** Training examples per second in this epoch. */
  examplesPerSecond: number;
  /** Seconds this epoch took, evaluation included. */
  seconds: number;
}

/** Options of {@link train}. */
export interface TrainOptions {
  /** Total epochs (a resumed run continues up to this number). */
  epochs: number;
  /** The optimizer over the model's parameters (the chapter: SGD, lr 0.001, wd 1e-3). */
  optimizer: SGD;
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

/** What one training step did: the batch's summed per-image loss and its pixel counts. */
export interface StepResult {
  /** Sum over the batch of the per-image losses. */
  loss: number;
  /** Pixels whose argmax equals their label. */
  correct: number;
  /** Labelled pixels (the ignore label left out). */
  pixels: number;
}

/**
 * One model, optimizer and loss bound for native steps, for loops of your own; {@link train}
 * uses it. The model moves to `devices[0]`.
 */
export class Trainer {
  /** @internal */
  readonly native: NativeTrainer;

  constructor(
    net: Module,
    optimizer: SGD | null,
    options: {
      devices?: Device[];
      loss?: LossOptions;
      /** Average each step's gradients across this group's ranks (see {@link TrainOptions}). */
      processGroup?: ProcessGroup;
    } = {},
  ) {
    const devices = options.devices ?? ['cpu'];
    if (!Array.isArray(devices) || devices.length === 0) throw new RangeError('devices: expected a non-empty array');
    this.native = new native.NativeTrainer(
      net.native,
      optimizer?.native ?? null,
      devices,
      lossSettings(options.loss),
      options.processGroup?.native ?? null,
    );
  }

  /** Forward, loss, backward and update on images [B, 3, H, W] and labels int64 [B, H, W]. */
  step(images: Tensor, labels: Tensor): Promise<StepResult> {
    return this.native.step(checkTensor(images, 'images'), checkTensor(labels, 'labels'));
  }

  /**
   * The summed per-image loss and the confusion matrix (int64 [C, C], rows the labels,
   * columns the predictions, ignored pixels left out) of a batch, in eval mode.
   */
  async evaluate(images: Tensor, labels: Tensor): Promise<{ loss: number; confusion: Tensor }> {
    const r = await this.native.evaluate(checkTensor(images, 'images'), checkTensor(labels, 'labels'));
    return { loss: r.loss, confusion: new Tensor(r.confusion) };
  }
}

const fixed = (v: number, digits = 3) => v.toFixed(digits);

function abortIfAsked(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw Object.assign(new Error('training stopped: aborted'), { name: 'AbortError', cause: signal.reason });
  }
}

/**
 * Runs use on every batch, stopping between batches when signal is aborted, and disposes
 * each batch after it; returns the number of examples seen.
 */
async function eachBatch(
  batches: AsyncIterable<Batch>,
  signal: AbortSignal | undefined,
  use: (X: Tensor, Y: Tensor, examples: number) => Promise<void>,
): Promise<number> {
  let examples = 0;
  for await (const { X, Y } of batches) {
    abortIfAsked(signal);
    examples += X.shape[0];
    try {
      await use(X, Y, examples);
    } finally {
      X.dispose();
      Y.dispose();
    }
  }
  return examples;
}

/** Sum of the test batches' losses and confusion matrices, in eval mode. */
async function evaluateWith(
  trainer: Trainer,
  batches: AsyncIterable<Batch>,
  signal?: AbortSignal,
): Promise<{ loss: number; examples: number; confusion: Confusion | null }> {
  let loss = 0;
  let confusion: Confusion | null = null;
  const examples = await eachBatch(batches, signal, async (X, Y) => {
    const r = await trainer.evaluate(X, Y);
    loss += r.loss;
    const rows = confusionRows(r.confusion);
    r.confusion.dispose();
    confusion = confusion ? addConfusion(confusion, rows) : rows;
  });
  return { loss, examples, confusion };
}

function lossSettings(loss: LossOptions = {}): {
  ignoreIndex: number;
  labelSmoothing: number;
  classWeights?: Tensor['native'];
} {
  const ignoreIndex = loss.ignoreIndex ?? 255;
  const labelSmoothing = loss.labelSmoothing ?? 0;
  if (!Number.isInteger(ignoreIndex)) throw new RangeError(`loss.ignoreIndex: expected an integer, got ${ignoreIndex}`);
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) {
    throw new RangeError(`loss.labelSmoothing: expected a number in [0, 1], got ${labelSmoothing}`);
  }
  return {
    ignoreIndex,
    labelSmoothing,
    ...(loss.classWeights ? { classWeights: checkTensor(loss.classWeights, 'loss.classWeights') } : {}),
  };
}

/**
 * Evaluates net on batches in eval mode: loss, pixel accuracy, mean and per-class IoU.
 * The model must already be on `device` (default 'cpu').
 */
export async function evaluate(
  net: Module,
  batches: AsyncIterable<Batch>,
  options: { device?: Device; loss?: LossOptions } = {},
): Promise<{ loss: number; pixelAccuracy: number; meanIoU: number; classIoU: (number | null)[] }> {
  const trainer = new Trainer(net, null, { devices: [options.device ?? 'cpu'], loss: options.loss });
  const { loss, examples, confusion } = await evaluateWith(trainer, batches);
  if (!confusion) throw new Error('evaluate: the batches were empty');
  return { loss: loss / examples, ...segmentationMetrics(confusion) };
}

/** The test batches' sums over every rank of the group. */
async function sumOverRanks(
  group: ProcessGroup,
  test: { loss: number; examples: number; confusion: Confusion | null },
): Promise<{ loss: number; examples: number; confusion: Confusion | null }> {
  const [classes] = await group.allReduceNumbers([test.confusion?.length ?? 0], 'max');
  if (classes === 0) return test;
  const local = test.confusion ?? Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  const [loss, examples, ...flat] = await group.allReduceNumbers([test.loss, test.examples, ...local.flat()]);
  const confusion = Array.from({ length: classes }, (_, r) => flat.slice(r * classes, (r + 1) * classes));
  return { loss, examples, confusion };
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
  const { epochs, optimizer, resume, signal } = options;
  if (!Number.isInteger(epochs) || epochs < 1) throw new RangeError(`epochs: expected an integer >= 1, got ${epochs}`);
  const devices = options.devices ?? ['cpu'];
  for (const [name, iter] of [
    ['trainIter', trainIter],
    ['testIter', testIter],
  ] as const) {
    if (iter.length === 0) throw new RangeError(`${name} has no batches (too few examples for one batch?)`);
  }
  const group = options.processGroup;
  const lead = !group || group.rank === 0; // logs, plots and writes checkpoints
  const log = !lead ? null : options.log === undefined ? console.log : options.log;
  const history: EpochMetrics[] = [];
  if (resume) {
    net.loadStateDict(resume.model);
    optimizer.loadStateDict(resume.optimizer);
    history.push(...resume.history);
  }
  const start = resume?.epoch ?? 0;
  const trainer = new Trainer(net, optimizer, { devices, loss: options.loss, processGroup: group });
  if (group) {
    await checkSameLength(group, trainIter.length);
    await group.broadcastModule(net, 0);
  }
  const bar =
    lead && (options.progress ?? process.stderr.isTTY)
      ? new SingleBar({
          format: 'epoch {epoch} |{bar}| {value}/{total} batches | loss {loss} | {rate} img/s',
          hideCursor: true,
          clearOnComplete: true,
        })
      : null;
  try {
    for (let epoch = start; epoch < epochs; epoch++) {
      const started = performance.now();
      let lossSum = 0;
      let correct = 0;
      let pixels = 0;
      let examples = 0;
      bar?.start(trainIter.length, 0, { epoch: `${epoch + 1}/${epochs}`, loss: '-', rate: '-' });
      examples = await eachBatch(trainIter.epoch(epoch), signal, async (X, Y, seen) => {
        const r = await trainer.step(X, Y);
        lossSum += r.loss;
        correct += r.correct;
        pixels += r.pixels;
        const seconds = (performance.now() - started) / 1000;
        bar?.increment({ loss: fixed(lossSum / seen), rate: fixed(seen / seconds, 1) });
      });
      bar?.stop();
      if (group)
        [lossSum, correct, pixels, examples] = await group.allReduceNumbers([lossSum, correct, pixels, examples]);
      if (examples === 0) throw new Error(`epoch ${epoch + 1}: the training batches were empty`);
      const trainSeconds = (performance.now() - started) / 1000;
      let test = await evaluateWith(trainer, testIter.epoch(epoch), signal);
      if (group) test = await sumOverRanks(group, test);
      if (!test.confusion) throw new Error(`epoch ${epoch + 1}: the test batches were empty`);
      const metrics = segmentationMetrics(test.confusion);
      const m: EpochMetrics = {
        epoch: epoch + 1,
        trainLoss: lossSum / examples,
        trainAccuracy: pixels > 0 ? correct / pixels : 0,
        testLoss: test.loss / test.examples,
        testAccuracy: metrics.pixelAccuracy,
        testMeanIoU: metrics.meanIoU,
        testClassIoU: metrics.classIoU,
        examplesPerSecond: examples / trainSeconds,
        seconds: (performance.now() - started) / 1000,
      };
      history.push(m);
      if (lead && options.checkpoint) {
        await saveCheckpoint(options.checkpoint, {
          model: net,
          optimizer,
          epoch: epoch + 1,
          history,
          config: options.config ?? {},
        });
      }
      if (lead && options.plot) await plotHistory(history, options.plot);
      log?.(
        `epoch ${m.epoch}/${epochs}: loss ${fixed(m.trainLoss)}, train acc ${fixed(m.trainAccuracy)}, ` +
          `test acc ${fixed(m.testAccuracy)}, test mIoU ${fixed(m.testMeanIoU)}, ` +
          `${fixed(m.examplesPerSecond, 1)} examples/sec on ${group ? `${group.worldSize} processes` : devices.join(', ')}`,
      );
    }
  } finally {
    bar?.stop();
  }
  return history;
}
