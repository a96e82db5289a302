/**
 * torchvision's semantic-segmentation models (`torchvision.models.segmentation`) with their
 * published weights: FCN and DeepLabV3 on dilated ResNet-50/101 backbones, DeepLabV3 and
 * LR-ASPP on MobileNetV3-Large. Built natively with torchvision's module trees and
 * state-dict names (`backbone.*`, `classifier.*`, `aux_classifier.*`), so torchvision's files
 * load as they are. The builders keep torchvision's names (in camelCase) and options.
 *
 * ```ts
 * const model = await models.segmentation.deeplabv3Resnet50({ weights: 'DEFAULT' });
 * const labels = await predict(model, await readImage('photo.jpg'));
 * ```
 */
import { checkBoolean, checkInteger, checkOneOf, checkTensor, describe } from '../checks';
import { chooseWeights, type FetchOptions, type PublishedWeights, published } from '../hub';
import { type NamedNativeTensors, native } from '../native';
import { MOBILENET_V3_LARGE_WEIGHTS } from '../nn/mobilenet';
import { Module, registerModuleClass, type StateDict } from '../nn/module';
import { RESNET_WEIGHTS } from '../nn/resnet';
import { load } from '../serialization';
import { Tensor } from '../tensor';
import { VOC_CLASSES } from '../voc/colours';

export * from './heads';

/** How torchvision spells the VOC classes whose names the chapter writes with a space or a slash. */
const TORCHVISION_SPELLING: Readonly<Record<string, string>> = {
  background: '__background__',
  'potted plant': 'pottedplant',
  'tv/monitor': 'tvmonitor',
};

/**
 * torchvision's VOC class names (`_VOC_CATEGORIES`), the categories of every published
 * segmentation weight: {@link voc.VOC_CLASSES} in torchvision's spelling.
 */
export const VOC_CATEGORIES: readonly string[] = VOC_CLASSES.map((name) => TORCHVISION_SPELLING[name] ?? name);

/**
 * The preprocessing of the published weights (torchvision's `weights.transforms()`,
 * `SemanticSegmentation(resize_size=520)`): the shorter side resized to `resizeSize`
 * (bilinear, antialiased), the pixels scaled to [0, 1] and normalised with `mean` and `std`.
 */
export interface SemanticSegmentationTransforms {
  readonly resizeSize: number;
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
}

/** torchvision's `SemanticSegmentation(resize_size=520)`: every segmentation model's preprocessing. */
export const SEMANTIC_SEGMENTATION_TRANSFORMS: SemanticSegmentationTransforms = Object.freeze({
  resizeSize: 520,
  mean: [0.485, 0.456, 0.406] as const,
  std: [0.229, 0.224, 0.225] as const,
});

/** What a segmentation model gives: torchvision's dict `{'out': ..., 'aux': ...}`. */
export interface SegmentationOutputs {
  /** Logits [N, classes, H, W] at the input's size. */
  out: Tensor;
  /** The auxiliary classifier's logits (models built with `auxLoss`), same shape. */
  aux?: Tensor;
}

function toOutputs(pairs: NamedNativeTensors): SegmentationOutputs {
  const outputs: SegmentationOutputs = { out: new Tensor(pairs[0][1]) };
  for (const [name, t] of pairs.slice(1)) if (name === 'aux') outputs.aux = new Tensor(t);
  return outputs;
}

/** Where a model's weights came from, and what its classes are called. */
export interface SegmentationInfo {
  /** torchvision's builder name ('fcn_resnet50', ...). */
  readonly builder: SegmentationModelName;
  /** The published weights' name ('COCO_WITH_VOC_LABELS_V1'), a file, or null (random). */
  readonly weights: string | null;
  /** Class names (the weights' categories), or null when unknown. */
  readonly categories: readonly string[] | null;
}

/**
 * A torchvision segmentation model. `forward` (and `forwardAsync`) give the `out` logits,
 * so the model goes wherever a Module goes (the Trainer, `predict`, checkpoints);
 * {@link SegmentationModel.forwardOutputs} gives torchvision's dict, with `aux` too.
 * Children: backbone, classifier and, when built with `auxLoss`, aux_classifier.
 */
export class SegmentationModel extends Module {
  /** @internal Set by the builders. */
  info?: SegmentationInfo;

  /** torchvision's `model(x)`: `{ out, aux? }`, logits at the input's size, on the calling thread. */
  forwardOutputs(input: Tensor): SegmentationOutputs {
    return toOutputs(this.native.forwardOutputs(checkTensor(input)));
  }

  /** {@link SegmentationModel.forwardOutputs} on the native worker thread; the event loop stays free. */
  async forwardOutputsAsync(input: Tensor): Promise<SegmentationOutputs> {
    return toOutputs(await this.native.forwardOutputsAsync(checkTensor(input)));
  }

