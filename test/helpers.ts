/**
 * Shared by the tests: PyTorch fixtures, element-wise comparison done in plain JS, child
 * processes, batches, synthetic VOC trees and a local HTTP server.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { type Browser, chromium } from 'playwright-core';
import { type EpochBatches, load, type Tensor, voc } from '../src';

export const fixtures = path.resolve(__dirname, '..', '..', 'test', 'fixtures');

/** The compiled `fcn` command. */
export const cli = path.resolve(__dirname, '..', 'src', 'cli', 'index.js');

/** The compiled package, for scripts run in child processes. */
export const packageEntry = path.resolve(__dirname, '..', 'src');

/**
 * Runs a script (CommonJS, `pkg` bound to the package) in a fresh Node process, so that a
 * crash is seen as a signal instead of ending the test run.
 */
export function runScript(script: string, options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Exit> {
  const code = `const pkg = require(${JSON.stringify(packageEntry)});\n${script}`;
  return runNode(['--expose-gc', '-e', code], { cwd: options.cwd ?? process.cwd(), env: options.env });
}

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

/** What a child process did: exit code (1 when killed), the signal that killed it (or null), output, and seconds it took. */
export interface Exit {
  code: number;
  signal: string | null;
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
      const signal = err ? ((err as { signal?: string | null }).signal ?? null) : null;
      resolve({ code, signal, stdout, stderr, seconds: (performance.now() - started) / 1000 });
    });
  });
}

/** The same batch every epoch, `length` times (copies: train() disposes batches after use). */
export function repeatBatch(X: Tensor, Y: Tensor, length = 1): EpochBatches {
  return {
    length,
    async *epoch() {
      for (let i = 0; i < length; i++) yield { X: X.clone(), Y: Y.clone() };
    },
  };
}

const syntheticTrees = new Map<string, Promise<string>>();

/** A synthetic VOC2012 written once per folder and options (later calls share it). */
export function syntheticVoc(root: string, options: voc.SynthesizeOptions = {}): Promise<string> {
  const key = `${root}\0${JSON.stringify(options)}`;
  let tree = syntheticTrees.get(key);
  if (!tree) {
    tree = voc.synthesize(root, options);
    syntheticTrees.set(key, tree);
  }
  return tree;
}

/** A server on 127.0.0.1 serving body at any path (counting requests); the first `drops` requests get half of it, then a dropped connection. */
export async function serveBytes(
  body: Buffer,
  drops = 0,
): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server = http.createServer((_req, res) => {
    count += 1;
    res.writeHead(200, { 'content-length': body.length });
    if (count <= drops) {
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
      return;
    }
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => count,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Awaits `pending` while counting event-loop turns (setImmediate callbacks) until it settles.
 * A call that did its work on the main thread settles before the first turn (0); one that runs
 * off the loop lets it turn many times. A count, not a clock: load on the machine cannot fake it.
 */
export async function loopTurnsWhile<T>(pending: Promise<T>): Promise<{ value: T; turns: number }> {
  let settled = false;
  const watched = pending.finally(() => {
    settled = true;
  });
  let turns = 0;
  while (!settled) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!settled) turns++;
  }
  return { value: await watched, turns };
}

/**
 * A fresh folder under the OS's temporary directory for one test file, removed when the
 * file's tests are done (some leave gigabytes: exported models, datasets, packed tarballs).
 */
export function scratchDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Debian's headless Chromium (or $CHROMIUM) through playwright-core, for the viewer's browser
 * tests; each launch gets a fresh profile of its own (a temporary --user-data-dir).
 */
export async function launchChromium(): Promise<Browser> {
  const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) {
    throw new Error(`no Chromium at ${executablePath}: apt-get install chromium (or set CHROMIUM)`);
  }
  return chromium.launch({
    executablePath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
