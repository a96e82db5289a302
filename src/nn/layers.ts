/**
 * The layers the FCN and torchvision's segmentation models are built from, with PyTorch's
 * constructor arguments as an options bag.
 * Options are checked here, before anything native runs, and errors name the option.
 */
import { checkBoolean, checkInteger, checkNumber, checkSize2, type Size2 } from '../checks';
import { native } from '../native';
import { Module, registerModuleClass } from './module';

export type { Size2 };

const count = (value: number, name: string) => checkInteger(value, name, 1);

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
  /** The native registry's name of this kind. */
  static readonly kind = registerModuleClass('Conv2d', this);

  constructor(inChannels: number, outChannels: number, options: Conv2dOptions) {
    const padding = options.padding ?? 0;
    const isString = padding === 'same' || padding === 'valid';
    super(
      native.createModule(Conv2d.kind, {
        inChannels: count(inChannels, 'inChannels'),
        outChannels: count(outChannels, 'outChannels'),
        kernelSize: checkSize2(options.kernelSize, 'kernelSize', 1),
        stride: checkSize2(options.stride ?? 1, 'stride', 1),
        padding: isString ? [0, 0] : checkSize2(padding as Size2, 'padding', 0),
        paddingString: isString ? padding : undefined,
        dilation: checkSize2(options.dilation ?? 1, 'dilation', 1),
        groups: checkGroups(inChannels, outChannels, options.groups ?? 1),
        bias: checkBoolean(options.bias ?? true, 'bias'),
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
  /** The native registry's name of this kind. */
  static readonly kind = registerModuleClass('ConvTranspose2d', this);

  constructor(inChannels: number, outChannels: number, options: ConvTranspose2dOptions) {
    const stride = checkSize2(options.stride ?? 1, 'stride', 1);
    const dilation = checkSize2(options.dilation ?? 1, 'dilation', 1);
    const outputPadding = checkSize2(options.outputPadding ?? 0, 'outputPadding', 0);
    outputPadding.forEach((p, i) => {
      if (p >= stride[i] && p >= dilation[i]) {
        throw new RangeError(
          `outputPadding (${p}) must be smaller than stride or dilation (${stride[i]}, ${dilation[i]})`,
        );
      }
    });
    super(
      native.createModule(ConvTranspose2d.kind, {
        inChannels: count(inChannels, 'inChannels'),
        outChannels: count(outChannels, 'outChannels'),
        kernelSize: checkSize2(options.kernelSize, 'kernelSize', 1),
        stride,
        padding: checkSize2(options.padding ?? 0, 'padding', 0),
        outputPadding,
        dilation,
        groups: checkGroups(inChannels, outChannels, options.groups ?? 1),
        bias: checkBoolean(options.bias ?? true, 'bias'),
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
  /** The native registry's name of this kind. */
  static readonly kind = registerModuleClass('BatchNorm2d', this);

  constructor(numFeatures: number, options: BatchNorm2dOptions = {}) {
    super(
      native.createModule(BatchNorm2d.kind, {
        numFeatures: count(numFeatures, 'numFeatures'),
        eps: options.eps ?? 1e-5,
        momentum: options.momentum ?? 0.1,
        affine: checkBoolean(options.affine ?? true, 'affine'),
        trackRunningStats: checkBoolean(options.trackRunningStats ?? true, 'trackRunningStats'),
      }),
    );
  }
}

/** max(x, 0), elementwise. */
export class ReLU extends Module {
  /** The native registry's name of this kind. */
  static readonly kind = registerModuleClass('ReLU', this);

  constructor() {
    super(native.createModule(ReLU.kind, {}));
  }
}

/** 1 / (1 + exp(-x)), elementwise (PyTorch's `nn.Sigmoid`). */
export class Sigmoid extends Module {
  /** The native registry's name of this kind. */
  static readonly kind = registerModuleClass('Sigmoid', this);

  constructor() {
    super(native.createModule(Sigmoid.kind, {}));
  }
}

/** x * relu6(x + 3) / 6, elementwise (PyTorch's `nn.Hardswish`; MobileNetV3's activation). */
export class Hardswish extends Module {
  /** The native registry's name of this kind. */
  static readonly kind = registerModuleClass('Hardswish', this);

  constructor() {
    super(native.createModule(Hardswish.kind, {}));
  }
}

/** relu6(x + 3) / 6, elementwise (PyTorch's `nn.Hardsigmoid`; MobileNetV3's squeeze-excitation gate). */
export class Hardsigmoid extends Module {
  /** The native registry's name of this kind. */
  static readonly kind = registerModuleClass('Hardsigmoid', this);

  constructor() {
    super(native.createModule(Hardsigmoid.kind, {}));
  }
}

/**
 * Zeroes each element with probability p in training mode and scales the rest by 1 / (1 - p);
 * the identity in eval mode (PyTorch's `nn.Dropout`).
 */
export class Dropout extends Module {
  /** The native registry's name of this kind. */
  static readonly kind = registerModuleClass('Dropout', this);

  constructor(p = 0.5) {
    super(native.createModule(Dropout.kind, { p: checkNumber(p, 'p', 0, 1) }));
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
  /** The native registry's name of this kind. */
  static readonly kind = registerModuleClass('MaxPool2d', this);

  constructor(options: MaxPool2dOptions) {
    const kernelSize = checkSize2(options.kernelSize, 'kernelSize', 1);
    super(
      native.createModule(MaxPool2d.kind, {
        kernelSize,
        stride: checkSize2(options.stride ?? kernelSize, 'stride', 1),
        padding: checkSize2(options.padding ?? 0, 'padding', 0),
        dilation: checkSize2(options.dilation ?? 1, 'dilation', 1),
        ceilMode: checkBoolean(options.ceilMode ?? false, 'ceilMode'),
      }),
    );
  }
}

/** Average pooling to a fixed output size (PyTorch's `nn.AdaptiveAvgPool2d`). */
export class AdaptiveAvgPool2d extends Module {
  /** The native registry's name of this kind. */
  static readonly kind = registerModuleClass('AdaptiveAvgPool2d', this);

  constructor(outputSize: Size2) {
    super(native.createModule(AdaptiveAvgPool2d.kind, { outputSize: checkSize2(outputSize, 'outputSize', 1) }));
  }
}

/** Merges dimensions startDim..endDim (PyTorch's `nn.Flatten`, default 1..-1). */
export class Flatten extends Module {
  /** The native registry's name of this kind. */
  static readonly kind = registerModuleClass('Flatten', this);

  constructor(startDim = 1, endDim = -1) {
    super(native.createModule(Flatten.kind, { startDim, endDim }));
  }
}

/** y = x W^T + b (PyTorch's `nn.Linear`). */
export class Linear extends Module {
  /** The native registry's name of this kind. */
  static readonly kind = registerModuleClass('Linear', this);

  constructor(inFeatures: number, outFeatures: number, options: { bias?: boolean } = {}) {
    super(
      native.createModule(Linear.kind, {
        inFeatures: count(inFeatures, 'inFeatures'),
        outFeatures: count(outFeatures, 'outFeatures'),
        bias: checkBoolean(options.bias ?? true, 'bias'),
      }),
    );
  }
}
