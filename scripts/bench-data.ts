/**
 * Our side of `bash scripts/bench-data.sh`: decode, label, crop, normalise and batch the
 * train split of a VOC2012 folder as a user's code would (the dataset's default
 * concurrency), and print images per second. THREADS=1 gives sharp and libtorch one thread
 * each (the script pins the process to one core); without it they use their defaults.
 * Usage: node dist/scripts/bench-data.js VOC2012_DIR CROP_H CROP_W BATCH [THREADS]
 */
import sharp from 'sharp';
import { torch, voc } from '../src';

async function main(): Promise<void> {
  const [root, cropH, cropW, batch, threads] = process.argv.slice(2);
  if (threads !== undefined) {
    sharp.concurrency(Number(threads));
    torch.setNumThreads(Number(threads));
  }
  const start = process.hrtime.bigint();
  const dataset = new voc.VOCSegDataset(root, {
    split: 'train',
    cropSize: [Number(cropH), Number(cropW)],
    log: null,
  });
  await dataset.load();
  const batches = new voc.VOCBatches(dataset, Number(batch), { shuffle: true, dropLast: false, seed: 0 });
  for await (const { X, Y } of batches) {
    X.dispose();
    Y.dispose();
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log((dataset.names.length / seconds).toFixed(2));
}

main().catch((err: unknown) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
});
