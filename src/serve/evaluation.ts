/**
 * The run view's "last evaluation": the run's checkpoint labels every image of the val split
 * of its dataset whole (`predict` in 'whole' mode, at the image's own size), the labels
 * and predictions are counted into a confusion matrix (ignored pixels left out), and
 * `segmentationMetrics` gives pixel accuracy and IoU per class. The first images are kept as
 * PNGs for the page's grid: image, prediction, label (both in the classes' colours) and an
 * error mask. One evaluation runs at a time, image by image on the torch thread, and its
 * result is kept per checkpoint version, so asking again costs nothing until the next epoch.
 */
import sharp from 'sharp';
import { classColour } from '../data/classes';
import { disposeDataset, problemsError, type ReadDatasetOptions, readDataset } from '../data/dataset';
import { label2image } from '../image';
import { type Confusion, segmentationMetrics } from '../metrics';
import type { Tensor } from '../tensor';
import * as torch from '../torch';
import { type LoadedModel, labelImage } from './models';

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
 * The error mask: wrong pixels red, ignored pixels grey, right pixels a dark copy of the
 * image so that the errors can be placed.
 */
function errorMask(image: Uint8Array, labels: ArrayLike<number>, predicted: Int32Array, ignore: number): Buffer {
  const out = Buffer.alloc(labels.length * 3);
  for (let i = 0; i < labels.length; i++) {
    const o = i * 3;
    if (labels[i] === ignore) out.fill(128, o, o + 3);
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
function count(
  confusion: Confusion,
  labels: ArrayLike<number>,
  predicted: Int32Array,
  ignore: number,
): [number, number] {
  const classes = confusion.length;
  let labelled = 0;
  let wrong = 0;
  for (let i = 0; i < labels.length; i++) {
    const truth = labels[i];
    if (truth === ignore || truth >= classes) continue;
    const guess = predicted[i];
    confusion[truth][guess] += 1;
    labelled += 1;
    if (guess !== truth) wrong += 1;
  }
  return [labelled, wrong];
}

/**
 * Evaluates model on the val split of the dataset at root (read as its training read it:
 * `dataset`, absent for VOC2012), whole images; the first gridSize images are kept as
 * pictures. progress is told after each image.
 */
export async function evaluateValSplit(
  model: LoadedModel,
  epoch: number,
  root: string,
  dataset: ReadDatasetOptions | undefined,
  gridSize: number,
  progress: (done: number, total: number) => void,
): Promise<Evaluated> {
  const started = performance.now();
  const palette = model.palette ?? model.classes.map((_, id) => classColour(id));
  const data = await readDataset(root, {
    ...(dataset ?? { format: 'voc' }),
    classes: model.classes.map((name, id) => ({ name, color: palette[id] })),
    only: 'val',
    concurrency: 1,
  });
  try {
    if (data.problems.length > 0) throw problemsError(data, root);
    const examples = data.val.examples;
    if (examples.length === 0) throw new Error(`the val split of '${data.root}' lists no images`);
    const classes = model.classes.length;
    const ignore = data.ignoreIndex;
    const confusion: Confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
    const pictures = new Map<string, Buffer>();
    const grid: GridEntry[] = [];
    for (const [index, { name, image: hwc, label: labels }] of examples.entries()) {
      await torch.tidy(async () => {
        const [height, width] = labels.shape;
        const image = hwc.permute([2, 0, 1]).contiguous();
        const predicted = await labelImage(model, image);
        const predictedIds = predicted.to('int32').toTypedArray() as Int32Array;
        const labelIds = labels.toTypedArray() as Uint8Array | Int32Array;
        const [labelled, wrong] = count(confusion, labelIds, predictedIds, ignore);
        if (index < gridSize) {
          const mask = errorMask(hwc.toTypedArray() as Uint8Array, labelIds, predictedIds, ignore);
          const raw = { raw: { width, height, channels: 3 as const } };
          pictures.set(`${index}/image`, await png(hwc));
          pictures.set(`${index}/prediction`, await png(label2image(predicted, palette)));
          pictures.set(`${index}/label`, await png(label2image(labels, palette)));
          pictures.set(`${index}/error`, await sharp(mask, raw).png().toBuffer());
          grid.push({ name, width, height, errorRate: labelled > 0 ? wrong / labelled : 0 });
        }
      });
      progress(index + 1, examples.length);
    }
    const result = {
      epoch,
      examples: examples.length,
      ...segmentationMetrics(confusion),
      confusion,
      classes: model.classes,
      palette,
      grid,
      seconds: (performance.now() - started) / 1000,
    };
    return { result, pictures };
  } finally {
    disposeDataset(data);
  }
}
