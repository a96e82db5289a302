/**
 * What every `fcn` command shares: the one-line error handling of its actions, and the model
 * a checkpoint describes.
 */
import { loadCheckpoint } from '../checkpoint';
import { createFcn } from '../fcn';
import type { Module } from '../nn/module';
import { resnet18 } from '../nn/resnet';
import type { Device } from '../tensor';
import * as torch from '../torch';
import { type RunConfig, runConfigOf } from './run-config';

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
      process.exitCode = e.name === 'AbortError' ? 130 : 1;
    }
  };
}

/** Sets libtorch's CPU threads when asked. */
export function setThreads(threads: number | undefined): void {
  if (threads !== undefined) torch.setNumThreads(threads);
}

/** The FCN a run config describes, on device; with backbone weights when given. */
export async function buildModel(
  config: Pick<RunConfig, 'arch' | 'init' | 'numClasses'>,
  device: Device,
  weights?: string,
): Promise<Module> {
  const backbone = weights
    ? await resnet18(weights === 'IMAGENET1K_V1' ? { weights } : { weights: { path: weights } })
    : undefined;
  return createFcn({ arch: config.arch, init: config.init, numClasses: config.numClasses, backbone }).to(device);
}

/** The model of a checkpoint written by `fcn train`, on device, with its run config. */
export async function modelFromCheckpoint(file: string, device: Device): Promise<{ net: Module; config: RunConfig }> {
  const checkpoint = await loadCheckpoint(file);
  const config = runConfigOf(checkpoint.config, file);
  const net = await buildModel(config, 'cpu');
  net.loadStateDict(checkpoint.model);
  return { net: net.to(device), config };
}
