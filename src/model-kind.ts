/**
 * Which model a state dict is, told by its tensors' names and shapes: one of the chapter's
 * FCNs (FCN-32s/16s/8s on ResNet-18) or one of torchvision's segmentation models, with its
 * number of classes and whether it has an auxiliary classifier. `saveCheckpoint` writes it
 * from the model it saves, and the CLI and the viewer read it from files that do not say.
 * Nothing here builds a model: the names are a guess that the loader checks by building.
 */
import { type ClassInfo, classColour } from './data/classes';
import type { FcnArch } from './fcn';
import { SEGMENTATION_MODELS, SegmentationModel, type SegmentationModelName } from './models/segmentation';
import type { Module } from './nn/module';
import type { Tensor } from './tensor';

/** Which model a state dict belongs to, and its number of classes. */
export interface ModelKind {
  /** A torchvision segmentation model; absent for the chapter's FCN. */
  model?: SegmentationModelName;
  /** The chapter's FCN: 'fcn32s', 'fcn16s' or 'fcn8s' (for a segmentation model, 'fcn32s', unused). */
  arch: FcnArch;
  /** The classes the model scores. */
  numClasses: number;
  /** Whether a segmentation model has its auxiliary classifier. */
  auxLoss: boolean;
}

/** The tensor whose first size is the model's number of classes. */
export function classTensor(spec: Partial<Pick<ModelKind, 'model' | 'arch'>>): string {
  if (spec.model) return spec.model.startsWith('lraspp') ? 'classifier.low_classifier.weight' : 'classifier.4.weight';
  return spec.arch === 'fcn32s' ? 'final_conv.weight' : 'score_fr.weight';
}

const shapeIs = (t: Tensor | undefined, shape: number[]) => t !== undefined && t.shape.join() === shape.join();

/** The chapter's FCN whose weights these are: its score layers tell the architecture, their outputs the classes. */
function chapterKind(tensors: Map<string, Tensor>): ModelKind | null {
  const arch: FcnArch | null = tensors.has('score_pool3.weight')
    ? 'fcn8s'
    : tensors.has('score_pool4.weight')
      ? 'fcn16s'
      : tensors.has('final_conv.weight')
        ? 'fcn32s'
        : null;
  if (!arch) return null;
  const scores = tensors.get(classTensor({ arch }));
  const n = scores?.shape[0] ?? 0;
  if (!shapeIs(scores, [n, 512, 1, 1]) || n < 1) return null;
  const upsampling = { fcn32s: ['transpose_conv', 64], fcn16s: ['upscore16', 32], fcn8s: ['upscore8', 16] } as const;
  const [layer, kernel] = upsampling[arch];
  return shapeIs(tensors.get(`${layer}.weight`), [n, n, kernel, kernel])
    ? { arch, numClasses: n, auxLoss: false }
    : null;
}

/** The torchvision segmentation model whose weights these are, by its backbone's and heads' tensor names. */
function segmentationKind(tensors: Map<string, Tensor>): ModelKind | null {
  const backbone = tensors.has('backbone.conv1.weight')
    ? tensors.has('backbone.layer3.22.conv1.weight') && !tensors.has('backbone.layer3.23.conv1.weight')
      ? 'resnet101'
      : tensors.has('backbone.layer3.5.conv1.weight') && !tensors.has('backbone.layer3.6.conv1.weight')
        ? 'resnet50'
        : null
    : tensors.has('backbone.0.0.weight')
      ? 'mobilenet_v3_large'
      : null;
  const head = tensors.has('classifier.low_classifier.weight')
    ? 'lraspp'
    : tensors.has('classifier.0.convs.0.0.weight')
      ? 'deeplabv3'
      : tensors.get('classifier.0.weight')?.ndim === 4
        ? 'fcn'
        : null;
  const model = `${head}_${backbone}` as SegmentationModelName;
  if (!backbone || !head || !SEGMENTATION_MODELS.includes(model)) return null;
  const scores = tensors.get(classTensor({ model }));
  if (scores?.ndim !== 4 || scores.shape[0] < 1) return null;
  return { model, arch: 'fcn32s', numClasses: scores.shape[0], auxLoss: tensors.has('aux_classifier.4.weight') };
}

/**
 * The model that tensors are the state dict of, told by names and shapes alone; null when they
 * are those of neither the chapter's FCN nor a torchvision segmentation model.
 */
export function kindOfWeights(tensors: Map<string, Tensor>): ModelKind | null {
  return chapterKind(tensors) ?? segmentationKind(tensors);
}

/** What a model's name is in words: 'fcn8s', 'deeplabv3_resnet50' ... */
export const kindName = (kind: Pick<ModelKind, 'model' | 'arch'>): string => kind.model ?? kind.arch;

/**
 * The settings that rebuild the model (those `fcn train` writes in its checkpoints' config: `model`
 * for a torchvision model, `arch` for the chapter's FCN, `numClasses`, `auxLoss`, and `classes`
 * as names and colours), or an empty object for a model of another kind. `classes` (names, or
 * names with colours) must have one entry per class; without it, a torchvision model with
 * published weights gives its categories. The kind is read from the state dict.
 */
export function modelConfig(
  model: Module,
  stateDict: Map<string, Tensor>,
  classes?: readonly (string | ClassInfo)[],
): Record<string, unknown> {
  const kind = kindOfWeights(stateDict);
  const given = classes ? classList(classes) : undefined;
  if (!kind) return given ? { classes: given } : {};
  if (given && given.length !== kind.numClasses) {
    throw new RangeError(
      `saveCheckpoint: classes has ${given.length} names, but the model has ${kind.numClasses} classes`,
    );
  }
  const categories = model instanceof SegmentationModel ? model.categories : null;
  const named = given ?? (categories?.length === kind.numClasses ? classList(categories) : undefined);
  return {
    ...(kind.model ? { model: kind.model } : { arch: kind.arch }),
    numClasses: kind.numClasses,
    auxLoss: kind.auxLoss,
    ...(named ? { classes: named } : {}),
  };
}

/**
 * Class names (or names with colours) as a checkpoint keeps them: with colours, VOC's palette
 * for names alone. `what` names the option in errors.
 */
export function classList(classes: readonly (string | ClassInfo)[], what = 'classes'): ClassInfo[] {
  if (!Array.isArray(classes)) throw new TypeError(`saveCheckpoint: ${what} must be an array of names`);
  return classes.map((c, id) => {
    const name = typeof c === 'string' ? c : c?.name;
    if (typeof name !== 'string' || name.length === 0) {
      throw new TypeError(`saveCheckpoint: ${what}[${id}] must be a name, or { name, color }`);
    }
    const color = typeof c === 'string' ? classColour(id) : c.color;
    const valid =
      Array.isArray(color) && color.length === 3 && color.every((v) => Number.isInteger(v) && v >= 0 && v <= 255);
    if (!valid) throw new TypeError(`saveCheckpoint: ${what}[${id}].color must be [r, g, b], each 0..255`);
    return { name, color: [color[0], color[1], color[2]] };
  });
}