  /** The preprocessing of the published weights; `predict` applies it. */
  get transforms(): SemanticSegmentationTransforms {
    return SEMANTIC_SEGMENTATION_TRANSFORMS;
  }

  /** The class names of the weights loaded (VOC's for the published ones), or null when unknown. */
  get categories(): readonly string[] | null {
    return this.info?.categories ?? null;
  }
}

/** torchvision's FCN: `fcnResnet50`, `fcnResnet101`. */
export class FCN extends SegmentationModel {
  static {
    registerModuleClass('FCN', FCN);
  }
}

/** torchvision's DeepLabV3: `deeplabv3Resnet50`, `deeplabv3Resnet101`, `deeplabv3MobilenetV3Large`. */
export class DeepLabV3 extends SegmentationModel {
  static {
    registerModuleClass('DeepLabV3', DeepLabV3);
  }
}

/** torchvision's LRASPP: `lrasppMobilenetV3Large` (no auxiliary classifier). */
export class LRASPP extends SegmentationModel {
  static {
    registerModuleClass('LRASPP', LRASPP);
  }
}

const coco = (url: string, numParams: number, miou: number, pixelAcc: number) => ({
  COCO_WITH_VOC_LABELS_V1: published(`https://download.pytorch.org/models/${url}`, {
    numClasses: VOC_CATEGORIES.length,
    categories: VOC_CATEGORIES,
    numParams,
    metrics: { 'COCO-val2017-VOC-labels miou': miou, 'COCO-val2017-VOC-labels pixel_acc': pixelAcc },
  }),
});

/** The published weights of each builder (torchvision's `FCN_ResNet50_Weights`, ...); `'DEFAULT'` is COCO_WITH_VOC_LABELS_V1. */
export const SEGMENTATION_WEIGHTS = {
  fcn_resnet50: coco('fcn_resnet50_coco-1167a1af.pth', 35322218, 60.5, 91.4),
  fcn_resnet101: coco('fcn_resnet101_coco-7ecb50ca.pth', 54314346, 63.7, 91.9),
  deeplabv3_resnet50: coco('deeplabv3_resnet50_coco-cd0a2569.pth', 42004074, 66.4, 92.4),
  deeplabv3_resnet101: coco('deeplabv3_resnet101_coco-586e9e4e.pth', 60996202, 67.4, 92.4),
  deeplabv3_mobilenet_v3_large: coco('deeplabv3_mobilenet_v3_large-fc3c493d.pth', 11029328, 60.3, 91.2),
  lraspp_mobilenet_v3_large: coco('lraspp_mobilenet_v3_large-d234d4ea.pth', 3221538, 57.9, 91.2),
} as const satisfies Record<string, Record<string, PublishedWeights>>;

/** torchvision's builder names, as `fcn train --model` and `fcn predict --model` take them. */
export type SegmentationModelName = keyof typeof SEGMENTATION_WEIGHTS;
/** Every builder name, in torchvision's order. */
export const SEGMENTATION_MODELS = Object.keys(SEGMENTATION_WEIGHTS) as SegmentationModelName[];

type Backbone = 'resnet50' | 'resnet101' | 'mobilenet_v3_large';
type Head = 'fcn' | 'deeplabv3' | 'lraspp';
const SPECS: Record<SegmentationModelName, [Head, Backbone]> = {
  fcn_resnet50: ['fcn', 'resnet50'],
  fcn_resnet101: ['fcn', 'resnet101'],
  deeplabv3_resnet50: ['deeplabv3', 'resnet50'],
  deeplabv3_resnet101: ['deeplabv3', 'resnet101'],
  deeplabv3_mobilenet_v3_large: ['deeplabv3', 'mobilenet_v3_large'],
  lraspp_mobilenet_v3_large: ['lraspp', 'mobilenet_v3_large'],
};

/** The ImageNet weights a backbone takes (`weightsBackbone`), by torchvision's names. */
export type BackboneWeights = 'IMAGENET1K_V1' | 'IMAGENET1K_V2' | 'DEFAULT' | { path: string };

