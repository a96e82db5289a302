/**
 * The layers the FCN is built from, with PyTorch's constructor arguments as an options bag.
 * Options are checked here, before anything native runs, and errors name the option.
 */
import { native } from '../native';
import { Module, registerModuleClass } from './module';

/** One size for both dimensions, or [height, width]. */
export type Size2 = number | [number, number];

function pair(value: Size2, name: string, min: number): [number, number] {
  const out = typeof value === 'number' ? [value, value] : value;
  if (!Array.isArray(out) || out.length !== 2 || !out.every((v) => Number.isInteger(v) && v >= min)) {
    throw new RangeError(`${name}: expected an integer >= ${min} or [h, w] of them, got ${JSON.stringify(value)}`);
  }
  return [out[0], out[1]];
}

function count(value: number, name: string, min = 1): number {
  if (!Number.isInteger(value) || value < min)
    throw new RangeError(`${name}: expected an integer >= ${min}, got ${value}`);
  return value;
}

function bool(value: boolean, name: string): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${name}: expected a boolean, got ${typeof value}`);
  return value;
}

/** Options of {@link Conv2d}, as PyTorch's keyword arguments. */
export interface Conv2dOptions {
  kernelSize: Size2;
  stride?: Size2;
  /** Zero padding per side, or 'same' / 'valid'. Default 0. */
  padding?: Size2 | 'same' | 'valid';
  dilation?: Size2;
  groups?: number;
  bias?: boolean;
  paddingMode?: 'zeros' | 'reflect' | 'replicate' | 'circular';
}

function checkGroups(inChannels: number, outChannels: number, groups: number): number {
  count(groups, 'groups');
  if (inChannels % groups !== 0 || outChannels % groups !== 0) {
    throw new RangeError(`groups (${groups}) must divide inChannels (${inChannels}) and outChannels (${outChannels})`);
  }
  return groups;
}

/** 2-D convolution over [N, C, H, W] (PyTorch's `nn.Conv2d`), with PyTorch's initialisation. */
export class Conv2d extends Module {
  constructor(inChannels: number, outChannels: number, options: Conv2dOptions) {
    const padding = options.padding ?? 0;
    const isString = padding === 'same' || padding === 'valid';
    super(
      native.createModule('Conv2d', {
        inChannels: count(inChannels, 'inChannels'),
        outChannels: count(outChannels, 'outChannels'),
        kernelSize: pair(options.kernelSize, 'kernelSize', 1),
        stride: pair(options.stride ?? 1, 'stride', 1),
        padding: isString ? [0, 0] : pair(padding as Size2, 'padding', 0),
        paddingString: isString ? padding : undefined,
        dilation: pair(options.dilation ?? 1, 'dilation', 1),
        groups: checkGroups(inChannels, outChannels, options.groups ?? 1),
        bias: bool(options.bias ?? true, 'bias'),
        paddingMode: options.paddingMode ?? 'zeros',
      }),
    );
  }
}

/** Options of {@link ConvTranspose2d}, as PyTorch's keyword arguments. */
export interface ConvTranspose2dOptions {
  kernelSize: Size2;
  stride?: Size2;
  padding?: Size2;
  outputPadding?: Size2;
  dilation?: Size2;
  groups?: number;
  bias?: boolean;
}

/** 2-D transposed convolution (PyTorch's `nn.ConvTranspose2d`): learnable upsampling. */
export class ConvTranspose2d extends Module {
  constructor(inChannels: number, outChannels: number, options: ConvTranspose2dOptions) {
    const stride = pair(options.stride ?? 1, 'stride', 1);
    const dilation = pair(options.dilation ?? 1, 'dilation', 1);
    const outputPadding = pair(options.outputPadding ?? 0, 'outputPadding', 0);
    outputPadding.forEach((p, i) => {
      if (p >= stride[i] && p >= dilation[i]) {
        throw new RangeError(
          `outputPadding (${p}) must be smaller than stride or dilation (${stride[i]}, ${dilation[i]})`,
        );
      }
    });
    super(
      native.createModule('ConvTranspose2d', {
        inChannels: count(inChannels, 'inChannels'),
        outChannels: count(outChannels, 'outChannels'),
        kernelSize: pair(options.kernelSize, 'kernelSize', 1),
        stride,
        padding: pair(options.padding ?? 0, 'padding', 0),
        outputPadding,
        dilation,
        groups: checkGroups(inChannels, outChannels, options.groups ?? 1),
        bias: bool(options.bias ?? true, 'bias'),
        paddingMode: 'zeros',
      }),
    );
  }
}

/** Options of {@link BatchNorm2d}. */
export interface BatchNorm2dOptions {
  eps?: number;
  momentum?: number;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/** Batch normalisation over [N, C, H, W] (PyTorch's `nn.BatchNorm2d`). */
export class BatchNorm2d extends Module {
  constructor(numFeatures: number, options: BatchNorm2dOptions = {}) {
    super(
      native.createModule('BatchNorm2d', {
        numFeatures: count(numFeatures, 'numFeatures'),
        eps: options.eps ?? 1e-5,
        momentum: options.momentum ?? 0.1,
        affine: bool(options.affine ?? true, 'affine'),
        trackRunningStats: bool(options.trackRunningStats ?? true, 'trackRunningStats'),
      }),
    );
  }
}

/** max(x, 0), elementwise. */
export class ReLU extends Module {
  constructor() {
    super(native.createModule('ReLU', {}));
  }
}

/** Options of {@link MaxPool2d}. */
export interface MaxPool2dOptions {
  kernelSize: Size2;
  /** Default: kernelSize. */
  stride?: Size2;
  padding?: Size2;
  dilation?: Size2;
  ceilMode?: boolean;
}

/** 2-D max pooling (PyTorch's `nn.MaxPool2d`). */
export class MaxPool2d extends Module {
  constructor(options: MaxPool2dOptions) {
    const kernelSize = pair(options.kernelSize, 'kernelSize', 1);
    super(
      native.createModule('MaxPool2d', {
        kernelSize,
        stride: pair(options.stride ?? kernelSize, 'stride', 1),
        padding: pair(options.padding ?? 0, 'padding', 0),
        dilation: pair(options.dilation ?? 1, 'dilation', 1),
        ceilMode: bool(options.ceilMode ?? false, 'ceilMode'),
      }),
    );
  }
}

/** Average pooling to a fixed output size (PyTorch's `nn.AdaptiveAvgPool2d`). */
export class AdaptiveAvgPool2d extends Module {
  constructor(outputSize: Size2) {
    super(native.createModule('AdaptiveAvgPool2d', { outputSize: pair(outputSize, 'outputSize', 1) }));
  }
}

/** Merges dimensions startDim..endDim (PyTorch's `nn.Flatten`, default 1..-1). */
export class Flatten extends Module {
  constructor(startDim = 1, endDim = -1) {
    super(native.createModule('Flatten', { startDim, endDim }));
  }
}

/** y = x W^T + b (PyTorch's `nn.Linear`). */
export class Linear extends Module {
  constructor(inFeatures: number, outFeatures: number, options: { bias?: boolean } = {}) {
    super(
      native.createModule('Linear', {
        inFeatures: count(inFeatures, 'inFeatures'),
        outFeatures: count(outFeatures, 'outFeatures'),
        bias: bool(options.bias ?? true, 'bias'),
      }),
    );
  }
}

registerModuleClass('Conv2d', Conv2d);
registerModuleClass('ConvTranspose2d', ConvTranspose2d);
registerModuleClass('BatchNorm2d', BatchNorm2d);
registerModuleClass('ReLU', ReLU);
registerModuleClass('MaxPool2d', MaxPool2d);
registerModuleClass('AdaptiveAvgPool2d', AdaptiveAvgPool2d);
registerModuleClass('Flatten', Flatten);
registerModuleClass('Linear', Linear);
