/**
 * The segmentation-model section of `npm run bench`: torchvision's fcn_resnet50 and
 * lraspp_mobilenet_v3_large inference at 520x520 (batch 1, random weights) here against
 * PyTorch eager and PyTorch channels_last (scripts/bench_segmentation.py), on this machine in
 * this run, interleaved A B C, each with the same number of threads. Prints seconds per
 * image and ratios (PyTorch's time / ours: above 1 means we are faster).
 *   node dist/scripts/bench-segmentation.js PYTHON [--rounds 3] [--device cuda]
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { type Device, models, torch } from '../src';
import { median } from './bench-report';

const root = path.resolve(__dirname, '..', '..');
const threads = Number(process.env.BENCH_THREADS ?? 2);

/** Median seconds of iters forwards (and the argmax) of model on one size x size image. */
async function ours(model: models.segmentation.SegmentationModel, device: Device, size: number, iters: number) {
  const X = torch.rand([1, 3, size, size], { device });
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    const start = performance.now();
    const out = await torch.noGrad(() => model.forwardAsync(X));
    const labels = out.argmax(1);
    if (device !== 'cpu') await torch.cuda.synchronize(device);
    times.push((performance.now() - start) / 1000);
    out.dispose();
    labels.dispose();
  }
  X.dispose();
  return median(times);
}

/** The PyTorch worker: one JSON command per line, one JSON answer per line. */
function worker(python: string, device: Device) {
  const proc = spawn(python, [path.join(root, 'scripts', 'bench_segmentation.py')], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, BENCH_THREADS: String(threads), BENCH_DEVICE: device },
  });
  const lines = readline.createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  return {
    async infer(name: string, channelsLast: boolean, size: number, iters: number): Promise<number> {
      proc.stdin.write(`${JSON.stringify({ command: 'infer', name, channels_last: channelsLast, size, iters })}\n`);
      const line = await lines.next();
      if (line.done) throw new Error('the PyTorch worker ended');
      return JSON.parse(line.value).result;
    },
    close: () => proc.stdin.end(),
  };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { rounds: { type: 'string', default: '3' }, device: { type: 'string', default: 'cpu' } },
  });
  const python = positionals[0];
  if (!python) throw new Error('usage: node dist/scripts/bench-segmentation.js PYTHON [--rounds N] [--device cuda]');
  const rounds = Number(values.rounds);
  const device = values.device as Device;
  const size = 520;
  torch.setNumThreads(threads);
  console.log(`torchvision segmentation models, inference on 1 x 3 x ${size} x ${size}, ${threads} threads each`);
  const theirs = worker(python, device);
  const rows: string[] = [];
  try {
    for (const name of ['fcn_resnet50', 'lraspp_mobilenet_v3_large']) {
      const model = (await models.segmentation.getModel(name)).to(device).eval();
      const iters = device === 'cpu' ? (name.startsWith('fcn') ? 1 : 5) : 20;
      await ours(model, device, size, 1); // warm-up: allocations, oneDNN primitive caches
      await theirs.infer(name, false, size, 1);
      await theirs.infer(name, true, size, 1);
      const [a, b, c]: number[][] = [[], [], []];
      for (let r = 0; r < rounds; r++) {
        a.push(await ours(model, device, size, iters));
        b.push(await theirs.infer(name, false, size, iters));
        c.push(await theirs.infer(name, true, size, iters));
      }
      const [mine, eager, cl] = [median(a), median(b), median(c)];
      rows.push(
        `| ${name}, ${size}x${size} (s/image) | ${mine.toFixed(4)} | ${eager.toFixed(4)} | ${(eager / mine).toFixed(2)} | ${cl.toFixed(4)} | ${(cl / mine).toFixed(2)} |`,
      );
      console.log(rows.at(-1));
    }
  } finally {
    theirs.close();
  }
  console.log('\n| workload | fcn-torch | PyTorch eager | ratio | PyTorch channels_last | ratio |');
  console.log('|---|---|---|---|---|---|');
  for (const row of rows) console.log(row);
}

main().catch((err: unknown) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
});
