/**
 * `npm run bench`'s int8 part: the chapter's FCN-32s in float32 (fused inference, `predict`'s
 * default) against its int8 version from `quantizeInt8`, interleaved in one process, 320x480:
 * forward + argmax at batch 1 and 8, and `predict` of one uint8 image; medians and the ratio.
 * With a VOC root it calibrates on the train split's images and compares pixel accuracy and mean
 * IoU of both on the val split's whole images (pass trained weights with --weights). PyTorch's
 * own int8 of the same model, its peer: scripts/bench_int8.py.
 *
 *   node dist/scripts/bench-int8.js [--rounds 5] [--voc ROOT] [--weights fcn.safetensors] [--calibration 100]
 */
import { parseArgs } from 'node:util';
import { createFcn, evaluateWholeImages, load, type nn, predict, quantizeInt8, type Tensor, torch, voc } from '../src';
import { machineLines, median, timed } from './bench-report';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      voc: { type: 'string' },
      weights: { type: 'string' },
      calibration: { type: 'string', default: '100' },
    },
  });
  const rounds = Number(values.rounds);
  torch.setNumThreads(Number(process.env.BENCH_THREADS ?? 2));
  for (const line of machineLines()) console.log(line);
  torch.manualSeed(0);
  const net = createFcn();
  if (values.weights) net.loadStateDict(await load(values.weights));
  net.eval();
  const train = values.voc
    ? await new voc.VOCSegDataset(values.voc, { split: 'train', cropSize: [32, 32], log: null }).load()
    : null;
  const calibration: Tensor[] = train
    ? train.slice(0, Number(values.calibration)).map(({ image }) => image.permute([2, 0, 1]).contiguous())
    : Array.from({ length: 8 }, () => torch.randn([2, 3, 320, 480]));
  let start = performance.now();
  const int8 = await quantizeInt8(net, calibration);
  console.log(
    `quantizeInt8: ${calibration.length} calibration batches (${train ? 'train images' : 'random normal 2x3x320x480'}), ` +
      `${((performance.now() - start) / 1000).toFixed(1)} s; quantized engine x86 (fbgemm/oneDNN)\n`,
  );

  torch.backends.fusedInference = true; // the float model's forward as predict runs it
  console.log('| workload (s/iter, 320x480) | float32 (fused) | int8 | float32 / int8 |');
  console.log('|---|---|---|---|');
  for (const batch of [1, 8]) {
    const X = torch.randn([batch, 3, 320, 480]);
    // Outputs are disposed as they go, as bench.ts does: left to the GC, the 13 MB logits of
    // each forward start collections whose marking competes for the 2 cores.
    const infer = (m: nn.Module) => async () => {
      const y = await torch.noGrad(() => m.forwardAsync(X));
      y.argmax(1).dispose();
      y.dispose();
    };
    const iters = batch === 1 ? 5 : 2;
    const a: number[] = [];
    const b: number[] = [];
    await infer(net)();
    await infer(int8)();
    for (let r = 0; r < rounds; r++) {
      a.push(await timed(infer(net), iters));
      b.push(await timed(infer(int8), iters));
    }
    console.log(
      `| forward + argmax, batch ${batch} | ${median(a).toFixed(4)} | ${median(b).toFixed(4)} | ${(median(a) / median(b)).toFixed(2)} |`,
    );
  }
  const image = torch.rand([3, 320, 480]).mul(255).to('uint8');
  const a: number[] = [];
  const b: number[] = [];
  (await predict(net, image)).dispose();
  (await predict(int8, image)).dispose();
  for (let r = 0; r < rounds; r++) {
    a.push(await timed(() => predict(net, image).then((labels) => labels.dispose()), 5));
    b.push(await timed(() => predict(int8, image).then((labels) => labels.dispose()), 5));
  }
  console.log(
    `| predict 1 image | ${median(a).toFixed(4)} | ${median(b).toFixed(4)} | ${(median(a) / median(b)).toFixed(2)} |`,
  );
  torch.backends.fusedInference = false;

  if (values.voc) {
    const val = await new voc.VOCSegDataset(values.voc, { split: 'val', cropSize: [32, 32], log: null }).load();
    start = performance.now();
    const float32 = await evaluateWholeImages(net, val);
    const quantized = await evaluateWholeImages(int8, val);
    const pct = (v: number) => (v * 100).toFixed(2);
    console.log(
      `\nval split, ${val.length} whole images (${((performance.now() - start) / 1000).toFixed(0)} s): float32 pixel ` +
        `accuracy ${pct(float32.pixelAccuracy)}, mIoU ${pct(float32.meanIoU)}; int8 ${pct(quantized.pixelAccuracy)}, ` +
        `${pct(quantized.meanIoU)} (differences ${pct(quantized.pixelAccuracy - float32.pixelAccuracy)} and ` +
        `${pct(quantized.meanIoU - float32.meanIoU)} points)`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
});
