/**
 * `npm run bench`'s precision part: the chapter's FCN-32s labelling uint8 images (320x480,
 * batch 1 and 8) in each precision, interleaved in one process: ours in float32 (fused
 * inference, `predict`'s default), in bfloat16 (`precision: 'bfloat16'`; the table says what
 * ran: float32 on a CPU without bfloat16 units), in int8 (`quantizeInt8`), and the same model
 * exported with `exportOnnx` (uint8 in, labels out) run by onnxruntime-node in float32 and in
 * int8 (the QDQ export of the int8 model). On a CPU without bfloat16 units, emulated bfloat16
 * (`backends.emulatedBfloat16`) is timed at batch 1 too. The CPU's ISA is
 * printed above. With a VOC root it calibrates on the train split's images and compares pixel
 * accuracy and mean IoU of float32, bfloat16 and int8 on the val split's whole images (pass
 * trained weights with --weights). PyTorch's own int8 and ONNX Runtime's quantize_static:
 * scripts/bench_int8.py; PyTorch's bf16 autocast: the main table (scripts/bench.ts).
 *
 *   node dist/scripts/bench-precision.js [--rounds 5] [--voc ROOT] [--weights fcn.safetensors] [--calibration 100]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import {
  cpuCapabilities,
  createFcn,
  evaluateWholeImages,
  exportOnnx,
  load,
  type nn,
  predict,
  quantizeInt8,
  type Tensor,
  torch,
  voc,
} from '../src';
import { machineLines, median, timed } from './bench-report';

type Labeller = (pixels: Tensor) => Promise<void>;

async function ortLabeller(file: string, threads: number): Promise<{ run: Labeller; release: () => Promise<void> }> {
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  return {
    run: async (pixels) => {
      await session.run({ image: new ort.Tensor('uint8', pixels.toTypedArray() as Uint8Array, pixels.shape) });
    },
    release: () => session.release(),
  };
}

function oursLabeller(net: nn.Module, precision: 'float32' | 'bfloat16'): Labeller {
  return (pixels) => predict(net, pixels, { precision }).then((labels) => labels.dispose());
}

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
  const threads = Number(process.env.BENCH_THREADS ?? 2);
  torch.setNumThreads(threads);
  for (const line of machineLines()) console.log(line);
  const units = cpuCapabilities().bfloat16Units;
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
      `${((performance.now() - start) / 1000).toFixed(1)} s; quantized engine x86 (fbgemm/oneDNN)`,
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fcn-torch-bench-precision-'));
  await exportOnnx(net, path.join(dir, 'float32.onnx'), { labels: true, preprocess: true });
  await exportOnnx(int8, path.join(dir, 'int8.onnx'), { labels: true, preprocess: true });
  const ortFloat = await ortLabeller(path.join(dir, 'float32.onnx'), threads);
  const ortInt8 = await ortLabeller(path.join(dir, 'int8.onnx'), threads);
  const bf16Runs = units ? 'bfloat16' : 'float32 (no bfloat16 units)';
  console.log(
    `onnxruntime-node ${ort.env.versions.common}, CPU provider, ${threads} threads, graph optimisation 'all'`,
  );
  console.log(`precision 'bfloat16' runs ${bf16Runs} on this CPU\n`);

  const sides: [string, Labeller][] = [
    ['ours float32', oursLabeller(net, 'float32')],
    ['ours bfloat16', oursLabeller(net, 'bfloat16')],
    ['ours int8', oursLabeller(int8, 'float32')],
    ['ORT float32', ortFloat.run],
    ['ORT int8 (QDQ)', ortInt8.run],
  ];
  console.log(
    `| labels of uint8 pixels (s/iter, 320x480) | ${sides.map(([name]) => name).join(' | ')} | best / ours float32 |`,
  );
  console.log(`|---|${sides.map(() => '---|').join('')}---|`);
  for (const batch of [1, 8]) {
    const pixels = torch.rand([batch, 3, 320, 480]).mul(255).to('uint8');
    const iters = batch === 1 ? 5 : 2;
    const times: number[][] = sides.map(() => []);
    for (const [, run] of sides) await run(pixels);
    for (let r = 0; r < rounds; r++) {
      for (const [i, [, run]] of sides.entries()) times[i].push(await timed(() => run(pixels), iters));
    }
    const medians = times.map(median);
    const best = Math.min(...medians.slice(1));
    console.log(
      `| batch ${batch} | ${medians.map((m) => m.toFixed(4)).join(' | ')} | ${(medians[0] / best).toFixed(2)} |`,
    );
  }
  if (!units) {
    // What autocast was before the rule on this CPU: bfloat16 emulated (the upsampling still float32).
    const pixels = torch.rand([1, 3, 320, 480]).mul(255).to('uint8');
    torch.backends.emulatedBfloat16 = true;
    const emulated = oursLabeller(net, 'bfloat16');
    await emulated(pixels);
    const t = await timed(() => emulated(pixels), 2);
    torch.backends.emulatedBfloat16 = false;
    console.log(
      `\nemulated bfloat16 (backends.emulatedBfloat16; the upsampling float32), batch 1: ${t.toFixed(4)} s/iter`,
    );
  }
  await ortFloat.release();
  await ortInt8.release();
  fs.rmSync(dir, { recursive: true, force: true });

  if (values.voc) {
    const val = await new voc.VOCSegDataset(values.voc, { split: 'val', cropSize: [32, 32], log: null }).load();
    start = performance.now();
    const float32 = await evaluateWholeImages(net, val);
    torch.setAutocast('cpu', 'bfloat16');
    torch.backends.emulatedBfloat16 = true;
    const bfloat16 = await evaluateWholeImages(net, val);
    torch.setAutocast('cpu', null);
    torch.backends.emulatedBfloat16 = false;
    const quantized = await evaluateWholeImages(int8, val);
    const pct = (v: number) => (v * 100).toFixed(2);
    const row = (name: string, m: typeof float32) =>
      `${name} ${pct(m.pixelAccuracy)} / ${pct(m.meanIoU)} (${pct(m.meanIoU - float32.meanIoU)} points)`;
    console.log(
      `\nval split, ${val.length} whole images (${((performance.now() - start) / 1000).toFixed(0)} s), pixel accuracy / ` +
        `mIoU: float32 ${pct(float32.pixelAccuracy)} / ${pct(float32.meanIoU)}; ${row('bfloat16', bfloat16)}; ` +
        row('int8', quantized),
    );
  }
}

main().catch((err: unknown) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
});
