/**
 * `npm run bench`: fcn-torch against PyTorch eager on the chapter's workload, on this machine
 * in this run, interleaved A B A B (our side in this process, PyTorch in a long-lived Python
 * worker), each with the same number of threads. Prints seconds and ratios (PyTorch's time /
 * ours: above 1 means we are faster; for memory, our peak / PyTorch's).
 *   node dist/scripts/bench.js PYTHON [--rounds 5] [--long] [--device cuda]
 * With --device cuda (a CUDA build and a CUDA PyTorch) only the model workloads run, on the GPU.
 * `rss STEPS H W BATCH` is the child mode that measures a fresh process's memory.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs, promisify } from 'node:util';
import { createFcn, type Device, load, optim, type Tensor, Trainer, torch } from '../src';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..', '..');
const threads = Number(process.env.BENCH_THREADS ?? 2);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** The chapter's FCN with its optimizer, and timed inference and train steps (median s). */
export class Ours {
  readonly net;
  readonly trainer;

  constructor(readonly device: Device = 'cpu') {
    this.net = createFcn().to(device);
    this.trainer = new Trainer(this.net, new optim.SGD(this.net.parameters(), { lr: 0.001, weightDecay: 1e-3 }), {
      devices: [device],
    });
  }

  async infer(batch: number, iters: number, h = 320, w = 480): Promise<number> {
    const X = torch.rand([batch, 3, h, w], { device: this.device });
    this.net.eval();
    const times: number[] = [];
    await torch.noGrad(async () => {
      for (let i = 0; i < iters; i++) {
        const start = performance.now();
        const Y = await this.net.forwardAsync(X);
        const labels = Y.argmax(1);
        if (this.device !== 'cpu') await torch.cuda.synchronize(this.device);
        times.push((performance.now() - start) / 1000);
        Y.dispose();
        labels.dispose();
      }
    });
    X.dispose();
    return median(times);
  }

  async train(batch: number, iters: number, h = 320, w = 480): Promise<number> {
    const X = torch.rand([batch, 3, h, w], { device: this.device });
    const Y = torch.rand([batch, h, w], { device: this.device }).mul(21).to('int64');
    const times: number[] = [];
    for (let i = 0; i < iters; i++) {
      const start = performance.now();
      await this.trainer.step(X, Y);
      times.push((performance.now() - start) / 1000);
    }
    X.dispose();
    Y.dispose();
    return median(times);
  }
}

/** The PyTorch worker: one JSON command per line, one JSON answer per line. */
class Theirs {
  readonly #proc;
  readonly #lines: AsyncIterator<string>;
  constructor(python: string, device: Device) {
    this.#proc = spawn(python, [path.join(root, 'scripts', 'bench_model.py')], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, BENCH_THREADS: String(threads), BENCH_DEVICE: device },
    });
    this.#lines = readline.createInterface({ input: this.#proc.stdout })[Symbol.asyncIterator]();
  }
  async call<T = number>(command: string, args: Record<string, unknown>): Promise<T> {
    this.#proc.stdin.write(`${JSON.stringify({ command, ...args })}\n`);
    const line = await this.#lines.next();
    if (line.done) throw new Error(`the PyTorch worker ended during '${command}'`);
    return JSON.parse(line.value).result;
  }
  close(): void {
    this.#proc.stdin.end();
  }
}

/** Resident and peak resident memory of this process (MB), from /proc (getrusage's peak
 * survives exec, so a child would report its parent's). */
function memoryMb(): { rss: number; peak: number } {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1]) / 1024;
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

/** Child mode: trains STEPS steps in a fresh process and prints RSS samples and the peak (MB). */
async function rssChild([steps, h, w, batch]: number[]): Promise<void> {
  torch.setNumThreads(threads);
  const ours = new Ours();
  const samples: number[] = [];
  for (let step = 0; step < steps; step++) {
    await ours.train(batch, 1, h, w);
    if (step % Math.max(1, Math.floor(steps / 10)) === 0 || step === steps - 1)
      samples.push(Math.round(memoryMb().rss * 10) / 10);
  }
  console.log(JSON.stringify({ samples, peak: Math.round(memoryMb().peak * 10) / 10 }));
}

async function rssOf(command: string, args: string[]): Promise<{ samples: number[]; peak: number }> {
  const { stdout } = await run(command, args, {
    maxBuffer: 1 << 20,
    env: { ...process.env, BENCH_THREADS: String(threads) },
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) as string);
}

async function startup(command: string, args: string[], rounds: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const start = performance.now();
    await run(command, args);
    times.push((performance.now() - start) / 1000);
  }
  return median(times);
}

