/**
 * Every argument check of the TypeScript API, in one place (as sharp's `is.js`): options are
 * checked here before anything native runs, and each error names the argument, what was
 * expected and what was given.
 * @internal
 */
import fs from 'node:fs';
import path from 'node:path';
import type { NativeTensor } from './native';
import { Tensor } from './tensor';

/** How a value reads in a message: `null`, `an array`, `Map`, `string`, ... */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return v.constructor?.name ?? 'an object';
  return typeof v;
}

/** The native handle of a tensor argument; a TypeError naming it otherwise. */
export function checkTensor(t: unknown, what = 'input'): NativeTensor {
  if (!(t instanceof Tensor)) throw new TypeError(`${what}: expected a Tensor, got ${describe(t)}`);
  return t.native;
}

/** An integer in [min, max]; the message says ">= min" when there is no upper bound. */
export function checkInteger(value: unknown, name: string, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = Number.isFinite(max) ? ` in [${min}, ${max}]` : Number.isFinite(min) ? ` >= ${min}` : '';
    throw new RangeError(`${name}: expected an integer${range}, got ${String(value)}`);
  }
  return value;
}

/** A finite number in [min, max]. */
export function checkNumber(value: unknown, name: string, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    const range =
      Number.isFinite(min) && Number.isFinite(max)
        ? ` in [${min}, ${max}]`
        : Number.isFinite(min)
          ? ` >= ${min}`
          : Number.isFinite(max)
            ? ` <= ${max}`
            : '';
    throw new RangeError(`${name}: expected a finite number${range}, got ${String(value)}`);
  }
  return value;
}

/** A boolean. */
export function checkBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${name}: expected a boolean, got ${describe(value)}`);
  return value;
}

/** One of a fixed list of strings. */
export function checkOneOf<T extends string>(value: unknown, name: string, choices: readonly T[]): T {
  if (!choices.includes(value as T)) {
    throw new RangeError(`${name}: expected one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

/** A string (a path, a name). */
export function checkString(value: unknown, name: string): string {
  if (typeof value !== 'string') throw new TypeError(`${name}: expected a string, got ${describe(value)}`);
  return value;
}

/** One size for both dimensions, or [height, width]. */
export type Size2 = number | [number, number];

/** An integer >= min, or [h, w] of them, as [h, w]. */
export function checkSize2(value: Size2, name: string, min: number): [number, number] {
  const out = typeof value === 'number' ? [value, value] : value;
  if (!Array.isArray(out) || out.length !== 2 || !out.every((v) => Number.isInteger(v) && v >= min)) {
    throw new RangeError(`${name}: expected an integer >= ${min} or [h, w] of them, got ${JSON.stringify(value)}`);
  }
  return [out[0], out[1]];
}

/** [height, width], both multiples of 32 (the FCN's stride). */
export function checkSizeMultipleOf32(size: unknown, name: string): [number, number] {
  if (!Array.isArray(size) || size.length !== 2 || !size.every((v) => Number.isInteger(v) && v >= 32 && v % 32 === 0)) {
    throw new RangeError(`${name}: expected [height, width], multiples of 32, got ${JSON.stringify(size)}`);
  }
  return [size[0], size[1]];
}

/**
 * A path a file can be written to: it ends in one of the extensions, and its folder exists
 * and is writable (checked before hours of work, not after).
 */
export function checkWritablePath(value: unknown, name: string, extensions: readonly string[]): string {
  const file = checkString(value, name);
  if (!extensions.some((e) => file.toLowerCase().endsWith(e))) {
    throw new RangeError(`${name}: expected a path ending in ${extensions.join(' or ')}, got '${file}'`);
  }
  const dir = path.dirname(path.resolve(file));
  const stat = fs.statSync(dir, { throwIfNoEntry: false });
  if (!stat?.isDirectory()) throw new Error(`${name}: the folder '${dir}' of '${file}' does not exist`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new Error(`${name}: the folder '${dir}' of '${file}' is not writable`);
  }
  return file;
}

/** A tensor shape: an array of integers >= 0. */
export function checkShape(shape: readonly number[], name = 'shape'): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${name}: expected an array of sizes, got ${describe(shape)}`);
  shape.forEach((s, i) => {
    if (!Number.isInteger(s) || s < 0) throw new RangeError(`${name}[${i}] must be an integer >= 0, got ${s}`);
  });
  return [...shape];
}
