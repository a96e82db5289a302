/**
 * The chapter's `load_data_voc`: seeded, shuffled batches of random crops, each batch
 * assembled natively (crop, normalise, stack) while the previous one is being used.
 */

import { checkInteger } from '../checks';
import { shardOf } from '../distributed';
import { native } from '../native';
import { Tensor } from '../tensor';
import { type Example, VOCSegDataset } from './dataset';
import { seededRandom } from './random';

/** ImageNet statistics, as the chapter normalises with them. */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** One batch: images X float32 [B, 3, H, W] and class ids Y int64 [B, H, W] (255 = ignore). */
export interface Batch {
  X: Tensor;
  Y: Tensor;
}

/**
 * A rank's part of every epoch in distributed training: the `DistributedSampler` rule over
 * the epoch's order (see {@link shardOf}); pad makes every rank's part equally long.
 */
export interface Shard {
  rank: number;
  worldSize: number;
  pad: boolean;
}

/**
 * The decoded examples a {@link VOCBatches} draws from: a {@link VOCSegDataset}, or one split
 * of a dataset read by `data.readDataset`.
 */
export interface ExampleSet {
  /** [height, width] of the crops; an image smaller than it is padded with the ignore label. */
  readonly cropSize: [number, number];
  readonly examples: Example[];
  readonly length: number;
  /** The label of ignored pixels in the examples' class ids (default 255). */
  readonly ignoreIndex?: number;
}

/**
 * The batches of a dataset, one epoch per iteration (`for await (const { X, Y } of iter)`).
 * Epoch e shuffles (when asked) and crops with seed + e, so runs with the same seed see the
 * same batches. With a shard, this rank's part of the epoch's order is batched.
 */
export class VOCBatches<D extends ExampleSet = ExampleSet> implements AsyncIterable<Batch> {
  #nextEpoch = 0;

  constructor(
    readonly dataset: D,
    readonly batchSize: number,
    readonly options: {
      shuffle: boolean;
      dropLast: boolean;
      seed: number;
      shard?: Shard;
      /** Mirror each crop left to right with probability 1/2. */
      hflip?: boolean;
      /** Resize each image first so that its shorter side is a random integer in [min, max] (torchvision's RandomResize). */
      resize?: [number, number];
    },
  ) {
    if (options.shard) shardOf([], options.shard.rank, options.shard.worldSize, options.shard.pad); // checks them
  }

  /** Examples per epoch (this rank's with a shard). */
  get examplesPerEpoch(): number {
    const n = this.dataset.length;
    const shard = this.options.shard;
    if (!shard) return n;
    return shardOf(
      Array.from({ length: n }, (_, i) => i),
      shard.rank,
      shard.worldSize,
      shard.pad,
    ).length;
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.examplesPerEpoch;
    return this.options.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  #assemble(examples: Example[], random: () => number): Promise<Batch> {
    const [h, w] = this.dataset.cropSize;
    // torchvision's recipe, natively: resized (its RandomResize: the shorter side to a random
    // size, the longer side in proportion, rounded down), mirrored with probability 1/2, and
    // cropped, an image smaller than the crop padded at its bottom and right.
    const resize = this.options.resize;
    const crops = examples.flatMap((e) => {
      let [height, width] = e.image.shape;
      if (resize) {
        const size = resize[0] + Math.floor(random() * (resize[1] - resize[0] + 1));
        [height, width] =
          height <= width ? [size, Math.floor((size * width) / height)] : [Math.floor((size * height) / width), size];
      }
      const top = Math.floor(random() * (Math.max(height, h) - h + 1));
      const left = Math.floor(random() * (Math.max(width, w) - w + 1));
      const flip = this.options.hflip && random() < 0.5 ? 1 : 0;
      return [top, left, flip, resize ? height : 0, resize ? width : 0];
    });
    return native.voc
      .cropBatch(
        examples.map((e) => e.image.native),
        examples.map((e) => e.label.native),
        crops,
        h,
        w,
        [...IMAGENET_MEAN],
        [...IMAGENET_STD],
        this.dataset.ignoreIndex ?? 255,
      )
      .then(([X, Y]) => ({ X: new Tensor(X), Y: new Tensor(Y) }));
  }

  /** The next epoch's batches: epoch 0 first, then 1, ... */
  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    return this.epoch(this.#nextEpoch++)[Symbol.asyncIterator]();
  }

