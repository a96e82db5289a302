/**
 * fcn-torch: Fully Convolutional Networks on libtorch, from TypeScript.
 *
 * ```ts
 * import { torch, nn, init, optim, bilinearKernel, load, save } from 'fcn-torch';
 * ```
 * @packageDocumentation
 */
import * as init from './init';
import * as nn from './nn';
import * as optim from './optim';
import * as torch from './torch';
import * as voc from './voc';

export { label2image, readImage, saveImageGrid } from './image';
export { bilinearKernel } from './init';
export { load, save } from './serialization';
export { type Device, type DType, Tensor, type TypedArray } from './tensor';
export { init, nn, optim, torch, voc };
