/// <reference types="node" preserve="true" />
/**
 * fcn-torch: Fully Convolutional Networks on libtorch, from TypeScript.
 *
 * ```ts
 * import { torch, nn, init, optim, models, bilinearKernel, load, save } from 'fcn-torch';
 * ```
 * @packageDocumentation
 */
import * as data from './data';
import * as init from './init';
import * as models from './models';
import * as nn from './nn';
import * as optim from './optim';
import type { ServeOptions, ViewerServer } from './serve';
import * as torch from './torch';
import * as voc from './voc';

export {
  type Checkpoint,
  type CheckpointInfo,
  type CheckpointParts,
  loadCheckpoint,
  saveCheckpoint,
} from './checkpoint';
export {
  type DistributedBackend,
  freePort,
  initProcessGroup,
  ProcessGroup,
  type ProcessGroupOptions,
  type ReduceOp,
  shardOf,
  type TorchrunEnv,
  torchrunEnv,
} from './distributed';
export {
  createFcn,
  FCN_ARCHS,
  FCNSkip,
  type FcnArch,
  type FcnOptions,
  UPSAMPLING_INITS,
  type UpsamplingInit,
} from './fcn';
export { DECODE_MAX_PIXELS, label2image, readImage, saveImageGrid, saveMask } from './image';
export { bilinearKernel } from './init';
export { Int8Model, quantizeInt8 } from './int8';
export { type Confusion, type EpochMetrics, type SegmentationMetrics, segmentationMetrics } from './metrics';
export { exportOnnx, ONNX_OPSETS, type OnnxExportOptions, type OnnxExportResult } from './onnx/export';
export { historySvg, plotHistory } from './plot';
export { type CpuCapabilities, cpuCapabilities, PRECISIONS, type Precision, resolvePrecision } from './precision';
export { normalizeImage, PREDICT_MAX_PIXELS, type PredictOptions, predict } from './predict';
export { load, save } from './serialization';
export type { ServeLimits } from './serve/limits';
export { chapterModel, fileModel, type LoadedModel, type ModelSource, segmentationModel } from './serve/models';
export { type Device, type DType, Tensor, type TypedArray } from './tensor';
export { type EpochBatches, type TrainOptions, train } from './train';
export { evaluate, evaluateWholeImages, type LossOptions, type StepResult, Trainer } from './trainer';
export type { ServeOptions, ViewerServer };
export { data, init, models, nn, optim, torch, voc };

/**
 * Starts the local web viewer: a page that labels images with a model and shows a training
 * run (see {@link ServeOptions}). The server library is loaded on the first call only.
 */
export async function serve(options: ServeOptions = {}): Promise<ViewerServer> {
  return (await import('./serve/index.js')).serve(options);
}
