/**
 * What every `fcn` command shares: the one-line error handling of its actions, and the model
 * a run config or a checkpoint describes (the chapter's FCN, or a torchvision segmentation
 * model named by `--model`).
 */
import { loadCheckpoint } from '../checkpoint';
import { createFcn } from '../fcn';
import { type BackboneWeights, getModel, type SegmentationOptions } from '../models/segmentation';
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

/** `--weights` of a `--model` run: a published name, or the path of a local file. */
export function modelWeights(value: string): NonNullable<SegmentationOptions['weights']> {
  return value === 'COCO_WITH_VOC_LABELS_V1' || value === 'DEFAULT' ? value : { path: value };
}

/** `--weights-backbone`: a published ImageNet name, or the path of a local file. */
export function backboneWeights(value: string): BackboneWeights {
  return value === 'IMAGENET1K_V1' || value === 'IMAGENET1K_V2' || value === 'DEFAULT' ? value : { path: value };
}

/**
 * The model a run config describes, on device. The chapter's FCN takes `weights` as its
 * ResNet-18 backbone's; a `--model` run takes `weights` as the whole model's and
 * `weightsBackbone` as its backbone's.
 */
export async function buildModel(
  config: Pick<RunConfig, 'model' | 'arch' | 'init' | 'numClasses' | 'auxLoss'>,
  device: Device,
  weights?: string,
  weightsBackbone?: string,
): Promise<Module> {
  if (config.model) {
    const model = await getModel(config.model, {
      numClasses: config.numClasses,
      ...(config.model.startsWith('lraspp') ? {} : { auxLoss: config.auxLoss }),
      ...(weights ? { weights: modelWeights(weights) } : {}),
      ...(weightsBackbone ? { weightsBackbone: backboneWeights(weightsBackbone) } : {}),
    });
    return model.to(device);
  }
  if (weightsBackbone) throw new RangeError("--weights-backbone goes with --model; the chapter's FCN takes --weights");
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