/** Options of the segmentation builders: torchvision's keyword arguments, in camelCase. */
export interface SegmentationOptions extends FetchOptions {
  /**
   * `'COCO_WITH_VOC_LABELS_V1'` (or `'DEFAULT'`): torchvision's published weights, downloaded
   * once into the torch.hub cache and checked by their SHA-256; or `{ path }`: a local
   * `.pth` / `.safetensors` file of the whole model. Default none (random weights).
   */
  weights?: 'COCO_WITH_VOC_LABELS_V1' | 'DEFAULT' | { path: string } | null;
  /** Output classes (default 21; with weights it must be theirs, 21 for the published ones). */
  numClasses?: number;
  /**
   * Add the auxiliary FCNHead (on ResNet's layer3, MobileNetV3's features.4). Default false;
   * with the published weights true (they include it). LR-ASPP has none.
   */
  auxLoss?: boolean;
  /**
   * ImageNet weights for the backbone alone (`'IMAGENET1K_V1'`, as torchvision's builders use,
   * `'IMAGENET1K_V2'`, `'DEFAULT'` (the backbone's default, V2), or `{ path }` of a
   * torchvision classification file), for training the heads from scratch. Ignored with
   * `weights`. Default none: unlike torchvision, nothing is downloaded unless asked.
   */
  weightsBackbone?: BackboneWeights | null;
}

/** The options after torchvision's rules, and the weights to load into the model. */
interface Plan {
  numClasses: number;
  aux: boolean;
  weights: { name: string; tensors: StateDict; categories: readonly string[] | null } | null;
  backbone: StateDict | null;
}

const KNOWN_OPTIONS = ['weights', 'numClasses', 'auxLoss', 'weightsBackbone', 'url', 'cacheDir', 'progress'];

/** torchvision's `_ovewrite_value_param`: a given value must be the weights' own. */
function agree<T>(builder: string, option: string, given: T | undefined, theirs: T, weights: string): T {
  if (given !== undefined && given !== theirs) {
    throw new RangeError(
      `${builder}: ${option} ${given} disagrees with the weights ${weights}, which have ${option} ${theirs}`,
    );
  }
  return theirs;
}

const hasPrefix = (tensors: StateDict, prefix: string) => [...tensors.keys()].some((k) => k.startsWith(prefix));

/** The classes and aux classifier a whole-model state dict holds; a backbone file is an error. */
function describeWeights(builder: SegmentationModelName, tensors: StateDict, where: string) {
  if (!hasPrefix(tensors, 'backbone.') || !hasPrefix(tensors, 'classifier.')) {
    throw new Error(
      `${builder}: ${where} holds no whole segmentation model (no backbone.* and classifier.* keys; ` +
        'it has ' +
        `${[...tensors.keys()].slice(0, 3).join(', ')}, ...); a backbone's ImageNet weights go in weightsBackbone`,
    );
  }
  const key = SPECS[builder][0] === 'lraspp' ? 'classifier.low_classifier.bias' : 'classifier.4.bias';
  const bias = tensors.get(key);
  if (!bias) throw new Error(`${builder}: ${where} has no '${key}'; is it the weights of another model?`);
  return { numClasses: bias.shape[0], aux: hasPrefix(tensors, 'aux_classifier.') };
}