function printTable(rows: [string, number, number][]): void {
  console.log('\n| workload | fcn-torch | PyTorch eager | ratio (PyTorch / ours) |');
  console.log('|---|---|---|---|');
  for (const [name, a, b] of rows)
    console.log(`| ${name} | ${a.toFixed(4)} | ${b.toFixed(4)} | ${(b / a).toFixed(2)} |`);
}

async function main(): Promise<void> {
  if (process.argv[2] === 'rss') return rssChild(process.argv.slice(3).map(Number));
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      rounds: { type: 'string', default: '5' },
      long: { type: 'boolean', default: false },
      device: { type: 'string', default: 'cpu' },
    },
  });
  const python = positionals[0];
  if (!python) throw new Error('usage: node dist/scripts/bench.js PYTHON [--rounds N] [--long] [--device cuda]');
  const rounds = Number(values.rounds);
  const device = values.device as Device;
  torch.setNumThreads(threads);
  const cpu = os.cpus();
  console.log(
    `machine: ${cpu.length} cores (${cpu[0]?.model ?? 'unknown CPU'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
  );
  console.log(
    `libtorch ${torch.version} (ours) vs PyTorch eager (same version), ${threads} threads each, ${rounds} rounds\n`,
  );

  const ours = new Ours(device);
  const theirs = new Theirs(python, device);
  const rows: [string, number, number][] = [];
  const gpu = device !== 'cpu';
  if (gpu) console.log(`device: ${await theirs.call<string>('device_name', {})} (${device})\n`);
  const workloads: [string, 'infer' | 'train', number, number][] = [
    ['inference, batch 1 (s/iter)', 'infer', 1, gpu ? 20 : 5],
    ['inference, batch 8 (s/iter)', 'infer', 8, gpu ? 10 : 2],
    ['train step, batch 4 (s/iter)', 'train', 4, gpu ? 10 : 2],
    ['train step, batch 8 (s/iter)', 'train', 8, gpu ? 10 : 2],
  ];
  if (gpu) workloads.push(['train step, batch 32, the chapter (s/iter)', 'train', 32, 5]);
  for (const [name, kind, batch, iters] of workloads) {
    await ours[kind](batch, 1); // warm-up: first-call allocations and oneDNN primitive caches
    await theirs.call(kind, { batch, iters: 1 });
    const a: number[] = [];
    const b: number[] = [];
    for (let r = 0; r < rounds; r++) {
      a.push(await ours[kind](batch, iters));
      b.push(await theirs.call(kind, { batch, iters }));
    }
    rows.push([name, median(a), median(b)]);
    console.log(
      `${name.padEnd(42)} ours ${median(a).toFixed(4)}  PyTorch ${median(b).toFixed(4)}  ratio ${(median(b) / median(a)).toFixed(2)}`,
    );
  }

  if (gpu) {
    theirs.close();
    printTable(rows);
    return;
  }
  const weights = path.join(os.tmpdir(), 'fcn-torch-bench-resnet18.pth');
  const bytes = await theirs.call('save_weights', { path: weights });
  const loadsA: number[] = [];
  const loadsB: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    const dict: Map<string, Tensor> = await load(weights);
    loadsA.push((performance.now() - start) / 1000);
    for (const t of dict.values()) t.dispose();
    loadsB.push(await theirs.call('load', { path: weights }));
  }
  theirs.close();
  rows.push([`load ResNet-18 weights, ${(bytes / 2 ** 20).toFixed(1)} MB (s)`, median(loadsA), median(loadsB)]);

  const importA = await startup(process.execPath, ['-e', `require(${JSON.stringify(root)})`], rounds);
  const importB = await startup(python, ['-c', 'import torch'], rounds);
  rows.push(['import the package (s)', importA, importB]);

  const steps = values.long ? 500 : 60;
  const rssArgs = [String(steps), '160', '224', '4'];
  const rssA = await rssOf(process.execPath, [__filename, 'rss', ...rssArgs]);
  const rssB = await rssOf(python, [path.join(root, 'scripts', 'bench_model.py'), 'rss', ...rssArgs]);
  const growth = (s: number[]) => (s.at(-1) as number) / s[1] - 1; // after the first (warm-up) sample

  printTable(rows);
  console.log(
    `| peak RSS, ${steps} train steps of 4 x 160x224 (MB) | ${rssA.peak} | ${rssB.peak} | ours / PyTorch ${(rssA.peak / rssB.peak).toFixed(2)} |`,
  );
  console.log(
    `| RSS growth after warm-up over ${steps} steps | ${(growth(rssA.samples) * 100).toFixed(1)}% | ${(growth(rssB.samples) * 100).toFixed(1)}% | |`,
  );
  console.log(
    `\nRSS samples (MB), ours: ${rssA.samples.join(' ')}\n                PyTorch: ${rssB.samples.join(' ')}`,
  );
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`error: ${(err as Error).message}`);
    process.exit(1);
  });
}
