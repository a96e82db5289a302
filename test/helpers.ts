/** Shared by the tests: PyTorch fixtures and element-wise comparison done in plain JS. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { load, type Tensor } from '../src';

export const fixtures = path.resolve(__dirname, '..', '..', 'test', 'fixtures');

const cache = new Map<string, Promise<Map<string, Tensor>>>();

/** The tensors of test/fixtures/NAME (written by scripts/make_fixtures.py with PyTorch). */
export function fixture(name: string): Promise<Map<string, Tensor>> {
  let entry = cache.get(name);
  if (!entry) {
    entry = load(path.join(fixtures, name));
    cache.set(name, entry);
  }
  return entry;
}

/** The tensor named key of a fixture map, or a thrown error naming what is missing. */
export function pick(map: Map<string, Tensor>, key: string): Tensor {
  const t = map.get(key);
  if (!t) throw new Error(`fixture has no tensor '${key}'`);
  return t;
}

function numbers(t: Tensor): Float64Array {
  return Float64Array.from(t.toTypedArray() as ArrayLike<number | bigint>, Number);
}

/** Largest |a - b| over all elements; throws when shapes differ. */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  if (a.shape.join() !== b.shape.join()) throw new Error(`shapes differ: [${a.shape}] vs [${b.shape}]`);
  const x = numbers(a);
  const y = numbers(b);
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  return worst;
}

/** True when every element is bit-for-bit equal (same dtype and shape). */
export function exactlyEqual(a: Tensor, b: Tensor): boolean {
  if (a.dtype !== b.dtype || a.shape.join() !== b.shape.join()) return false;
  const x = Buffer.from((a.toTypedArray() as Float32Array).buffer);
  const y = Buffer.from((b.toTypedArray() as Float32Array).buffer);
  return x.equals(y);
}

/** What a child process did: exit code (1 when killed), output, and seconds it took. */
export interface Exit {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

/**
 * Runs `node args...` in cwd, asynchronously (other tests keep running); with nice, at that
 * lower priority (children it starts inherit it).
 */
export function runNode(
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; nice?: number },
): Promise<Exit> {
  const started = performance.now();
  const [file, argv] =
    options.nice === undefined
      ? [process.execPath, args]
      : ['nice', ['-n', `${options.nice}`, process.execPath, ...args]];
  return new Promise((resolve) => {
    execFile(file, argv, { cwd: options.cwd, env: { ...process.env, ...options.env } }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code, stdout, stderr, seconds: (performance.now() - started) / 1000 });
    });
  });
}
