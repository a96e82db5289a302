/**
 * `npm run bench`'s ONNX part: the chapter's FCN-32s exported with `exportOnnx` (uint8 pixels
 * in, labels out) and run by onnxruntime-node, against our own `predict` of the same model on
 * the same pixels, interleaved in one process, 320x480, batch 1 and 8: medians and the ratio.
 * Both use BENCH_THREADS threads (default 2).
 *
 *   node dist/scripts/bench-onnx.js [--rounds 5]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { createFcn, exportOnnx, predict, torch } from '../src';
import { machineLines, median, timed } from './bench-report';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
  const rounds = Number(values.rounds);
  const threads = Number(process.env.BENCH_THREADS ?? 2);
  torch.setNumThreads(threads);
  for (const line of machineLines()) console.log(line);
  torch.manualSeed(0);
  const net = createFcn().eval();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fcn-torch-bench-onnx-'));
  const file = path.join(dir, 'fcn.onnx');
  await exportOnnx(net, file, { labels: true, preprocess: true });
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  console.log(
    `onnxruntime-node ${ort.env.versions.common}, CPU provider, ${threads} threads, graph optimisation 'all'\n`,
  );
  console.log('| labels of uint8 pixels (s/iter, 320x480) | fcn-torch predict | onnxruntime-node | ORT / ours |');
  console.log('|---|---|---|---|');
  for (const batch of [1, 8]) {
    const pixels = torch.rand([batch, 3, 320, 480]).mul(255).to('uint8');
    const feed = { image: new ort.Tensor('uint8', pixels.toTypedArray() as Uint8Array, pixels.shape) };
    const ours = () => predict(net, pixels).then((labels) => labels.dispose());
    const theirs = () => session.run(feed);
    await ours();
    await theirs();
    const iters = batch === 1 ? 5 : 2;
    const a: number[] = [];
    const b: number[] = [];
    for (let r = 0; r < rounds; r++) {
      a.push(await timed(ours, iters));
      b.push(await timed(theirs, iters));
    }
    console.log(
      `| batch ${batch} | ${median(a).toFixed(4)} | ${median(b).toFixed(4)} | ${(median(b) / median(a)).toFixed(2)} |`,
    );
  }
  await session.release();
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
});
