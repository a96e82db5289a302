/**
 * `npm run bench`: fcn-torch against the ways a PyTorch user who cares about speed would run the
 * chapter's FCN: PyTorch eager, eager channels_last, torch.compile and ONNX Runtime (Python
 * onnxruntime, inference only); on a GPU eager fp32, bf16 autocast + channels_last and
 * torch.compile. On this machine in this run, interleaved A B C D A B C D... (our side in this
 * process, the peers in one long-lived Python worker, scripts/bench_model.py), each with the same
 * number of threads. Prints medians (s) and per row the best peer and its time / ours (above 1
 * means we are faster; for memory, our peak / theirs), then weight loading, import time and
 * memory against PyTorch.
 *   node dist/scripts/bench.js PYTHON [--rounds 5] [--long] [--quick] [--device cuda] [--autocast] [--cuda-graphs] [--unfused] [--peer-malloc LIB]
 * --quick times one iteration per round and call (and 10 steps for memory), for development.
 * --autocast runs ours under torch.setAutocast (bfloat16) on the bench's device; the peers are as always.
 * --cuda-graphs turns torch.backends.cudaGraphs on for ours (inference rows on a GPU).
 * --peer-malloc LIB runs the Python peers with LIB preloaded (LD_PRELOAD), e.g. jemalloc or tcmalloc,
 * as PyTorch's CPU performance guide suggests: glibc's malloc returns blocks over 32 MB to the system.
 * Ours runs its inference rows with torch.backends.fusedInference on (the prepared model's
 * forward; predict has it by default); --unfused leaves it off (layer by layer, PyTorch-exact).
 * With --device cuda (a CUDA build and a CUDA PyTorch) only the model workloads run, on the GPU.
 * `rss STEPS H W BATCH` is the child mode that measures a fresh process's memory.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs, promisify } from 'node:util';
import { createFcn, type Device, load, optim, predict, type Tensor, Trainer, torch } from '../src';
import { type Cell, machineLines, median, modelTable, progressLine, type Row } from './bench-report';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..', '..');
const threads = Number(process.env.BENCH_THREADS ?? 2);

/** The chapter's FCN with its optimizer, and timed inference, predict and train steps (median s). */
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
    for (let i = 0; i < iters; i++) {
      const start = performance.now();
      const Y = await torch.noGrad(() => this.net.forwardAsync(X));
      const labels = Y.argmax(1);
      if (this.device !== 'cpu') await torch.cuda.synchronize(this.device);
      times.push((performance.now() - start) / 1000);
      Y.dispose();
      labels.dispose();
    }
    X.dispose();
    return median(times);
  }

  /** The user-facing path: `predict(net, image)` of one uint8 [3, h, w] image, crop mode. */
  async predict(iters: number, h = 320, w = 480): Promise<number> {
    const noise = torch.rand([3, h, w]).mul(255);
    const image = noise.to('uint8');
    noise.dispose();
    const times: number[] = [];
    for (let i = 0; i < iters; i++) {
      const start = performance.now();
      const labels = await predict(this.net, image, { fused: torch.backends.fusedInference }); // on the CPU
      times.push((performance.now() - start) / 1000);
      labels.dispose();
    }
    image.dispose();
    return median(times);
  }

  async train(batch: number, iters: number, h = 320, w = 480): Promise<number> {
    const X = torch.rand([batch, 3, h, w], { device: this.device });
    const uniform = torch.rand([batch, h, w], { device: this.device });
    const scaled = uniform.mul(21);
    const Y = scaled.to('int64');
    uniform.dispose();
    scaled.dispose(); // so that the RSS samples of `rss` show the training step's memory alone
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

/** The peers' worker: one JSON command per line, one JSON answer per line (a failed command throws). */
class Theirs {
  readonly #proc;
  readonly #lines: AsyncIterator<string>;
  /** env: the peers' environment (--peer-malloc adds LD_PRELOAD to it). */
  constructor(python: string, device: Device, env: NodeJS.ProcessEnv) {
    this.#proc = spawn(python, [path.join(root, 'scripts', 'bench_model.py')], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...env, BENCH_THREADS: String(threads), BENCH_DEVICE: device },
    });
    this.#lines = readline.createInterface({ input: this.#proc.stdout })[Symbol.asyncIterator]();
  }
  async call<T = number>(command: string, args: Record<string, unknown>): Promise<T> {
    this.#proc.stdin.write(`${JSON.stringify({ command, ...args })}\n`);
    const line = await this.#lines.next();
    if (line.done) throw new Error(`the PyTorch worker ended during '${command}'`);
    const answer = JSON.parse(line.value);
    if ('error' in answer) throw new Error(answer.error);
    return answer.result;
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
  // The highest RSS of each tenth of the run: RSS may alternate from step to step (here it
  // did, by 40 MB at 160x224), so single samples every tenth compare unlike steps.
  const samples: number[] = [];
  const window = Math.max(1, Math.floor(steps / 10));
  for (let step = 0; step < steps; step++) {
    await ours.train(batch, 1, h, w);
    const rss = Math.round(memoryMb().rss * 10) / 10;
    const i = Math.floor(step / window);
    samples[i] = Math.max(samples[i] ?? 0, rss);
  }
  console.log(JSON.stringify({ samples, peak: Math.round(memoryMb().peak * 10) / 10 }));
}

