/**
 * ResNet-18, built natively with torchvision's module tree and state-dict names, so that
 * torchvision's published weights load by name.
 */

import { checkInteger } from '../checks';
import { fetchCached } from '../hub';
import { native } from '../native';
import { load } from '../serialization';
import { Module, registerModuleClass } from './module';

/** torchvision's ResNet (here: ResNet-18). Children: conv1 bn1 relu maxpool layer1..4 avgpool fc. */
export class ResNet extends Module {
  static {
    registerModuleClass('ResNet', ResNet);
  }
}

/** torchvision's BasicBlock: conv1 bn1 relu conv2 bn2 and, where the shape changes, downsample. */
export class BasicBlock extends Module {
  static {
    registerModuleClass('BasicBlock', BasicBlock);
  }
}

/** torchvision's published ResNet-18 ImageNet weights. */
export const RESNET18_IMAGENET1K_V1 = {
  url: 'https://download.pytorch.org/models/resnet18-f37072fd.pth',
  fileName: 'resnet18-f37072fd.pth',
  /** torch.hub's check: the file's SHA-256 starts with the hash in its name. */
  sha256Prefix: 'f37072fd',
} as const;

/** Options of {@link resnet18}. */
export interface ResNet18Options {
  /** Outputs of the final Linear layer (default 1000, ImageNet). */
  numClasses?: number;
}

/** Options of {@link resnet18} with weights to load. */
export interface ResNet18WeightsOptions extends ResNet18Options {
  /**
   * `'IMAGENET1K_V1'`: torchvision's file, downloaded once into the cache (checked by its
   * SHA-256); or the path of a local `.pth` / `.safetensors` state dict.
   */
  weights: 'IMAGENET1K_V1' | { path: string };
  /** Where to download from instead of download.pytorch.org (a mirror). */
  url?: string;
  /** Cache folder (default `$TORCH_HOME/hub/checkpoints`, shared with PyTorch). */
  cacheDir?: string;
}

/**
 * torchvision's ResNet-18 (PyTorch's `torchvision.models.resnet18`). Without weights it is
 * initialised as torchvision does and returned at once; with `weights` it returns a promise
 * of the model with those weights loaded.
 */
export function resnet18(options?: ResNet18Options): ResNet;
export function resnet18(options: ResNet18WeightsOptions): Promise<ResNet>;
export function resnet18(options: ResNet18Options | ResNet18WeightsOptions = {}): ResNet | Promise<ResNet> {
  const numClasses = checkInteger(options.numClasses ?? 1000, 'numClasses', 1);
  const model = new ResNet(native.resnet18(numClasses));
  if (!('weights' in options)) return model;
  return (async () => {
    const { weights } = options;
    let file: string;
    if (weights === 'IMAGENET1K_V1') {
      file = await fetchCached({
        url: options.url ?? RESNET18_IMAGENET1K_V1.url,
        fileName: RESNET18_IMAGENET1K_V1.fileName,
        sha256Prefix: RESNET18_IMAGENET1K_V1.sha256Prefix,
        cacheDir: options.cacheDir,
      });
    } else if (typeof weights === 'object' && weights !== null && typeof weights.path === 'string') {
      file = weights.path;
    } else {
      throw new TypeError(`weights: expected 'IMAGENET1K_V1' or { path }, got ${JSON.stringify(weights)}`);
    }
    model.loadStateDict(await load(file));
    return model;
  })();
}
