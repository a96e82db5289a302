/**
 * torchvision's ResNets (ResNet-18, -50, -101), built natively with torchvision's module tree
 * and state-dict names, so that torchvision's published weights load by name.
 */

import { checkInteger } from '../checks';
import { chooseWeights, type FetchOptions, type PublishedWeights, published } from '../hub';
import { native } from '../native';
import { load } from '../serialization';
import { Module, registerModuleClass } from './module';

/** torchvision's ResNet. Children: conv1 bn1 relu maxpool layer1..4 avgpool fc (a segmentation backbone ends at layer4). */
export class ResNet extends Module {
  static {
    registerModuleClass('ResNet', ResNet);
  }
}

/** torchvision's BasicBlock (ResNet-18): conv1 bn1 relu conv2 bn2 and, where the shape changes, downsample. */
export class BasicBlock extends Module {
  static {
    registerModuleClass('BasicBlock', BasicBlock);
  }
}

/**
 * torchvision's Bottleneck (ResNet-50/101, v1.5: the stride on the 3x3 conv2): conv1 bn1
 * conv2 bn2 conv3 bn3 relu and, where the shape changes, downsample.
 */
export class Bottleneck extends Module {
  static {
    registerModuleClass('Bottleneck', Bottleneck);
  }
}

const imagenet = (url: string, numParams: number, acc1: number, acc5: number) =>
  published(url, {
    numClasses: 1000,
    categories: null,
    numParams,
    metrics: { 'ImageNet-1K acc@1': acc1, 'ImageNet-1K acc@5': acc5 },
  });

/** torchvision's published ResNet-18 ImageNet weights. */
export const RESNET18_IMAGENET1K_V1 = imagenet(
  'https://download.pytorch.org/models/resnet18-f37072fd.pth',
  11689512,
  69.758,
  89.078,
);

/** torchvision's ImageNet weights for each ResNet, by torchvision's names (`ResNet50_Weights.IMAGENET1K_V2`, ...). */
export const RESNET_WEIGHTS = {
  resnet18: { IMAGENET1K_V1: RESNET18_IMAGENET1K_V1 },
  resnet50: {
    IMAGENET1K_V1: imagenet('https://download.pytorch.org/models/resnet50-0676ba61.pth', 25557032, 76.13, 92.862),
    IMAGENET1K_V2: imagenet('https://download.pytorch.org/models/resnet50-11ad3fa6.pth', 25557032, 80.858, 95.434),
  },
  resnet101: {
    IMAGENET1K_V1: imagenet('https://download.pytorch.org/models/resnet101-63fe2227.pth', 44549160, 77.374, 93.546),
    IMAGENET1K_V2: imagenet('https://download.pytorch.org/models/resnet101-cd907fc2.pth', 44549160, 81.886, 95.78),
  },
} as const satisfies Record<string, Record<string, PublishedWeights>>;

/** torchvision's `DEFAULT` for each ResNet. */
const DEFAULT_WEIGHTS = { resnet18: 'IMAGENET1K_V1', resnet50: 'IMAGENET1K_V2', resnet101: 'IMAGENET1K_V2' } as const;

/** The ResNets of torchvision that are built here. */
export type ResNetName = keyof typeof RESNET_WEIGHTS;

/** A weights choice of ResNet name: a published name, `'DEFAULT'`, or a local file. */
export type ResNetWeights<N extends ResNetName> = keyof (typeof RESNET_WEIGHTS)[N] | 'DEFAULT' | { path: string };

/** Options of the ResNet builders. */
export interface ResNetOptions {
  /** Outputs of the final Linear layer (default 1000, ImageNet). */
  numClasses?: number;
}

/** Options of a ResNet builder with weights to load. */
export interface ResNetWeightsOptions<N extends ResNetName> extends ResNetOptions, FetchOptions {
  /**
   * A published name (`'IMAGENET1K_V1'`, ...; `'DEFAULT'` is torchvision's default), downloaded
   * once into the cache and checked by its SHA-256; or the path of a local `.pth` /
   * `.safetensors` state dict.
   */
  weights: ResNetWeights<N>;
}

/** Options of {@link resnet18}. */
export type ResNet18Options = ResNetOptions;
/** Options of {@link resnet18} with weights to load. */
export type ResNet18WeightsOptions = ResNetWeightsOptions<'resnet18'>;

const ARCHITECTURES = {
  resnet18: ['basic', [2, 2, 2, 2]],
  resnet50: ['bottleneck', [3, 4, 6, 3]],
  resnet101: ['bottleneck', [3, 4, 23, 3]],
} as const;

function build<N extends ResNetName>(
  name: N,
  options: ResNetOptions | ResNetWeightsOptions<N>,
): ResNet | Promise<ResNet> {
  const numClasses = checkInteger(options.numClasses ?? 1000, 'numClasses', 1);
  if (!('weights' in options)) {
    const [block, layers] = ARCHITECTURES[name];
    return new ResNet(native.resnet(block, [...layers], numClasses));
  }
  const table: Record<string, PublishedWeights> = RESNET_WEIGHTS[name];
  const { file } = chooseWeights(`${name}: weights`, options.weights, table, DEFAULT_WEIGHTS[name], options);
  return (async () => {
    const [block, layers] = ARCHITECTURES[name];
    const model = new ResNet(native.resnet(block, [...layers], numClasses));
    model.loadStateDict(await load(await file()));
    return model;
  })();
}

/**
 * torchvision's ResNet-18 (PyTorch's `torchvision.models.resnet18`). Without weights it is
 * initialised as torchvision does and returned at once; with `weights` it returns a promise
 * of the model with those weights loaded.
 */
export function resnet18(options?: ResNetOptions): ResNet;
export function resnet18(options: ResNetWeightsOptions<'resnet18'>): Promise<ResNet>;
export function resnet18(options: ResNetOptions | ResNetWeightsOptions<'resnet18'> = {}): ResNet | Promise<ResNet> {
  return build('resnet18', options);
}

/** torchvision's ResNet-50 (`torchvision.models.resnet50`); see {@link resnet18} for weights. */
export function resnet50(options?: ResNetOptions): ResNet;
export function resnet50(options: ResNetWeightsOptions<'resnet50'>): Promise<ResNet>;
export function resnet50(options: ResNetOptions | ResNetWeightsOptions<'resnet50'> = {}): ResNet | Promise<ResNet> {
  return build('resnet50', options);
}

/** torchvision's ResNet-101 (`torchvision.models.resnet101`); see {@link resnet18} for weights. */
export function resnet101(options?: ResNetOptions): ResNet;
export function resnet101(options: ResNetWeightsOptions<'resnet101'>): Promise<ResNet>;
export function resnet101(options: ResNetOptions | ResNetWeightsOptions<'resnet101'> = {}): ResNet | Promise<ResNet> {
  return build('resnet101', options);
}
