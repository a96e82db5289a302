/**
 * A trained model back from its file: an `fcn train` checkpoint, or the model.safetensors it
 * writes (its spec in the metadata), or plain weights of one of the chapter's FCNs (the spec
 * told by the tensor names). The spec is checked against the file's tensors before anything
 * is built, so that metadata cannot make it build a huge model. The CLI and the viewer use it.
 */
import { z } from 'zod';
import { checkpointOf, isCheckpoint } from './checkpoint';
import { type ClassInfo, defaultClasses, MAX_CLASSES } from './data/classes';
import { DATA_FORMATS } from './data/dataset';
import { createFcn, FCN_ARCHS, UPSAMPLING_INITS } from './fcn';
import { type BackboneWeights, getModel, SEGMENTATION_MODELS, type SegmentationOptions } from './models/segmentation';
import type { Module } from './nn/module';
import { resnet18 } from './nn/resnet';
import { loadWithMetadata } from './serialization';
import type { Device, Tensor } from './tensor';

const size32 = z.int().min(32).multipleOf(32);

/** What rebuilds a trained model: which model, its classes, and the crop it was trained on. */
export const ModelSpecSchema = z.object({
  /** A torchvision segmentation model; absent for the chapter's FCN. */
  model: z.enum(SEGMENTATION_MODELS).optional(),
  /** The chapter's FCN. */
  arch: z.enum(FCN_ARCHS).default('fcn32s'),
  init: z.enum(UPSAMPLING_INITS).default('bilinear'),
  numClasses: z.int().min(1).max(1024),
  /** A segmentation model's auxiliary classifier. */
  auxLoss: z.boolean().default(false),
  crop: z.tuple([size32, size32]).optional(),
  /** The dataset's class names and colours (index = class id); absent: VOC's for 21 classes, else made up. */
  classes: z
    .array(
      z.object({
        name: z.string(),
        color: z.tuple([z.int().min(0).max(255), z.int().min(0).max(255), z.int().min(0).max(255)]),
      }),
    )
    .optional(),
  /** How the dataset was read: its layout, ignore value and split (absent: VOC2012's). */
  dataset: z
    .object({
      format: z.enum(DATA_FORMATS),
      ignoreIndex: z.int().min(0).max(MAX_CLASSES),
      valFraction: z.number().min(0).max(0.9),
      seed: z.int().min(0),
    })
    .optional(),
});

/** What rebuilds a trained model. */
export type ModelSpec = z.infer<typeof ModelSpecSchema>;

/** The metadata key under which model.safetensors keeps its {@link ModelSpec}. */
export const MODEL_METADATA_KEY = 'fcn-torch-model';

/** value as T, or an error saying what and naming every field that is wrong. */
export function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const field = issue.path.join('.') || 'the config';
      const given = issue.path.reduce<unknown>((v, key) => (v as Record<PropertyKey, unknown>)?.[key], value);
      if (issue.code === 'invalid_type' && given === undefined) return `it has no ${field}`;
      if (issue.code === 'invalid_type') return `its ${field} is ${JSON.stringify(given)}, not a ${issue.expected}`;
      return `its ${field}: ${issue.message.replace(/^Invalid input: /, '')}`;
    });
    throw new Error(`${what} (${problems.join('; ')})`);
  }
  return result.data;
}

/** `--weights` of a segmentation model: a published name, or the path of a local file. */
export function modelWeights(value: string): NonNullable<SegmentationOptions['weights']> {
  return value === 'COCO_WITH_VOC_LABELS_V1' || value === 'DEFAULT' ? value : { path: value };
}

/** A segmentation model's backbone weights: a published ImageNet name, or the path of a local file. */
export function backboneWeights(value: string): BackboneWeights {
  return value === 'IMAGENET1K_V1' || value === 'IMAGENET1K_V2' || value === 'DEFAULT' ? value : { path: value };
}

/**
 * The model a spec describes, on device. The chapter's FCN takes `weights` as its ResNet-18
 * backbone's; a segmentation model takes `weights` as the whole model's and
 * `weightsBackbone` as its backbone's.
 */
export async function buildModel(
  spec: Pick<ModelSpec, 'model' | 'arch' | 'init' | 'numClasses' | 'auxLoss'>,
  device: Device,
  weights?: string,
  weightsBackbone?: string,
  log: ((line: string) => void) | null = null,
): Promise<Module> {
  if (spec.model) {
    const aux = spec.model.startsWith('lraspp') ? {} : { auxLoss: spec.auxLoss };
    const model = await getModel(spec.model, {
      numClasses: spec.numClasses,
      ...aux,
      ...(weightsBackbone ? { weightsBackbone: backboneWeights(weightsBackbone) } : {}),
    });
    if (weights) finetuneFrom(model, await getModel(spec.model, { weights: modelWeights(weights) }), weights, log);
    return model.to(device);
  }
  if (weightsBackbone)
    throw new RangeError("weightsBackbone goes with a segmentation model; the chapter's FCN takes weights");
  const backbone = weights
    ? await resnet18(weights === 'IMAGENET1K_V1' ? { weights } : { weights: { path: weights } })
    : undefined;
  return createFcn({ arch: spec.arch, init: spec.init, numClasses: spec.numClasses, backbone }).to(device);
}

