/**
 * The run view's "last evaluation": the run's checkpoint labels every image of the val split
 * of its data folder whole (`predict` in 'whole' mode, at the image's own size), the labels
 * and predictions are counted into a confusion matrix (boundary pixels, 255, left out), and
 * `segmentationMetrics` gives pixel accuracy and IoU per class. The first images are kept as
 * PNGs for the page's grid: image, prediction, label (both coloured by `label2image`) and an
 * error mask. One evaluation runs at a time, image by image on the torch thread, and its
 * result is kept per checkpoint version, so asking again costs nothing until the next epoch.
 */
import sharp from 'sharp';
import { decodeRgb, label2image, pixelsToTensor } from '../image';
import { type Confusion, segmentationMetrics } from '../metrics';
import type { Tensor } from '../tensor';
import * as torch from '../torch';
import { VOC_IGNORE_INDEX, VOCSegDataset } from '../voc';
import { readLabel } from '../voc/labels';
import { classColour, type LoadedModel, labelImage } from './models';

/** The kinds of picture kept per grid image. */
export const GRID_KINDS = ['image', 'prediction', 'label', 'error'] as const;
/** One of {@link GRID_KINDS}. */
export type GridKind = (typeof GRID_KINDS)[number];

/** One validation image of the grid. */
export interface GridEntry {
  name: string;
  width: number;
  height: number;
  /** Share of the labelled pixels predicted wrongly. */
  errorRate: number;
}

/** A finished evaluation. */
export interface EvaluationResult {
  /** The checkpoint's epoch. */
  epoch: number;
  /** Val images evaluated. */
  examples: number;
  pixelAccuracy: number;
  meanIoU: number;
  /** IoU per class (null where the class occurs in neither labels nor predictions). */
  classIoU: (number | null)[];
  /** Pixels counted: confusion[truth][prediction]. */
  confusion: Confusion;
  classes: readonly string[];
  /** RGB colour of each class, index = class id. */
  palette: [number, number, number][];
  grid: GridEntry[];
  seconds: number;
}

/** Where an evaluation stands, as /api/run/evaluation reports it. */
export type EvaluationState =
  | { state: 'none' }
  | { state: 'running'; epoch: number; done: number; total: number }
  | { state: 'failed'; epoch: number; error: string }
  | ({ state: 'done' } & EvaluationResult);

/** A finished evaluation and its grid pictures (PNG). */
export interface Evaluated {
  result: EvaluationResult;
  pictures: Map<string, Buffer>;
}

/** RGB PNG of uint8 pixels [H, W, 3]. */
function png(hwc: Tensor): Promise<Buffer> {
  const [height, width] = hwc.shape;
  const data = Buffer.from((hwc.contiguous().toTypedArray() as Uint8Array).buffer);
  return sharp(data, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

/**
 * The error mask: wrong pixels red, boundary (ignored) pixels grey, right pixels a dark copy
 * of the image so that the errors can be placed.
 */
function errorMask(image: Uint8Array, labels: Uint8Array, predicted: Int32Array): Buffer {
  const out = Buffer.alloc(labels.length * 3);
  for (let i = 0; i < labels.length; i++) {
    const o = i * 3;
    if (labels[i] === VOC_IGNORE_INDEX) out.fill(128, o, o + 3);
    else if (labels[i] !== predicted[i]) {
      out[o] = 255;
      out[o + 1] = 32;
      out[o + 2] = 32;
    } else {
      const grey = (image[o] + image[o + 1] + image[o + 2]) / 12;
      out.fill(grey, o, o + 3);
    }
  }
  return out;
}

/** Adds one image's labels and predictions to confusion; returns [labelled, wrong] pixels. */
function count(confusion: Confusion, labels: Uint8Array, predicted: Int32Array): [number, number] {
  const classes = confusion.length;
  let labelled = 0;
  let wrong = 0;
  for (let i = 0; i < labels.length; i++) {
    const truth = labels[i];
    if (truth === VOC_IGNORE_INDEX || truth >= classes) continue;
    const guess = predicted[i];
    confusion[truth][guess] += 1;
    labelled += 1;
    if (guess !== truth) wrong += 1;
  }
  return [labelled, wrong];
}

/**
 * Evaluates model on the val split of the VOC folder root, whole images; the first gridSize
 * images are kept as pictures. progress is told after each image.
 */
export async function evaluateValSplit(
  model: LoadedModel,
  epoch: number,
  root: string,
  gridSize: number,
  progress: (done: number, total: number) => void,
): Promise<Evaluated> {
  const started = performance.now();
  const dataset = new VOCSegDataset(root, { split: 'val', cropSize: [1, 1], log: null });
  const names = dataset.names;
  if (names.length === 0) throw new Error(`the val split of '${dataset.root}' lists no images`);
  const classes = model.classes.length;
  const confusion: Confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  const pictures = new Map<string, Buffer>();
  const grid: GridEntry[] = [];
  for (const [index, name] of names.entries()) {
    await torch.tidy(async () => {
      const rgb = await decodeRgb(dataset.imagePath(name));
      const labels = await readLabel(dataset.labelPath(name));
      const [labelHeight, labelWidth] = labels.shape;
      if (labelWidth !== rgb.width || labelHeight !== rgb.height) {
        throw new Error(`the label of '${name}' is ${labelWidth}x${labelHeight}, its image ${rgb.width}x${rgb.height}`);
      }
      const hwc = pixelsToTensor(rgb);
      const image = hwc.permute([2, 0, 1]).contiguous();
      const predicted = await labelImage(model, image);
      const predictedIds = predicted.to('int32').toTypedArray() as Int32Array;
      const labelIds = labels.toTypedArray() as Uint8Array;
      const [labelled, wrong] = count(confusion, labelIds, predictedIds);
      if (index < gridSize) {
        const mask = errorMask(rgb.data, labelIds, predictedIds);
        const raw = { raw: { width: rgb.width, height: rgb.height, channels: 3 as const } };
        pictures.set(`${index}/image`, await png(hwc));
        pictures.set(`${index}/prediction`, await png(label2image(predicted)));
        pictures.set(`${index}/label`, await png(label2image(labels)));
        pictures.set(`${index}/error`, await sharp(mask, raw).png().toBuffer());
        grid.push({ name, width: rgb.width, height: rgb.height, errorRate: labelled > 0 ? wrong / labelled : 0 });
      }
    });
    progress(index + 1, names.length);
  }
  const metrics = segmentationMetrics(confusion);
  return {
    result: {
      epoch,
      examples: names.length,
      ...metrics,
      confusion,
      classes: model.classes,
      palette: model.classes.map((_, id) => classColour(id)),
      grid,
      seconds: (performance.now() - started) / 1000,
    },
    pictures,
  };
}
