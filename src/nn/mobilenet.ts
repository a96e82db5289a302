/**
 * torchvision's MobileNetV3-Large, built natively with torchvision's module tree and
 * state-dict names (features.0 .. features.16, avgpool, classifier), so that torchvision's
 * published weights load by name.
 */

import { checkInteger } from '../checks';
import { chooseWeights, type FetchOptions, type PublishedWeights, published } from '../hub';
import { native } from '../native';
import { load } from '../serialization';
import { Module, registerModuleClass } from './module';

/** torchvision's MobileNetV3: features (a Sequential of 17 blocks), avgpool, classifier. */
export class MobileNetV3 extends Module {
  static {
    registerModuleClass('MobileNetV3', MobileNetV3);
  }
}

/** torchvision's InvertedResidual: `block` (expand, depthwise, squeeze-excitation, project), plus the input where the shape is kept. */
export class InvertedResidual extends Module {
  static {
    registerModuleClass('InvertedResidual', InvertedResidual);
  }
}

/** torchvision's SqueezeExcitation: avgpool, fc1, ReLU, fc2, Hardsigmoid, times the input. */
export class SqueezeExcitation extends Module {
  static {
    registerModuleClass('SqueezeExcitation', SqueezeExcitation);
  }
}

const imagenet = (url: string, acc1: number, acc5: number) =>
  published(url, {
    numClasses: 1000,
    categories: null,
    numParams: 5483032,
    metrics: { 'ImageNet-1K acc@1': acc1, 'ImageNet-1K acc@5': acc5 },
  });

/** torchvision's ImageNet weights of MobileNetV3-Large (`MobileNet_V3_Large_Weights`). */
export const MOBILENET_V3_LARGE_WEIGHTS = {
  IMAGENET1K_V1: imagenet('https://download.pytorch.org/models/mobilenet_v3_large-8738ca79.pth', 74.042, 91.34),
  IMAGENET1K_V2: imagenet('https://download.pytorch.org/models/mobilenet_v3_large-5c1a4163.pth', 75.274, 92.566),
} as const satisfies Record<string, PublishedWeights>;

/** A weights choice of MobileNetV3-Large: a published name, `'DEFAULT'` (IMAGENET1K_V2), or a local file. */
export type MobileNetV3LargeWeights = keyof typeof MOBILENET_V3_LARGE_WEIGHTS | 'DEFAULT' | { path: string };

/** Options of {@link mobilenetV3Large}. */
export interface MobileNetV3Options {
  /** Outputs of the final Linear layer (default 1000, ImageNet). */
  numClasses?: number;
}

/** Options of {@link mobilenetV3Large} with weights to load. */
export interface MobileNetV3WeightsOptions extends MobileNetV3Options, FetchOptions {
  /** A published name (downloaded once, checked by its SHA-256) or a local state dict. */
  weights: MobileNetV3LargeWeights;
}

/**
 * torchvision's MobileNetV3-Large (`torchvision.models.mobilenet_v3_large`). Without weights
 * it is initialised as torchvision does and returned at once; with `weights` it returns a
 * promise of the model with those weights loaded.
 */
export function mobilenetV3Large(options?: MobileNetV3Options): MobileNetV3;
export function mobilenetV3Large(options: MobileNetV3WeightsOptions): Promise<MobileNetV3>;
export function mobilenetV3Large(
  options: MobileNetV3Options | MobileNetV3WeightsOptions = {},
): MobileNetV3 | Promise<MobileNetV3> {
  const numClasses = checkInteger(options.numClasses ?? 1000, 'numClasses', 1);
  if (!('weights' in options)) return new MobileNetV3(native.mobilenetV3Large(numClasses));
  const { file } = chooseWeights(
    'mobilenet_v3_large: weights',
    options.weights,
    MOBILENET_V3_LARGE_WEIGHTS,
    'IMAGENET1K_V2',
    options,
  );
  return (async () => {
    const model = new MobileNetV3(native.mobilenetV3Large(numClasses));
    model.loadStateDict(await load(await file()));
    return model;
  })();
}
