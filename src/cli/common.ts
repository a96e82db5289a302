/**
 * What every `fcn` command shares: the one-line error handling of its actions, and the
 * threads and autocast settings. (The model a file holds: src/model-file.ts.)
 */
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

/** Turns bfloat16 autocast on for the device types of devices when asked (`--autocast`). */
export function setAutocast(autocast: boolean, devices: readonly Device[]): void {
  if (!autocast) return;
  for (const device of devices) torch.setAutocast(device.startsWith('cuda') ? 'cuda' : 'cpu', 'bfloat16');
}