  /** The batches of epoch e (0-based): always the same for the same seed and e. */
  async *epoch(e: number): AsyncGenerator<Batch> {
    if (!Number.isInteger(e) || e < 0) throw new RangeError(`epoch: expected an integer >= 0, got ${e}`);
    const examples = this.dataset.examples;
    const random = seededRandom(this.options.seed + e);
    const order = examples.map((_, i) => i);
    if (this.options.shuffle) {
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
    }
    const shard = this.options.shard;
    const mine = shard ? shardOf(order, shard.rank, shard.worldSize, shard.pad) : order;
    const batches: number[][] = [];
    for (let start = 0; start < mine.length; start += this.batchSize) {
      const indices = mine.slice(start, start + this.batchSize);
      if (indices.length === this.batchSize || !this.options.dropLast) batches.push(indices);
    }
    // Crops are drawn in batch order, so prefetching does not change them.
    let pending =
      batches.length > 0
        ? this.#assemble(
            batches[0].map((i) => examples[i]),
            random,
          )
        : null;
    for (let b = 0; b < batches.length; b++) {
      const current = await (pending as Promise<Batch>);
      pending =
        b + 1 < batches.length
          ? this.#assemble(
              batches[b + 1].map((i) => examples[i]),
              random,
            )
          : null;
      yield current;
    }
  }
}

/** Options of {@link loadDataVoc}. */
export interface LoadDataVocOptions {
  /** The VOC2012 folder (holding ImageSets, JPEGImages, SegmentationClass). */
  root: string;
  /** Shuffle the training set each epoch (default true; the test set is never shuffled). */
  shuffle?: boolean;
  /** Drop a last, smaller batch (default true, as the chapter does for both sets). */
  dropLast?: boolean;
  /** Seed of the order and the crops (default 0). */
  seed?: number;
  /** Where the "read N examples" lines go (default console.log; null for silence). */
  log?: ((line: string) => void) | null;
  /**
   * This process's rank and the number of processes in distributed training: each rank
   * gets its shard of every epoch (training padded to equal lengths, test not padded, so the
   * ranks' test shards together are the test set once).
   */
  shard?: { rank: number; worldSize: number };
}

/** The batches of one split, the train split shuffled and padded across a shard, the val split in order. */
async function batchesOf(
  split: 'train' | 'val',
  batchSize: number,
  cropSize: [number, number],
  options: LoadDataVocOptions,
): Promise<VOCBatches<VOCSegDataset>> {
  checkInteger(batchSize, 'batchSize', 1);
  const seed = options.seed ?? 0;
  const dataset = new VOCSegDataset(options.root, { split, cropSize, log: options.log });
  await dataset.load();
  const train = split === 'train';
  const shard = options.shard;
  return new VOCBatches(dataset, batchSize, {
    shuffle: train && (options.shuffle ?? true),
    dropLast: options.dropLast ?? true,
    seed: train ? seed : seed + 1_000_003,
    ...(shard ? { shard: { ...shard, pad: train } } : {}),
  });
}

/** batches, or an error when the split gives not one batch. */
function checkNotEmpty<D extends ExampleSet>(
  batches: VOCBatches<D>,
  split: string,
  cropSize: [number, number],
): VOCBatches<D> {
  if (batches.length === 0) {
    throw new RangeError(
      `the ${split} split has ${batches.dataset.length} examples of at least ${cropSize[0]}x${cropSize[1]} ` +
        `(smaller ones are dropped), too few for one batch of ${batches.batchSize}; use a smaller crop or batch size`,
    );
  }
  return batches;
}

/**
 * The chapter's `d2l.load_data_voc(batch_size, crop_size)`: training and test batches of
 * random crops of VOC2012's train and val splits.
 */
export async function loadDataVoc(
  batchSize: number,
  cropSize: [number, number],
  options: LoadDataVocOptions,
): Promise<{ trainIter: VOCBatches<VOCSegDataset>; testIter: VOCBatches<VOCSegDataset> }> {
  const [trainIter, testIter] = await Promise.all([
    batchesOf('train', batchSize, cropSize, options),
    batchesOf('val', batchSize, cropSize, options),
  ]);
  checkNotEmpty(trainIter, 'train', cropSize);
  return { trainIter, testIter };
}

/** The batches of one split only (what an evaluation reads): see {@link loadDataVoc}. */
export async function loadSplit(
  split: 'train' | 'val',
  batchSize: number,
  cropSize: [number, number],
  options: LoadDataVocOptions,
): Promise<VOCBatches<VOCSegDataset>> {
  return checkNotEmpty(await batchesOf(split, batchSize, cropSize, options), split, cropSize);
}
