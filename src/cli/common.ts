/**
 * What every `fcn` command shares: the one-line error handling of its actions, and the
 * threads, autocast and precision settings. (The model a file holds: src/model-file.ts.)
 */
import { Option } from '@commander-js/extra-typings';
import { cpuCapabilities, PRECISIONS, type Precision, resolvePrecision } from '../precision';
import type { Device } from '../tensor';
import * as torch from '../torch';

/** " [rank R]" in a worker of a distributed run, so that its errors say whose they are. */
const rankTag = process.env.WORLD_SIZE !== undefined ? ` [rank ${process.env.RANK}]` : '';

/** Runs a command's work; an error becomes one line on stderr and exit code 1 (130 when interrupted). */
export function action<A extends unknown[]>(name: string, fn: (...args: A) => Promise<void>) {
  return async (...args: A): Promise<void> => {
    try {
      await fn(...args);
    } catch (err) {
      const e = err as Error;
      console.error(`fcn ${name}${rankTag}: ${e.message.split('\n')[0]}`);
      // Interrupted (Ctrl-C, whose handler is still installed): exit now. Left to drain, Node
      // would first close its signal handles, and a second Ctrl-C in the ~100 ms of teardown
      // that follow would kill the process by SIGINT instead of ending it with 130.
      if (e.name === 'AbortError') process.exit(130);
      process.exitCode = 1;
    }
  };
}

/** Sets libtorch's CPU threads when asked. */
export function setThreads(threads: number | undefined): void {
  if (threads !== undefined) torch.setNumThreads(threads);
}

/** `--precision auto|float32|bfloat16`, defaulting to fallback. */
export function precisionOption(fallback: Precision) {
  return new Option(
    '--precision <p>',
    'float32; bfloat16 mixed precision where the hardware has bfloat16 units (AVX-512 BF16, AMX, GPUs); ' +
      'auto: bfloat16 on CPUs with them, float32 elsewhere',
  )
    .choices(PRECISIONS)
    .default(fallback);
}

/**
 * Sets the precision asked for on device's type for the whole command (torch.setAutocast) and
 * returns the line that says what runs: "precision: bfloat16", or why float32 runs instead.
 */
export function setPrecision(precision: Precision, device: Device): string {
  const runs = resolvePrecision(precision, device);
  torch.setAutocast(device.startsWith('cuda') ? 'cuda' : 'cpu', runs === 'bfloat16' ? 'bfloat16' : null);
  if (runs === precision || device.startsWith('cuda')) return `precision: ${runs}`;
  const cpu = cpuCapabilities();
  return `precision: ${runs} (${precision} asked; ${cpu.name || 'this CPU'} has no bfloat16 units: AVX-512 BF16 or AMX)`;
}
