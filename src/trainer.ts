/**
 * The Trainer: a model, its optimizer and its loss (the chapter's, or torchvision's for its
 * segmentation models) bound for native steps (one call per step: forward, loss, backward,
 * update, off the event loop), and evaluation of batches into a confusion matrix. {@link train}
 * drives it; loops of your own can too.
 */
import { checkInteger, checkNumber, checkOneOf, checkTensor } from './checks';
import type { ProcessGroup } from './distributed';
import { addConfusion, type Confusion, confusionRows, segmentationMetrics } from './metrics';
import { SegmentationModel } from './models/segmentation';
import { type NativeTrainer, native } from './native';
import type { Module } from './nn/module';
import type { Optimizer } from './optim';
import { predict } from './predict';
import { type Device, Tensor } from './tensor';
import type { Batch } from './voc/loader';

/** The losses a Trainer computes: see {@link LossOptions.kind}. */
export const LOSS_KINDS = ['chapter', 'torchvision'] as const;

/** The loss: per-pixel cross-entropy, reduced as the chapter or torchvision's recipe does. */
export interface LossOptions {
  /**
   * 'chapter' (the default for other models): each image's mean over its pixels, summed over
   * the batch. 'torchvision' (the default for `models.segmentation` models): PyTorch's
   * mean-reduced `cross_entropy` over the batch's labelled pixels, as torchvision's
   * references/segmentation trains them. A model with an auxiliary output adds `auxWeight`
   * times the same loss of `aux`.
   */
  kind?: (typeof LOSS_KINDS)[number];
  /** Weight of the auxiliary output's loss (default 0.5, torchvision's). */
  auxWeight?: number;
  /** Label value that counts nowhere (default 255, VOC's object boundaries). */
  ignoreIndex?: number;
  /** PyTorch's `label_smoothing` (default 0). */
  labelSmoothing?: number;
  /** A weight per class (float32 [C]), as PyTorch's `weight` (of the cross-entropy). */
  classWeights?: Tensor;
  /**
   * The terms of the loss and their weights (default `{ crossEntropy: 1 }`): the
   * cross-entropy as `kind` reduces it, and segmentation_models_pytorch's multiclass Dice
   * and Focal losses ({@link nn.functional.diceLoss}, {@link nn.functional.focalLoss}),
   * batch means, counted per image under the chapter's sum over the images.
   */
  terms?: { crossEntropy?: number; dice?: number; focal?: number };
  /** The Focal loss's gamma (default 2). */
  focalGamma?: number;
}

/** What one training step did: the batch's loss and its pixel counts. */
export interface StepResult {
  /** The batch's loss times its images (chapter: the sum of the per-image losses), so that summing over batches and dividing by the images averages. */
  loss: number;
  /** Pixels whose argmax equals their label. */
  correct: number;
  /** Labelled pixels (the ignore label left out). */
  pixels: number;
  /** The optimizer stepped: false for the batches of an accumulation but its last. */
  updated: boolean;
  /**
   * With a process group, seconds the update waited for the gradients' all-reduce after the
   * backward: the part of the communication the backward did not hide (0 without a group).
   */
  allReduceWait: number;
}

function lossSettings(net: Module, loss: LossOptions = {}) {
  return {
    kind: checkOneOf(
      loss.kind ?? (net instanceof SegmentationModel ? 'torchvision' : 'chapter'),
      'loss.kind',
      LOSS_KINDS,
    ),
    auxWeight: checkNumber(loss.auxWeight ?? 0.5, 'loss.auxWeight', 0),
    ignoreIndex: checkInteger(loss.ignoreIndex ?? 255, 'loss.ignoreIndex'),
    labelSmoothing: checkNumber(loss.labelSmoothing ?? 0, 'loss.labelSmoothing', 0, 1),
    ...(loss.classWeights ? { classWeights: checkTensor(loss.classWeights, 'loss.classWeights') } : {}),
    crossEntropy: checkNumber(loss.terms?.crossEntropy ?? (loss.terms ? 0 : 1), 'loss.terms.crossEntropy', 0),
    dice: checkNumber(loss.terms?.dice ?? 0, 'loss.terms.dice', 0),
    focal: checkNumber(loss.terms?.focal ?? 0, 'loss.terms.focal', 0),
    focalGamma: checkNumber(loss.focalGamma ?? 2, 'loss.focalGamma', 0),
  };
}

/**
 * One model, optimizer and loss bound for native steps, for loops of your own; {@link train}
 * uses it. The model moves to `devices[0]`. A step puts a model in eval mode into training
 * mode; a model already in training mode keeps its modules' modes, so BatchNorm or Dropout
 * layers put in eval mode (`model.get(...).eval()`) stay frozen until an evaluation.
 */
export class Trainer {
  /** @internal */
  readonly native: NativeTrainer;

