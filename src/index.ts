/**
 * fcn-torch: Fully Convolutional Networks on libtorch, from TypeScript.
 *
 * ```ts
 * import { torch, nn, init, optim, models, bilinearKernel, load, save } from 'fcn-torch';
 * ```
 * @packageDocumentation
 */
import * as init from './init';
import * as models from './models';
import * as nn from './nn';
import * as optim from './optim';
import * as torch from './torch';
import * as voc from './voc';

export { type Checkpoint, type CheckpointInfo, loadCheckpoint, saveCheckpoint } from './checkpoint';
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
export { label2image, readImage, saveImageGrid } from './image';
export { bilinearKernel } from './init';
export { type Confusion, type EpochMetrics, type SegmentationMetrics, segmentationMetrics } from './metrics';
export { historySvg, plotHistory } from './plot';
export { normalizeImage, type PredictOptions, predict } from './predict';
export { load, save } from './serialization';
export { type Device, type DType, Tensor, type TypedArray } from './tensor';
export { type EpochBatches, type TrainOptions, train } from './train';
export { evaluate, type LossOptions, type StepResult, Trainer } from './trainer';
export { init, models, nn, optim, torch, voc };
