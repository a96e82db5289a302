/**
 * What each speed switch of `torch.backends` brings, one configuration at a time: a fresh
 * chapter FCN per configuration, median train step (SGD, chapter loss) and inference time.
 *   node dist/scripts/bench-levers.js [BATCH=4]
 */
import { createFcn, optim, Trainer, torch } from '../src';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

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
      const net = createFcn();
      const trainer = new Trainer(net, new optim.SGD(net.parameters(), { lr: 0.001, weightDecay: 1e-3 }));
      const X = torch.rand([batch, 3, 320, 480]);
      const Y = torch.rand([batch, 320, 480]).mul(21).to('int64');
      const steps: number[] = [];
      for (let i = 0; i < 4; i++) {
        const start = performance.now();
        await trainer.step(X, Y);
        if (i > 0) steps.push(performance.now() - start); // the first is warm-up
      }
      net.eval();
      const image = torch.rand([1, 3, 320, 480]);
      const forwards: number[] = [];
      await torch.noGrad(async () => {
        for (let i = 0; i < 6; i++) {
          const start = performance.now();
          (await net.forwardAsync(image)).dispose();
          if (i > 0) forwards.push(performance.now() - start);
        }
      });
      const on = (v: boolean) => (v ? 'on' : 'off');
      console.log(
        `| ${on(caching)} | ${on(channelsLast)} | ${on(subpixel)} | ${median(steps).toFixed(0)} | ${median(forwards).toFixed(0)} |`,
      );
    }
  }
}

main().catch((err: unknown) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
});
