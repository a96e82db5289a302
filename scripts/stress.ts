/**
 * The crash classes of issue 16, many times over (not part of `npm test`; it takes minutes):
 * worker threads ended (terminate, process.exit, a throw) at random moments while their
 * native calls run, and Ctrl-C (once or twice) at random moments of `fcn train`. Every run
 * must end with an exit code, never a signal; the counts are printed.
 *   node dist/scripts/stress.js [--workers 1000] [--sigints 100] [--seed 1]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { voc } from '../src';
import { seededRandom } from '../src/voc/random';

const root = path.resolve(__dirname, '..', '..');
const entry = path.join(root, 'dist', 'src');
const cli = path.join(entry, 'cli', 'index.js');

/** A worker that loads the package and keeps the torch thread busy with its calls. */
const workerBody = (ending: string, after: number) => `
  const pkg = require(${JSON.stringify(entry)});
  const { parentPort } = require('node:worker_threads');
  const net = pkg.createFcn({ numClasses: 3 });
  const trainer = new pkg.Trainer(net, new pkg.optim.SGD(net.parameters(), { lr: 0.01 }));
  const X = pkg.torch.rand([2, 3, 128, 160]);
  const Y = pkg.torch.zeros([2, 128, 160], { dtype: 'int64' });
  for (let i = 0; i < 3; i++) { trainer.step(X, Y); net.forwardAsync(X); }
  parentPort.postMessage('busy');
  if (${JSON.stringify(ending)} === 'exit') setTimeout(() => process.exit(3), ${after});
  if (${JSON.stringify(ending)} === 'throw') setTimeout(() => { throw new Error('boom'); }, ${after});
`;

/** `count` workers ended at random moments, in this process; it must still work afterwards. */
async function workersChild(count: number, seed: number): Promise<void> {
  const random = seededRandom(seed);
  const endings = ['terminate', 'exit', 'throw'];
  for (let i = 0; i < count; i++) {
    const ending = endings[i % 3];
    const after = Math.floor(random() * 400);
    const worker = new Worker(workerBody(ending, after), { eval: true });
    worker.on('error', () => {});
    await new Promise((resolve) => worker.once('message', resolve));
    if (ending === 'terminate') {
      await new Promise((resolve) => setTimeout(resolve, after));
      await worker.terminate();
    } else {
      await new Promise((resolve) => worker.once('exit', resolve));
    }
  }
  const { createFcn, torch } = await import(entry);
  const y = await createFcn({ numClasses: 3 }).forwardAsync(torch.rand([1, 3, 64, 96]));
  console.log(`alive ${y.shape.join('x')}`);
}

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
}

function runChild(args: string[], cwd: string, onStart?: (child: ReturnType<typeof spawn>) => void): Promise<Ended> {
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.resume();
  child.stderr?.resume();
  onStart?.(child);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

function tally(counts: Map<string, number>, e: Ended): void {
  const key = e.signal ? `signal ${e.signal}` : `exit ${e.code}`;
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workers: { type: 'string', default: '1000' },
      sigints: { type: 'string', default: '100' },
      seed: { type: 'string', default: '1' },
      child: { type: 'string' },
    },
  });
  const seed = Number(values.seed);
  if (values.child === 'workers') return workersChild(Number(values.workers), seed);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fcn-torch-stress-'));

  // Workers ended mid-call: batches of 50 per child process, so a crash is counted, not fatal.
  const workerCounts = new Map<string, number>();
  const total = Number(values.workers);
  for (let done = 0, batch = 0; done < total; done += 50, batch++) {
    const n = Math.min(50, total - done);
    const ended = await runChild(
      [__filename, '--child', 'workers', '--workers', `${n}`, '--seed', `${seed + batch}`],
      tmp,
    );
    for (let i = 0; i < n; i++) tally(workerCounts, ended);
    process.stdout.write(`\rworkers: ${done + n}/${total}`);
  }
  console.log(`\nworkers ended mid-call (${total}, in processes of 50):`, Object.fromEntries(workerCounts));

  // Ctrl-C at random moments of fcn train, once or twice.
  const data = await voc.synthesize(path.join(tmp, 'voc'), { count: 24, height: 72, width: 104 });
  const random = seededRandom(seed);
  const sigintCounts = new Map<string, number>();
  const sigints = Number(values.sigints);
  for (let i = 0; i < sigints; i++) {
    const args = [cli, 'train', '--data', data, '--crop', '64x96', '--batch-size', '4', '--epochs', '3'];
    const out = path.join(tmp, `run-${i}`);
    const delay = 300 + Math.floor(random() * 6000);
    const twice = i % 2 === 1;
    const ended = await runChild([...args, '--out', out, '--threads', '1'], tmp, (child) => {
      setTimeout(() => child.kill('SIGINT'), delay);
      if (twice) setTimeout(() => child.kill('SIGINT'), delay + Math.floor(random() * 500));
    });
    tally(sigintCounts, ended);
    process.stdout.write(`\rCtrl-C: ${i + 1}/${sigints}`);
  }
  console.log(`\nCtrl-C during fcn train (${sigints}, half of them twice):`, Object.fromEntries(sigintCounts));
  fs.rmSync(tmp, { recursive: true, force: true });
  const signals = [...workerCounts, ...sigintCounts].filter(([key]) => key.startsWith('signal'));
  if (signals.length > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
