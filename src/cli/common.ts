/**
 * What every `fcn` command shares: the one-line error handling of its actions, and the model
 * a checkpoint or a model file describes.
 */
import { checkpointOf, isCheckpoint } from '../checkpoint';
import { createFcn } from '../fcn';
import type { Module } from '../nn/module';
import { resnet18 } from '../nn/resnet';
import { loadWithMetadata } from '../serialization';
import type { Device, Tensor } from '../tensor';
import * as torch from '../torch';
import { MODEL_METADATA_KEY, type ModelSpec, modelSpecOf } from './run-config';

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
  config: Pick<ModelSpec, 'arch' | 'init' | 'numClasses'>,
  device: Device,
  weights?: string,
): Promise<Module> {
  const backbone = weights
    ? await resnet18(weights === 'IMAGENET1K_V1' ? { weights } : { weights: { path: weights } })
    : undefined;
  return createFcn({ arch: config.arch, init: config.init, numClasses: config.numClasses, backbone }).to(device);
}

/** The tensor whose first size is the number of classes, by architecture. */
const CLASS_TENSOR: Record<ModelSpec['arch'], string> = {
  fcn32s: 'final_conv.weight',
  fcn16s: 'score_fr.weight',
  fcn8s: 'score_fr.weight',
};

/**
 * The model in a file `fcn train` wrote (checkpoint.safetensors, or model.safetensors with its
 * spec in the metadata), on device, with its spec. The spec is checked against the file's
 * tensors before any model is built, so that metadata cannot make it build a huge one.
 */
export async function modelFromFile(file: string, device: Device): Promise<{ net: Module; spec: ModelSpec }> {
  const { tensors, metadata } = await loadWithMetadata(file);
  let spec: ModelSpec;
  let weights: Map<string, Tensor>;
  if (isCheckpoint(metadata)) {
    const checkpoint = checkpointOf(file, tensors, metadata);
    spec = modelSpecOf(checkpoint.config, file);
    weights = checkpoint.model;
  } else if (metadata[MODEL_METADATA_KEY] !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(metadata[MODEL_METADATA_KEY]);
    } catch {
      throw new Error(`'${file}': its '${MODEL_METADATA_KEY}' metadata is not JSON`);
    }
    spec = modelSpecOf(json, file);
    weights = tensors;
  } else {
    throw new Error(
      `'${file}' holds no fcn-torch model: give the checkpoint.safetensors or model.safetensors that fcn train writes`,
    );
  }
  const classTensor = weights.get(CLASS_TENSOR[spec.arch]);
  if (classTensor?.shape[0] !== spec.numClasses) {
    throw new Error(
      `'${file}' says ${spec.arch} with ${spec.numClasses} classes, but its ${CLASS_TENSOR[spec.arch]} is ` +
        `${classTensor ? `[${classTensor.shape.join(', ')}]` : 'missing'}`,
    );
  }
  const net = await buildModel(spec, 'cpu');
  net.loadStateDict(weights);
  return { net: net.to(device), spec };
}