/** The layers of a segmentation model's heads that a fine-tuning may start afresh (their outputs are the classes). */
const HEAD_PREFIXES = ['classifier.', 'aux_classifier.'];

/**
 * Loads a trained segmentation model's weights into model, as torchvision's fine-tuning
 * recipe does: everything but the layers whose shapes follow the number of classes (the
 * classifier's last layer and the aux classifier's), which keep their fresh initialisation;
 * an aux classifier the trained model lacks starts fresh too. Any other difference is an
 * error: the weights are of another model.
 */
function finetuneFrom(model: Module, trained: Module, name: string, log: ((line: string) => void) | null): void {
  const theirs = trained.stateDict();
  const fresh: string[] = [];
  const kept = new Map<string, Tensor>();
  for (const [key, mine] of model.stateDict()) {
    const given = theirs.get(key);
    const same = given !== undefined && given.shape.join() === mine.shape.join();
    if (same) kept.set(key, given);
    else if (HEAD_PREFIXES.some((p) => key.startsWith(p))) fresh.push(key);
    else throw new Error(`the weights ${name} do not fit: their '${key}' is ${given ? `[${given.shape}]` : 'missing'}`);
  }
  model.loadStateDict(kept, { strict: false });
  if (fresh.length > 0) {
    const layers = [...new Set(fresh.map((k) => k.slice(0, k.lastIndexOf('.'))))];
    log?.(`fine-tuning from ${name}: ${layers.join(', ')} start afresh for this dataset's classes`);
  }
}

/** The tensor whose first size is the model's number of classes. */
export function classTensor(spec: Partial<Pick<ModelSpec, 'model' | 'arch'>>): string {
  if (spec.model) return spec.model.startsWith('lraspp') ? 'classifier.low_classifier.weight' : 'classifier.4.weight';
  return spec.arch === 'fcn32s' ? 'final_conv.weight' : 'score_fr.weight';
}

/** The chapter's FCN whose weights these are, told by their names and shapes; null when they are none. */
function specOfTensors(tensors: Map<string, Tensor>): ModelSpec | null {
  const arch = tensors.has('score_pool3.weight')
    ? 'fcn8s'
    : tensors.has('score_pool4.weight')
      ? 'fcn16s'
      : tensors.has('final_conv.weight')
        ? 'fcn32s'
        : null;
  const scores = arch ? tensors.get(classTensor({ arch })) : undefined;
  return arch && scores ? { arch, init: 'bilinear', numClasses: scores.shape[0], auxLoss: false } : null;
}

/** The classes of a spec: its dataset's, or made up for its number of classes (VOC's for 21). */
export function classesOf(spec: Pick<ModelSpec, 'classes' | 'numClasses'>): ClassInfo[] {
  return spec.classes ?? defaultClasses(spec.numClasses);
}

/** A model read back from a file, with its spec and, for a checkpoint, the epoch. */
export interface ModelFile {
  net: Module;
  spec: ModelSpec;
  /** Epochs completed, for a checkpoint. */
  epoch?: number;
}

/**
 * The model in a file `fcn train` wrote (checkpoint.safetensors, or model.safetensors), or in
 * plain weights of one of the chapter's FCNs (a `.safetensors` or `.pth` state dict), on device.
 */
export async function modelFromFile(file: string, device: Device): Promise<ModelFile> {
  const { tensors, metadata } = await loadWithMetadata(file);
  let spec: ModelSpec | null;
  let weights = tensors;
  let epoch: number | undefined;
  if (isCheckpoint(metadata)) {
    const checkpoint = checkpointOf(file, tensors, metadata);
    if (Object.keys(checkpoint.config ?? {}).length === 0) {
      throw new Error(
        `'${file}' is a checkpoint without the settings that say which model it holds (train()'s config option, ` +
          'which fcn train fills): give the model.safetensors fcn train writes, or load it with loadCheckpoint into your model',
      );
    }
    spec = parseOrThrow(ModelSpecSchema, checkpoint.config, `'${file}' does not say which model it holds`);
    weights = checkpoint.model;
    epoch = checkpoint.epoch;
  } else if (metadata[MODEL_METADATA_KEY] !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(metadata[MODEL_METADATA_KEY]);
    } catch {
      throw new Error(`'${file}': its '${MODEL_METADATA_KEY}' metadata is not JSON`);
    }
    spec = parseOrThrow(ModelSpecSchema, json, `'${file}' does not say which model it holds`);
  } else {
    spec = specOfTensors(tensors);
    if (!spec) {
      throw new Error(
        `'${file}' holds no fcn-torch model: give the checkpoint.safetensors or model.safetensors that fcn train ` +
          "writes, or the weights of one of the chapter's FCNs",
      );
    }
  }
  if (spec.classes && spec.classes.length !== spec.numClasses) {
    throw new Error(`'${file}' names ${spec.classes.length} classes but says it has ${spec.numClasses}`);
  }
  const name = classTensor(spec);
  const classes = weights.get(name);
  if (classes?.shape[0] !== spec.numClasses) {
    throw new Error(
      `'${file}' says ${spec.model ?? spec.arch} with ${spec.numClasses} classes, but its ${name} is ` +
        `${classes ? `[${classes.shape.join(', ')}]` : 'missing'}`,
    );
  }
  const net = await buildModel(spec, 'cpu');
  net.loadStateDict(weights);
  return { net: net.to(device), spec, epoch };
}
