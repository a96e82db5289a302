/**
 * The value parsers of the `fcn` command's options: each turns the text a user typed into a
 * typed value or rejects it with a message that commander prints after the option's name.
 */
import fs from 'node:fs';
import { InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { MAX_CLASSES } from '../data/classes';
import { DATA_FORMATS } from '../data/layouts';
import type { Device } from '../tensor';

/** An integer in [min, max], written in decimal. */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(
        max === Number.MAX_SAFE_INTEGER ? `expected an integer >= ${min}` : `expected an integer in [${min}, ${max}]`,
      );
    }
    return n;
  };
}

/** A TCP port, 1..65535. */
export function tcpPort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) throw new InvalidArgumentError('expected a TCP port, 1..65535');
  return n;
}

/** A decimal number >= 0 (1e-3 and 0.001 alike). */
export function nonNegative(value: string): number {
  const n = Number(value);
  if (!/^\s*[+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(value) || !Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError('expected a number >= 0');
  }
  return n;
}

/** A share in [0, 0.9] (the val split of a dataset). */
export function fraction(value: string): number {
  const n = nonNegative(value);
  if (n > 0.9) throw new InvalidArgumentError('expected a share from 0 to 0.9');
  return n;
}

/** HEIGHTxWIDTH, both multiples of 32. */
export function cropSize(value: string): [number, number] {
  const match = /^(\d+)x(\d+)$/.exec(value);
  const size = match ? [Number(match[1]), Number(match[2])] : [];
  if (size.length !== 2 || !size.every((v) => v >= 32 && v % 32 === 0)) {
    throw new InvalidArgumentError('expected HEIGHTxWIDTH, both multiples of 32 (e.g. 320x480)');
  }
  return size as [number, number];
}

/** cpu, cuda or cuda:N, several separated by ','. */
export function devices(value: string): Device[] {
  const list = value.split(',').map((d) => d.trim());
  if (!list.every((d) => /^(cpu|cuda|cuda:\d+)$/.test(d))) {
    throw new InvalidArgumentError("expected cpu, cuda or cuda:N, several separated by ','");
  }
  return list as Device[];
}

/** One device. */
export function device(value: string): Device {
  const list = devices(value);
  if (list.length !== 1) throw new InvalidArgumentError('expected one device: cpu, cuda or cuda:N');
  return list[0];
}

export const isDir = (p: string) => fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
export const isFile = (p: string) => fs.statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;

/** A folder that exists. */
export function existingDir(value: string): string {
  if (!isDir(value)) throw new InvalidArgumentError('no such folder');
  return value;
}

/** A file that exists. */
export function existingFile(value: string): string {
  if (!isFile(value)) throw new InvalidArgumentError('no such file');
  return value;
}

/** How a dataset is read (fcn train, fcn data check): its layout, its ignore value, the share of a random val split. */
export const datasetOptions = {
  format: () => new Option('--format <layout>', 'the dataset layout (default: detected)').choices(DATA_FORMATS),
  ignoreIndex: () =>
    new Option('--ignore-index <n>', 'the mask value of pixels to ignore')
      .argParser(integer(0, MAX_CLASSES))
      .default(255),
  valFraction: () =>
    new Option('--val-fraction <f>', 'share of the images to validate on, for a dataset without its own split')
      .argParser(fraction)
      .default(0.1),
};
