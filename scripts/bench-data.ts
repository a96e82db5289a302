/**
 * Our side of `bash scripts/bench-data.sh`: decode, label, crop, normalise and batch the
 * train split of a dataset as a user's code would (the readers' default concurrency), and
 * print images per second: a VOC2012 folder as the chapter reads it, or image/mask folders
 * as `data.readDataset` reads them: with the VOC row's transforms (random crops), or with
 * RECIPE=1 as `fcn train` reads them (torchvision's recipe: random resize and flips too).
 * THREADS=1 gives sharp and libtorch one thread each (the script pins the process to one
 * core); without it they use their defaults.
 * Usage: [RECIPE=1] node dist/scripts/bench-data.js DATASET_DIR CROP_H CROP_W BATCH [THREADS]
 */
import sharp from 'sharp';
import { data, torch, voc } from '../src';

/** The train split's batches and its number of images, read as its layout is. */
async function trainBatches(root: string, crop: [number, number], batch: number) {
  if (data.detectFormat(root) === 'voc') {
    const dataset = new voc.VOCSegDataset(root, { split: 'train', cropSize: crop, log: null });
    await dataset.load();
    return {
      images: dataset.names.length,
      batches: new voc.VOCBatches(dataset, batch, { shuffle: true, dropLast: false, seed: 0 }),
    };
  }
  const read = await data.readDataset(root, { only: 'train' });
  if (read.problems.length > 0) throw new Error(`${read.problems[0].file}: ${read.problems[0].message}`);
  const examples = read.train.examples;
  const set = { examples, cropSize: crop, length: examples.length, ignoreIndex: read.ignoreIndex };
  // fcn train's defaults for such a dataset: flips, and the random resize from a base size of 520/480 the crop.
  const base = Math.round((Math.min(...crop) * 520) / 480);
  const resize: [number, number] = [Math.floor(0.5 * base), Math.floor(2 * base)];
  const recipe = process.env.RECIPE === '1' ? { hflip: true, resize } : {};
  const options = { shuffle: true, dropLast: false, seed: 0, ...recipe };
  return { images: read.train.pairs.length, batches: new voc.VOCBatches(set, batch, options) };
}

async function main(): Promise<void> {
  const [root, cropH, cropW, batch, threads] = process.argv.slice(2);
  if (threads !== undefined) {
    sharp.concurrency(Number(threads));
    torch.setNumThreads(Number(threads));
  }
  const start = process.hrtime.bigint();
  const { images, batches } = await trainBatches(root, [Number(cropH), Number(cropW)], Number(batch));
  for await (const { X, Y } of batches) {
    X.dispose();
    Y.dispose();
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log((images / seconds).toFixed(2));
}

main().catch((err: unknown) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
});
