/**
 * The chapter's fully convolutional network on a ResNet-18 body, and the skip-connection
 * variants of Long et al. that the chapter's exercise 4 asks for.
 */
import { checkInteger, checkOneOf } from './checks';
import { bilinearKernel, xavierUniform_, zeros_ } from './init';
import { native } from './native';
import { Conv2d, ConvTranspose2d } from './nn/layers';
import { Module, registerModuleClass } from './nn/module';
import { type ResNet, resnet18 } from './nn/resnet';
import { Sequential } from './nn/sequential';

/** The architectures: FCN-32s is the chapter's model; FCN-16s and FCN-8s fuse scores from layer3 and layer2. */
export const FCN_ARCHS = ['fcn32s', 'fcn16s', 'fcn8s'] as const;
/** One of {@link FCN_ARCHS}. */
export type FcnArch = (typeof FCN_ARCHS)[number];
/** How the transposed convolutions start: the chapter's bilinear kernel, or Xavier (exercise 1). */
export const UPSAMPLING_INITS = ['bilinear', 'xavier'] as const;
/** One of {@link UPSAMPLING_INITS}. */
export type UpsamplingInit = (typeof UPSAMPLING_INITS)[number];

/**
 * FCN-16s / FCN-8s: `stem` (conv1 .. layer1), layer2, layer3, layer4 of the ResNet, then
 * `score_fr` on layer4, `upscore2` (2x) added to `score_pool4` (layer3); FCN-8s upsamples
 * again (`upscore_pool4`) and adds `score_pool3` (layer2); `upscore16` / `upscore8` restore
 * the input size. Inputs need sides that are multiples of 32.
 */
export class FCNSkip extends Module {
  static {
    registerModuleClass('FCN16s', FCNSkip);
    registerModuleClass('FCN8s', FCNSkip);
  }
}

/** Options of {@link createFcn}. */
export interface FcnOptions {
  /** 'fcn32s' (default, the chapter), 'fcn16s' or 'fcn8s'. */
  arch?: FcnArch;
  /** Output classes (default 21, VOC's 20 and background). */
  numClasses?: number;
  /** Initialisation of the transposed convolutions (default 'bilinear', as the chapter). */
  init?: UpsamplingInit;
  /** The body to use (its layers are shared, not copied); default a fresh ResNet-18. */
  backbone?: ResNet;
}

function upsamplingWeight(layer: Module, init: UpsamplingInit): void {
  const [inChannels, outChannels, kernel] = layer.weight.shape;
  if (init === 'xavier') xavierUniform_(layer.weight);
  else layer.weight.copy_(bilinearKernel(inChannels, outChannels, kernel));
}

/**
 * Builds an FCN. For 'fcn32s' it is the chapter's `net`: a Sequential of the ResNet's
 * children but avgpool and fc, then `final_conv` (1x1, 512 -> classes) and `transpose_conv`
 * (kernel 64, padding 16, stride 32), with the chapter's state-dict names. The skip
 * variants zero their extra score layers, as Long et al. do, so they start as FCN-32s would.
 */
export function createFcn(options?: FcnOptions & { arch?: 'fcn32s' }): Sequential;
export function createFcn(options: FcnOptions & { arch: 'fcn16s' | 'fcn8s' }): FCNSkip;
export function createFcn(options?: FcnOptions): Sequential | FCNSkip;
export function createFcn(options: FcnOptions = {}): Sequential | FCNSkip {
  const arch = checkOneOf(options.arch ?? 'fcn32s', 'arch', FCN_ARCHS);
  const init = checkOneOf(options.init ?? 'bilinear', 'init', UPSAMPLING_INITS);
  const numClasses = checkInteger(options.numClasses ?? 21, 'numClasses', 1);
  const backbone = options.backbone ?? resnet18();
  if (arch === 'fcn32s') {
    const net = new Sequential(...backbone.children().slice(0, -2));
    net.addModule('final_conv', new Conv2d(512, numClasses, { kernelSize: 1 }));
    net.addModule(
      'transpose_conv',
      new ConvTranspose2d(numClasses, numClasses, { kernelSize: 64, padding: 16, stride: 32 }),
    );
    upsamplingWeight(net.get('transpose_conv'), init);
    return net;
  }
  const stem = new Sequential();
  for (const name of ['conv1', 'bn1', 'relu', 'maxpool', 'layer1']) stem.addModule(name, backbone.get(name));
  const layer = (name: string) => backbone.get(name).native;
  const net = new FCNSkip(
    native.fcnSkip(
      stem.native,
      layer('layer2'),
      layer('layer3'),
      layer('layer4'),
      numClasses,
      arch === 'fcn16s' ? 16 : 8,
    ),
  );
  for (const [name, child] of net.namedChildren()) {
    if (name.startsWith('score_pool')) {
      zeros_(child.weight);
      zeros_(child.bias as NonNullable<Module['bias']>);
    } else if (name.startsWith('upscore')) {
      upsamplingWeight(child, init);
    }
  }
  return net;
}