  constructor(
    net: Module,
    optimizer: Optimizer | null,
    options: {
      devices?: Device[];
      loss?: LossOptions;
      /** Average each step's gradients across this group's ranks (see `TrainOptions.processGroup`). */
      processGroup?: ProcessGroup;
      /** Batches whose gradients make one update (see `TrainOptions.accumulate`); default 1. */
      accumulate?: number;
    } = {},
  ) {
    this.accumulate = checkInteger(options.accumulate ?? 1, 'accumulate', 1, 1 << 20);
    const devices = options.devices ?? ['cpu'];
    if (!Array.isArray(devices) || devices.length === 0) throw new RangeError('devices: expected a non-empty array');
    this.native = new native.NativeTrainer(
      net.native,
      optimizer?.native ?? null,
      devices,
      lossSettings(net, options.loss),
      options.processGroup?.native ?? null,
      this.accumulate,
    );
  }

  /** Batches whose gradients make one update. */
  readonly accumulate: number;
  /** Batches stepped since the last update. */
  private pending = 0;

  /**
   * Forward, loss and backward on images [B, 3, H, W] and labels int64 [B, H, W], then the
   * update; with `accumulate` N, the update comes with every N-th batch and the others only add
   * their gradients (talking to no other rank of a process group).
   */
  async step(images: Tensor, labels: Tensor): Promise<StepResult> {
    const update = this.pending + 1 >= this.accumulate;
    const r = await this.native.step(checkTensor(images, 'images'), checkTensor(labels, 'labels'), update);
    this.pending = update ? 0 : this.pending + 1;
    return r;
  }

  /**
   * Applies the gradients of an accumulation that has not reached `accumulate` batches (the end
   * of an epoch), as its last batch would have; resolves to whether the optimizer stepped.
   */
  async applyPending(): Promise<boolean> {
    this.pending = 0;
    return this.native.applyPending();
  }

  /**
   * The loss (as {@link StepResult.loss}) and the confusion matrix (int64 [C, C], rows the
   * labels, columns the predictions of `out`, ignored pixels left out) of a batch, in eval mode.
   */
  async evaluate(images: Tensor, labels: Tensor): Promise<{ loss: number; confusion: Tensor }> {
    const r = await this.native.evaluate(checkTensor(images, 'images'), checkTensor(labels, 'labels'));
    return { loss: r.loss, confusion: new Tensor(r.confusion) };
  }
}

/** @internal Stops a run between batches when signal is aborted. */
export function abortIfAsked(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw Object.assign(new Error('training stopped: aborted'), { name: 'AbortError', cause: signal.reason });
  }
}

/**
 * @internal Runs use on every batch, stopping between batches when signal is aborted, and
 * disposes each batch after it; returns the number of examples seen.
 */
export async function eachBatch(
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

/** The summed losses and confusion matrices of batches: what an evaluation gathers. */
export interface EvaluationSums {
  loss: number;
  examples: number;
  confusion: Confusion | null;
}

/** @internal Sum of the batches' losses and confusion matrices, in eval mode. */
export async function evaluateBatches(
  trainer: Trainer,
  batches: AsyncIterable<Batch>,
  signal?: AbortSignal,
): Promise<EvaluationSums> {
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
  const { loss, examples, confusion } = await evaluateBatches(trainer, batches);
  if (!confusion) throw new Error('evaluate: the batches were empty');
  return { loss: loss / examples, ...segmentationMetrics(confusion) };
}

/**
 * Evaluates net on whole images, each labelled at its own size as {@link predict} does
 * (tiles): pixel accuracy, mean and per-class IoU over numClasses classes (default 21, VOC's),
 * pixels labelled ignoreIndex (default 255) left out. There is no loss of whole images: `loss`
 * is NaN.
 */
export async function evaluateWholeImages(
  net: Module,
  examples: readonly { image: Tensor; label: Tensor }[],
  options: { numClasses?: number; ignoreIndex?: number } = {},
): Promise<{ loss: number; pixelAccuracy: number; meanIoU: number; classIoU: (number | null)[] }> {
  const classes = checkInteger(options.numClasses ?? 21, 'numClasses', 1);
  const ignore = checkInteger(options.ignoreIndex ?? 255, 'ignoreIndex');
  if (examples.length === 0) throw new Error('evaluateWholeImages: no examples');
  const confusion: Confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (const { image, label } of examples) {
    // A segmentation model labels the whole image with its weights' preprocessing; the chapter's FCN by tiles.
    const mode = net instanceof SegmentationModel ? {} : { mode: 'whole' as const };
    const predicted = await predict(net, image.permute([2, 0, 1]).contiguous(), mode);
    const guess = predicted.toTypedArray() as BigInt64Array;
    const truth = label.to('int64').toTypedArray() as BigInt64Array;
    for (let i = 0; i < truth.length; i++) {
      const t = Number(truth[i]);
      const p = Number(guess[i]);
      if (t !== ignore && t >= 0 && t < classes && p >= 0 && p < classes) confusion[t][p] += 1;
    }
    predicted.dispose();
  }
  return { loss: Number.NaN, ...segmentationMetrics(confusion) };
}
