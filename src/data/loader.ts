/**
 * Training and test batches of any dataset layout: VOC2012 exactly as the chapter loads it
 * ({@link voc.loadDataVoc}: images smaller than the crop dropped), image/mask folders read
 * by {@link readDataset} (smaller images padded with the ignore label, as torchvision's
 * references pad them, and each crop mirrored left to right with probability 1/2).
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkInteger } from '../checks';
import type { Example } from '../voc/dataset';
import { type ExampleSet, type LoadDataVocOptions, loadDataVoc, VOCBatches } from '../voc/loader';
import { type ClassInfo, defaultClasses } from './classes';
import { detectFormat, problemsError, type ReadDatasetOptions, readDataset, type SegmentationData } from './dataset';
import type { SplitFile } from './folders';

/** One split's decoded examples, as {@link VOCBatches} draws from them. */
class ExampleList implements ExampleSet {
  constructor(
    readonly examples: Example[],
    readonly cropSize: [number, number],
    readonly ignoreIndex: number,
  ) {}
  get length(): number {
    return this.examples.length;
  }
}

/** Options of {@link loadData}: the loader's ({@link LoadDataVocOptions}) and the reader's. */
export interface LoadDataOptions extends LoadDataVocOptions, Omit<ReadDatasetOptions, 'seed' | 'only'> {
  /** Mirror each training crop left to right with probability 1/2 (default true; never for VOC2012, as the chapter). */
  hflip?: boolean;
  /**
   * torchvision's RandomResize of training images: the shorter side to a random size from
   * 0.5 to 2 times baseSize, before the crop. Default: the crop's shorter side times 520 / 480
   * (torchvision's base and crop sizes); null: no resize. Never for VOC2012, as the chapter.
   */
  baseSize?: number | null;
}

/** What {@link loadData} gives: the batches, and the dataset's classes and ignore label. */
export interface LoadedData {
  trainIter: VOCBatches;
  testIter: VOCBatches;
  /** The classes, index = class id (VOC2012's 21 for a VOC tree). */
  classes: ClassInfo[];
  /** The label of ignored pixels in the batches' Y (255 up to 255 classes). */
  ignoreIndex: number;
  /** The dataset as read (null for a VOC2012 tree, which the chapter's loader reads). */
  data: SegmentationData | null;
}

/**
 * Training and test batches of the dataset at `options.root`, whatever its layout (see
 * `readDataset`; `format` forces one). A dataset with problems is refused before anything
 * trains, naming the first problem's file.
 */
export async function loadData(
  batchSize: number,
  cropSize: [number, number],
  options: LoadDataOptions,
): Promise<LoadedData> {
  checkInteger(batchSize, 'batchSize', 1);
  const format = options.format ?? detectFormat(options.root);
  if (format === 'voc') {
    const { trainIter, testIter } = await loadDataVoc(batchSize, cropSize, options);
    return { trainIter, testIter, classes: defaultClasses(21), ignoreIndex: 255, data: null };
  }
  const seed = options.seed ?? 0;
  const data = await readDataset(options.root, { ...options, format, seed });
  if (data.problems.length > 0) throw problemsError(data, options.root);
  const log = options.log === undefined ? console.log : options.log;
  const [h, w] = cropSize;
  for (const [split, examples] of [
    ['train', data.train.examples],
    ['val', data.val.examples],
  ] as const) {
    const small = examples.filter((e) => e.image.shape[0] < h || e.image.shape[1] < w).length;
    log?.(`read ${examples.length} examples (${split}; ${small} smaller than the crop, padded with the ignore label)`);
  }
  const shard = options.shard;
  const base =
    options.baseSize === null
      ? null
      : checkInteger(options.baseSize ?? Math.round((Math.min(h, w) * 520) / 480), 'baseSize', 2);
  const batches = (examples: Example[], train: boolean) =>
    new VOCBatches(new ExampleList(examples, cropSize, data.ignoreIndex), batchSize, {
      shuffle: train && (options.shuffle ?? true),
      dropLast: train && (options.dropLast ?? true), // every val image is measured
      seed: train ? seed : seed + 1_000_003,
      hflip: train && (options.hflip ?? true),
      ...(train && base !== null ? { resize: [Math.floor(0.5 * base), Math.floor(2 * base)] as [number, number] } : {}),
      ...(shard ? { shard: { ...shard, pad: train } } : {}),
    });
  const trainIter = batches(data.train.examples, true);
  const testIter = batches(data.val.examples, false);
  for (const [iter, split] of [
    [trainIter, 'train'],
    [testIter, 'val'],
  ] as const) {
    if (iter.dataset.length === 0) {
      throw new RangeError(
        `the ${split} split of '${options.root}' has no images: give it some (${split}.txt, a ${split}/ folder` +
          `${split === 'val' ? ', or a val fraction above 0' : ''})`,
      );
    }
    if (iter.length === 0) {
      throw new RangeError(
        `the ${split} split of '${options.root}' has ${iter.dataset.length} images, too few for one batch of ` +
          `${batchSize}; use a smaller batch size`,
      );
    }
  }
  return { trainIter, testIter, classes: data.classes, ignoreIndex: data.ignoreIndex, data };
}

/** Writes the val stems of a random split into file (`split.json` of a run), so that eval and a resume use the same split. */
export function writeSplit(data: SegmentationData, file: string): void {
  const split: SplitFile = { val: data.val.pairs.map((p) => p.stem) };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(split, null, 1)}\n`);
}