async function rssOf(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ samples: number[]; peak: number }> {
  const { stdout } = await run(command, args, { maxBuffer: 1 << 20, env: { ...env, BENCH_THREADS: String(threads) } });
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

/** A peer of the Python worker: its key, column title, whether it trains, and why it failed to set up. */
interface Peer {
  key: string;
  label: string;
  trains: boolean;
  failed?: string;
}

interface Info {
  torch: string;
  onnxruntime: string | null;
  peers: [string, string, boolean][];
  inductor_cache: string;
}

type Kind = 'infer' | 'predict' | 'train';

/** What the model rows note besides their times: torch.compile's first calls, and each failure in
 * full, once, with the rows it happened in ('PEER: REASON' -> rows). */
interface Notes {
  compiled: string[];
  failures: Map<string, string[]>;
}

/** A failed peer's cell (the reason, shortened), with the whole reason kept for under the table. */
function failure(err: unknown, peer: Peer, row: string, notes: Notes): string {
  const reason = (err as Error).message.replaceAll('|', '/');
  const key = `${peer.label}: ${reason}`;
  notes.failures.set(key, [...(notes.failures.get(key) ?? []), row]);
  return `failed: ${reason.length > 80 ? `${reason.slice(0, 80)}...` : reason}`;
}

/** One model workload, interleaved: ours then each peer, `rounds` times, after one warm-up call each
 * (torch.compile compiles on its warm-up call: its seconds go to `notes`). Peers run `infer` at
 * batch 1 for our `predict`. */
async function measure(
  [name, kind, batch, iters]: [string, Kind, number, number],
  ours: Ours,
  theirs: Theirs,
  peers: Peer[],
  rounds: number,
  notes: Notes,
): Promise<Row> {
  const runOurs = (n: number) => (kind === 'predict' ? ours.predict(n) : ours[kind](batch, n));
  const command = kind === 'train' ? 'train' : 'infer';
  const cells: Cell[] = peers.map((peer) => peer.failed ?? (kind === 'train' && !peer.trains ? 'n/a' : ''));
  const times: number[][] = peers.map(() => []);
  await runOurs(1); // warm-up: first-call allocations and oneDNN primitive caches
  for (const [i, peer] of peers.entries()) {
    if (cells[i] !== '') continue;
    try {
      const first = await theirs.call(command, { peer: peer.key, batch, iters: 1 });
      if (peer.key === 'compile' && kind !== 'predict') {
        notes.compiled.push(`${name.replace(/ \(.*/, '')}: ${first.toFixed(1)} s`);
        console.log(`  (torch.compile, ${notes.compiled.at(-1)} for its first call)`);
      }
    } catch (err) {
      cells[i] = failure(err, peer, name, notes);
    }
  }
  const a: number[] = [];
  // Each round starts with one untimed call on every side: while the peers ran, our idle
  // torch thread gave the caching allocator's blocks back (after 2 s), and with two timed
  // train steps a round, the step that maps them again made half of each median.
  for (let r = 0; r < rounds; r++) {
    await runOurs(1);
    a.push(await runOurs(iters));
    for (const [i, peer] of peers.entries()) {
      if (cells[i] !== '') continue;
      try {
        await theirs.call(command, { peer: peer.key, batch, iters: 1 });
        times[i].push(await theirs.call(command, { peer: peer.key, batch, iters }));
      } catch (err) {
        cells[i] = failure(err, peer, name, notes);
      }
    }
  }
  return { name, ours: median(a), cells: cells.map((cell, i) => (cell === '' ? median(times[i]) : cell)) };
}

async function main(): Promise<void> {
  if (process.argv[2] === 'rss') return rssChild(process.argv.slice(3).map(Number));
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      rounds: { type: 'string', default: '5' },
      long: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      device: { type: 'string', default: 'cpu' },
      autocast: { type: 'boolean', default: false },
      'cuda-graphs': { type: 'boolean', default: false },
      unfused: { type: 'boolean', default: false },
      'peer-malloc': { type: 'string' },
    },
  });
  const python = positionals[0];
  if (!python)
    throw new Error(
      'usage: node dist/scripts/bench.js PYTHON [--rounds N] [--long] [--quick] [--device cuda] [--autocast] [--cuda-graphs] [--unfused] [--peer-malloc LIB]',
    );
  const rounds = Number(values.rounds);
  const device = values.device as Device;
  const gpu = device !== 'cpu';
  torch.setNumThreads(threads);
  for (const line of machineLines()) console.log(line);
  if (values.autocast) {
    torch.setAutocast(gpu ? 'cuda' : 'cpu', 'bfloat16');
    console.log('ours: torch.setAutocast (bfloat16 mixed precision, channels-last)');
  }
  torch.backends.fusedInference = !values.unfused;
  console.log(
    values.unfused
      ? 'ours: layer by layer (--unfused), predict with { fused: false }'
      : 'ours: torch.backends.fusedInference (BatchNorm folded, oneDNN fused convolutions) for forwards and predict',
  );
  if (values['cuda-graphs']) {
    torch.backends.cudaGraphs = true;
    console.log('ours: torch.backends.cudaGraphs (inference forwards replayed as CUDA graphs)');
  }

  const peerMalloc = values['peer-malloc'];
  if (peerMalloc && !fs.existsSync(peerMalloc)) throw new Error(`--peer-malloc: no such library ${peerMalloc}`);
  const peerEnv = peerMalloc ? { ...process.env, LD_PRELOAD: peerMalloc } : process.env;
  if (peerMalloc) console.log(`peers: LD_PRELOAD=${peerMalloc} (ours: its own caching allocator, as always)`);
  const theirs = new Theirs(python, device, peerEnv);
  const info = await theirs.call<Info>('info', {});
  const peers: Peer[] = info.peers.map(([key, label, trains]) => ({ key, label, trains }));
  console.log(
    `libtorch ${torch.version} (ours) vs Python torch ${info.torch}` +
      (peers.some((peer) => peer.key === 'ort')
        ? ` and Python onnxruntime ${info.onnxruntime} (CPU execution provider)`
        : '') +
      `, ${threads} threads each, ${rounds} rounds${values.quick ? ' of 1 iteration (--quick)' : ''}`,
  );
  if (gpu)
    console.log(`device: ${await theirs.call<string>('device_name', {})} (${device}); no ONNX Runtime peer on GPU`);
  const notes: Notes = { compiled: [], failures: new Map() };
  for (const peer of peers) {
    try {
      const setup = await theirs.call<{ export_s?: number; session_s?: number }>('setup', { peer: peer.key });
      if (setup.export_s !== undefined)
        console.log(
          `ONNX Runtime: exported by torch.onnx.export (dynamo=False, opset 17) in ${setup.export_s.toFixed(1)} s, ` +
            `session created in ${(setup.session_s ?? 0).toFixed(1)} s; argmax inside the ONNX graph`,
        );
    } catch (err) {
      peer.failed = failure(err, peer, 'set-up', notes);
      console.log(`${peer.label}: ${peer.failed}`);
    }
  }
  console.log(
    `torch.compile: inductor, dynamic=False (a graph per shape), ` +
      (info.inductor_cache === 'fresh'
        ? 'a fresh cache (cold compiles; only its precompiled headers persist across runs, by design)'
        : `cache ${info.inductor_cache}`) +
      '\n',
  );

  const ours = new Ours(device);
  const n = (cpu: number, cuda: number) => (values.quick ? 1 : gpu ? cuda : cpu);
  const workloads: [string, Kind, number, number][] = [
    ['inference, batch 1 (s/iter)', 'infer', 1, n(5, 20)],
    ['inference, batch 8 (s/iter)', 'infer', 8, n(2, 10)],
    ['predict 1 image (s/iter)', 'predict', 1, n(5, 20)],
    ['train step, batch 4 (s/iter)', 'train', 4, n(2, 10)],
    ['train step, batch 8 (s/iter)', 'train', 8, n(2, 10)],
  ];
  if (gpu) workloads.push(['train step, batch 32, the chapter (s/iter)', 'train', 32, n(5, 5)]);
  const modelRows: Row[] = [];
  const keys = peers.map((peer) => peer.key);
  const labels = peers.map((peer) => peer.label);
  for (const workload of workloads) {
    modelRows.push(await measure(workload, ours, theirs, peers, rounds, notes));
    console.log(progressLine(modelRows.at(-1) as Row, keys));
  }
  const report = () => {
    console.log(`\n${modelTable(modelRows, labels).join('\n')}`);
    if (notes.compiled.length)
      console.log(`\ntorch.compile first call (compile + 1 run): ${notes.compiled.join('; ')}`);
    for (const [what, where] of notes.failures) console.log(`failed (${where.join('; ')}): ${what}`);
    console.log(
      'inference rows: forward + argmax over channels at 320x480; predict: ours is predict(net, uint8 [3, 320, 480]) ' +
        '(normalise, crop, forward, argmax), the peers forward + argmax at batch 1',
    );
  };

  if (gpu) {
    theirs.close();
    report();
    return;
  }
  const rows: [string, number, number][] = [];
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

  const steps = values.long ? 500 : values.quick ? 10 : 60;
  const rssArgs = [String(steps), '160', '224', '4'];
  const worker = path.join(root, 'scripts', 'bench_model.py');
  const rssA = await rssOf(process.execPath, [__filename, 'rss', ...rssArgs]);
  const rssB = await rssOf(python, [worker, 'rss', ...rssArgs], peerEnv);
  const rssC = await rssOf(python, [worker, 'rss', ...rssArgs, 'channels_last'], peerEnv);
  // From the second tenth's highest RSS (after the warm-up) to the last tenth's.
  const growth = (s: number[]) => `${(((s.at(-1) as number) / s[1] - 1) * 100).toFixed(1)}%`;

  report();
  printTable(rows);
  console.log('\n| memory | fcn-torch | PyTorch eager | PyTorch channels_last | ours / best peer |');
  console.log('|---|---|---|---|---|');
  console.log(
    `| peak RSS, ${steps} train steps of 4 x 160x224 (MB) | ${rssA.peak} | ${rssB.peak} | ${rssC.peak} | ` +
      `${(rssA.peak / Math.min(rssB.peak, rssC.peak)).toFixed(2)} |`,
  );
  console.log(
    `| RSS growth after warm-up over ${steps} steps | ${growth(rssA.samples)} | ${growth(rssB.samples)} | ` +
      `${growth(rssC.samples)} | |`,
  );
  console.log(
    `\nRSS samples (MB), ours: ${rssA.samples.join(' ')}\n` +
      `          PyTorch eager: ${rssB.samples.join(' ')}\n  PyTorch channels_last: ${rssC.samples.join(' ')}`,
  );
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`error: ${(err as Error).message}`);
    process.exit(1);
  });
}
