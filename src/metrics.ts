/**
 * Segmentation metrics from a confusion matrix: pixel accuracy (the chapter's) and the
 * intersection over union per class and its mean (the FCN paper's); and the metrics of a
 * training epoch, as train() reports them and checkpoints and plots keep them.
 */
import type { Tensor } from './tensor';

/** What {@link segmentationMetrics} computes. */
export interface SegmentationMetrics {
  /** Correctly labelled pixels / labelled pixels. */
  pixelAccuracy: number;
  /** Mean of the classes' IoU, over the classes that occur in the labels or the predictions. */
  meanIoU: number;
  /** IoU of each class: TP / (TP + FP + FN); null where the class occurs nowhere. */
  classIoU: (number | null)[];
}

/** A confusion matrix as rows of counts: confusion[truth][prediction]. */
export type Confusion = number[][];

/** The rows of an int64 [C, C] confusion tensor. */
export function confusionRows(confusion: Tensor): Confusion {
  const [rows, cols] = confusion.shape;
  if (confusion.shape.length !== 2 || rows !== cols) {
    throw new RangeError(`confusion: expected a square [C, C] tensor, got [${confusion.shape.join(', ')}]`);
  }
  const data = confusion.to('float64').toTypedArray() as Float64Array;
  return Array.from({ length: rows }, (_, r) => Array.from(data.subarray(r * cols, (r + 1) * cols)));
}

/** Sums confusion matrices of the same size (b into a, in place). */
export function addConfusion(a: Confusion, b: Confusion): Confusion {
  if (a.length !== b.length)
    throw new RangeError(`cannot add a ${b.length}-class confusion to a ${a.length}-class one`);
  a.forEach((row, r) => {
    row.forEach((_, c) => {
      row[c] += b[r][c];
    });
  });
  return a;
}

/** Pixel accuracy, per-class IoU and mean IoU of a confusion matrix (rows: truth). */
export function segmentationMetrics(confusion: Confusion): SegmentationMetrics {
  const n = confusion.length;
  let total = 0;
  let correct = 0;
  const classIoU: (number | null)[] = [];
  for (let c = 0; c < n; c++) {
    if (confusion[c].length !== n)
      throw new RangeError(`confusion: row ${c} has ${confusion[c].length} entries, not ${n}`);
    const tp = confusion[c][c];
    let truth = 0;
    let predicted = 0;
    for (let k = 0; k < n; k++) {
      truth += confusion[c][k];
      predicted += confusion[k][c];
    }
    total += truth;
    correct += tp;
    const union = truth + predicted - tp;
    classIoU.push(union > 0 ? tp / union : null);
  }
  const present = classIoU.filter((v): v is number => v !== null);
  return {
    pixelAccuracy: total > 0 ? correct / total : 0,
    meanIoU: present.length > 0 ? present.reduce((s, v) => s + v, 0) / present.length : 0,
    classIoU,
  };
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