async function plan(builder: SegmentationModelName, options: SegmentationOptions): Promise<Plan> {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${builder}: options must be an object, got ${describe(options)}`);
  }
  const unknown = Object.keys(options).filter((k) => !KNOWN_OPTIONS.includes(k));
  if (unknown.length > 0) {
    throw new RangeError(`${builder}: unknown option ${unknown.join(', ')}; options: ${KNOWN_OPTIONS.join(', ')}`);
  }
  const [head, backbone] = SPECS[builder];
  let numClasses =
    options.numClasses === undefined ? undefined : checkInteger(options.numClasses, `${builder}: numClasses`, 1);
  let aux = options.auxLoss === undefined ? undefined : checkBoolean(options.auxLoss, `${builder}: auxLoss`);
  if (head === 'lraspp' && aux) throw new RangeError(`${builder}: auxLoss: LR-ASPP does not use an auxiliary loss`);
  let weights: Plan['weights'] = null;
  let backboneWeights: StateDict | null = null;
  if (options.weights !== undefined && options.weights !== null) {
    const table = SEGMENTATION_WEIGHTS[builder];
    const chosen = chooseWeights(`${builder}: weights`, options.weights, table, 'COCO_WITH_VOC_LABELS_V1', options);
    const name = chosen.name ?? (options.weights as { path: string }).path;
    if (chosen.entry) {
      numClasses = agree(builder, 'numClasses', numClasses, chosen.entry.numClasses, name);
      if (head !== 'lraspp') aux = agree(builder, 'auxLoss', aux, true, name);
    }
    const tensors = await load(await chosen.file());
    const found = describeWeights(builder, tensors, chosen.entry ? `the ${name} file` : `'${name}'`);
    numClasses = agree(builder, 'numClasses', numClasses, found.numClasses, name);
    aux = agree(builder, 'auxLoss', aux, found.aux, name);
    weights = { name, tensors, categories: chosen.entry?.categories ?? null };
  } else if (options.weightsBackbone !== undefined && options.weightsBackbone !== null) {
    backboneWeights = await loadBackbone(builder, backbone, options.weightsBackbone, options);
  }
  return { numClasses: numClasses ?? 21, aux: aux ?? false, weights, backbone: backboneWeights };
}

/** A classification file's state dict as the segmentation backbone names it. */
async function loadBackbone(
  builder: SegmentationModelName,
  backbone: Backbone,
  choice: BackboneWeights,
  options: FetchOptions,
): Promise<StateDict> {
  const table: Record<string, PublishedWeights> =
    backbone === 'mobilenet_v3_large' ? MOBILENET_V3_LARGE_WEIGHTS : RESNET_WEIGHTS[backbone];
  const chosen = chooseWeights(`${builder}: weightsBackbone`, choice, table, 'IMAGENET1K_V2', options);
  const tensors = await load(await chosen.file());
  const where = chosen.name ?? `'${(choice as { path: string }).path}'`;
  if (hasPrefix(tensors, 'backbone.')) {
    throw new Error(
      `${builder}: weightsBackbone ${where} holds a whole segmentation model (backbone.* keys); pass it as weights`,
    );
  }
  // torchvision builds the classifier network and keeps its features: the backbone drops the
  // ResNet's fc (and avgpool, which has no weights), the MobileNet's classifier.
  const out: StateDict = new Map();
  for (const [name, t] of tensors) {
    if (backbone === 'mobilenet_v3_large') {
      if (name.startsWith('features.')) out.set(name.slice('features.'.length), t);
      else if (!name.startsWith('classifier.')) out.set(name, t);
    } else if (!name.startsWith('fc.')) {
      out.set(name, t);
    }
  }
  return out;
}

const CLASSES = { fcn: FCN, deeplabv3: DeepLabV3, lraspp: LRASPP } as const;

async function build<M extends SegmentationModel>(
  builder: SegmentationModelName,
  options: SegmentationOptions = {},
): Promise<M> {
  const p = await plan(builder, options);
  const [head, backbone] = SPECS[builder];
  const model = new CLASSES[head](native.segmentationModel(head, backbone, p.numClasses, p.aux)) as M;
  if (p.weights) model.loadStateDict(p.weights.tensors);
  if (p.backbone) {
    try {
      model.get('backbone').loadStateDict(p.backbone);
    } catch (err) {
      throw new Error(`${builder}: weightsBackbone does not fit the ${backbone} backbone: ${(err as Error).message}`);
    }
  }
  const categories = p.weights?.categories ?? null;
  model.info = { builder, weights: p.weights?.name ?? null, categories };
  return model;
}

/**
 * FCN with a dilated ResNet-50 backbone (torchvision's `fcn_resnet50`): FCNHead on layer4,
 * an auxiliary FCNHead on layer3 with `auxLoss`. Resolves once the weights asked for are loaded.
 */
export function fcnResnet50(options?: SegmentationOptions): Promise<FCN> {
  return build('fcn_resnet50', options);
}

/** FCN with a dilated ResNet-101 backbone (torchvision's `fcn_resnet101`). */
export function fcnResnet101(options?: SegmentationOptions): Promise<FCN> {
  return build('fcn_resnet101', options);
}

/** DeepLabV3 with a dilated ResNet-50 backbone (torchvision's `deeplabv3_resnet50`): ASPP rates 12, 24, 36. */
export function deeplabv3Resnet50(options?: SegmentationOptions): Promise<DeepLabV3> {
  return build('deeplabv3_resnet50', options);
}

/** DeepLabV3 with a dilated ResNet-101 backbone (torchvision's `deeplabv3_resnet101`). */
export function deeplabv3Resnet101(options?: SegmentationOptions): Promise<DeepLabV3> {
  return build('deeplabv3_resnet101', options);
}

/** DeepLabV3 on MobileNetV3-Large, dilated (torchvision's `deeplabv3_mobilenet_v3_large`). */
export function deeplabv3MobilenetV3Large(options?: SegmentationOptions): Promise<DeepLabV3> {
  return build('deeplabv3_mobilenet_v3_large', options);
}

/** Lite R-ASPP on MobileNetV3-Large (torchvision's `lraspp_mobilenet_v3_large`); `auxLoss: true` is an error. */
export function lrasppMobilenetV3Large(options?: Omit<SegmentationOptions, 'auxLoss'>): Promise<LRASPP> {
  return build('lraspp_mobilenet_v3_large', options);
}

/**
 * A segmentation model by torchvision's builder name (torchvision's `get_model`), as the CLI's
 * `--model` takes it; an unknown name is an error listing the valid ones.
 */
export async function getModel(name: string, options?: SegmentationOptions): Promise<SegmentationModel> {
  return build(checkOneOf(name, 'model', SEGMENTATION_MODELS), options);
}
