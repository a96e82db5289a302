/**
 * Distributed training on this machine (loopback, Gloo): the chapter's FCN trained by N
 * processes against PyTorch's DistributedDataParallel in the same run, and the time of one
 * all-reduce of its gradients. Each process gets an equal share of the cores. The share of
 * the all-reduce hidden behind the backward is 1 - (step - local step) / all-reduce, where a
 * local step is the same step without communication, timed on every rank at once (ours: a
 * Trainer without the group; PyTorch: under DDP's no_sync()); ours also reports the wait its
 * reducer measured after the backward (StepResult.allReduceWait).
 *   node dist/scripts/bench-distributed.js PYTHON [--procs 1,2] [--steps 5] [--batch 4] [--crop 160x224]
 * `rank JSON` is the child mode: one of our ranks.
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { createFcn, freePort, initProcessGroup, optim, Trainer, torch } from '../src';
import { median } from './bench-report';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..', '..');

interface Job {
  rank: number;
  worldSize: number;
  port: number;
  steps: number;
  batch: number;
  h: number;
  w: number;
  threads: number;
}

/** One of our ranks: the chapter's FCN, warm-up step, timed steps, timed all-reduces. */
async function rank(job: Job): Promise<void> {
  torch.setNumThreads(job.threads);
  const group = await initProcessGroup({ rank: job.rank, worldSize: job.worldSize, masterPort: job.port });
  torch.manualSeed(0);
  const model = createFcn();
  const trainer = new Trainer(model, new optim.SGD(model.parameters(), { lr: 0.001, weightDecay: 1e-3 }), {
    processGroup: group,
  });
  await group.broadcastModule(model);
  const X = torch.rand([job.batch, 3, job.h, job.w]);
  const Y = torch.rand([job.batch, job.h, job.w]).mul(21).to('int64');
  const timeSteps = async (t: Trainer, waits?: number[]) => {
    const times: number[] = [];
    for (let step = 0; step <= job.steps; step++) {
      await group.barrier();
      const start = performance.now();
      const r = await t.step(X, Y);
      if (step > 0) {
        times.push((performance.now() - start) / 1000); // the first step is warm-up
        waits?.push(r.allReduceWait);
      }
    }
    return median(times);
  };
  const waits: number[] = [];
  const step = await timeSteps(trainer, waits);
  const local = await timeSteps(
    new Trainer(model, new optim.SGD(model.parameters(), { lr: 0.001, weightDecay: 1e-3 })),
  );
  const floats = [...model.parameters()].reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  const grads = torch.zeros([floats]);
  const reduces: number[] = [];
  for (let i = 0; i < 5; i++) {
    await group.barrier();
    const start = performance.now();
    await group.allReduce(grads);
    reduces.push((performance.now() - start) / 1000);
  }
  if (job.rank === 0) {
    console.log(JSON.stringify({ step, local, wait: median(waits), allreduce: median(reduces.slice(1)), floats }));
  }
  await group.close();
}

interface Result {
  step: number;
  local: number;
  /** Ours: the reducer's wait after the backward. */
  wait?: number;
  allreduce: number;
  floats: number;
}

/** Starts worldSize ranks of a command and returns rank 0's JSON line. */
async function ranks(
  worldSize: number,
  command: (rank: number, port: number) => [string, string[], NodeJS.ProcessEnv],
) {
  const port = await freePort();
  const outputs = await Promise.all(
    Array.from({ length: worldSize }, (_, r) => {
      const [file, args, env] = command(r, port);
      return run(file, args, { env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
    }),
  );
  return JSON.parse(outputs[0].stdout.trim().split('\n').at(-1) as string) as Result;
}

async function main(): Promise<void> {
  if (process.argv[2] === 'rank') return rank(JSON.parse(process.argv[3]) as Job);
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      procs: { type: 'string', default: '1,2' },
      steps: { type: 'string', default: '5' },
      batch: { type: 'string', default: '4' },
      crop: { type: 'string', default: '160x224' },
    },
  });
  const python = positionals[0];
  if (!python) throw new Error('usage: node dist/scripts/bench-distributed.js PYTHON [--procs 1,2] [--steps N]');
  const [h, w] = values.crop.split('x').map(Number);
  const steps = Number(values.steps);
  const batch = Number(values.batch);
  const cores = os.availableParallelism();
  console.log(`machine: ${cores} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}); loopback, Gloo`);
  console.log(`the chapter's FCN, ${batch} images of ${h}x${w} per process per step, ${steps} timed steps\n`);
  console.log(
    '| processes | threads each | step, ours (s) | step, PyTorch DDP (s) | PyTorch / ours | all-reduce of the gradients, ours / PyTorch (s) | all-reduce hidden, ours / PyTorch | images/s, ours |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  const oursWith = (worldSize: number, threads: number) =>
    ranks(worldSize, (r, port) => [
      process.execPath,
      [__filename, 'rank', JSON.stringify({ rank: r, worldSize, port, steps, batch, h, w, threads })],
      {},
    ]);
  const theirsWith = (worldSize: number, threads: number) =>
    ranks(worldSize, (r, port) => [
      python,
      [path.join(root, 'scripts', 'bench_ddp.py'), `${steps}`, `${batch}`, `${h}`, `${w}`],
      {
        RANK: `${r}`,
        WORLD_SIZE: `${worldSize}`,
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: `${port}`,
        BENCH_THREADS: `${threads}`,
      },
    ]);
  const hidden = (r: Result) => `${Math.round(100 * Math.max(0, Math.min(1, 1 - (r.step - r.local) / r.allreduce)))}%`;
  for (const worldSize of values.procs.split(',').map(Number)) {
    const threads = Math.max(1, Math.floor(cores / worldSize));
    const ours = await oursWith(worldSize, threads);
    const theirs = await theirsWith(worldSize, threads);
    const share =
      worldSize > 1 ? `${hidden(ours)} (waited ${(1000 * (ours.wait ?? 0)).toFixed(0)} ms) / ${hidden(theirs)}` : '-';
    console.log(
      `| ${worldSize} | ${threads} | ${ours.step.toFixed(3)} | ${theirs.step.toFixed(3)} | ${(theirs.step / ours.step).toFixed(2)} | ` +
        `${ours.allreduce.toFixed(3)} / ${theirs.allreduce.toFixed(3)} (${((ours.floats * 4) / 2 ** 20).toFixed(1)} MB) | ` +
        `${share} | ${((worldSize * batch) / ours.step).toFixed(1)} |`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
});
