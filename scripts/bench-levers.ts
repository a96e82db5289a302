/**
 * What each speed switch of `torch.backends` brings, one configuration at a time: a fresh
 * chapter FCN per configuration, median train step (SGD, chapter loss) and inference time.
 *   node dist/scripts/bench-levers.js [BATCH=4]
 */
import { torch } from '../src';
import { Ours } from './bench';

async function main(): Promise<void> {
  const batch = Number(process.argv[2] ?? 4);
  torch.setNumThreads(Number(process.env.BENCH_THREADS ?? 2));
  console.log('| cachingCpuAllocator | channelsLast | subpixelUpsampling | train step (ms) | inference b1 (ms) |');
  console.log('|---|---|---|---|---|');
  for (const caching of [false, true]) {
    for (const [channelsLast, subpixel] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ]) {
      Object.assign(torch.backends, { cachingCpuAllocator: caching, channelsLast, subpixelUpsampling: subpixel });
      torch.backends.emptyCpuCache();
      torch.manualSeed(0);
      const ours = new Ours();
      await ours.train(batch, 1); // warm-up
      const step = await ours.train(batch, 3);
      await ours.infer(1, 1);
      const forward = await ours.infer(1, 5);
      const on = (v: boolean) => (v ? 'on' : 'off');
      console.log(
        `| ${on(caching)} | ${on(channelsLast)} | ${on(subpixel)} | ${(step * 1000).toFixed(0)} | ${(forward * 1000).toFixed(0)} |`,
      );
    }
  }
}

main().catch((err: unknown) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
});
