/**
 * A trained model back from its file: a checkpoint (`fcn train`'s, or one `saveCheckpoint`
 * wrote: its config says which model), the model.safetensors `fcn train` writes (its spec in
 * the metadata), or a plain state dict of one of the chapter's FCNs or of a torchvision
 * segmentation model (which model, and its number of classes, told by the tensors' names and shapes).
 * The spec is checked against the file's tensors before anything is built, so that metadata
 * cannot make it build a huge model, and the built model's weights against the file's before
 * they are loaded. The CLI and the viewer use it.
 */
import { checkpointOf, isCheckpoint } from './checkpoint';
import { type ClassInfo, defaultClasses } from './data/classes';
import { createFcn } from './fcn';
import { classTensor, kindName, kindOfWeights } from './model-kind';
import { type ModelSpec, ModelSpecSchema, parseOrThrow } from './model-spec';
import { type BackboneWeights, getModel, type SegmentationOptions } from './models/segmentation';
import type { Module } from './nn/module';
import { resnet18 } from './nn/resnet';
import { loadWithMetadata } from './serialization';
import type { Device, Tensor } from './tensor';

/** The metadata key under which model.safetensors keeps its {@link ModelSpec}. */
export const MODEL_METADATA_KEY = 'fcn-torch-model';

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

/** What a model file holds: the weights, the settings it states (null: none), and for a checkpoint the epoch. */
interface FileContents {
  weights: Map<string, Tensor>;
  stated: Record<string, unknown> | null;
  epoch?: number;
  /** What the file is. */
  what: 'checkpoint' | 'model file' | 'weights';
}

function contentsOf(file: string, tensors: Map<string, Tensor>, metadata: Record<string, string>): FileContents {
  if (isCheckpoint(metadata)) {
    const checkpoint = checkpointOf(file, tensors, metadata);
    return { weights: checkpoint.model, stated: checkpoint.config, epoch: checkpoint.epoch, what: 'checkpoint' };
  }
  const text = metadata[MODEL_METADATA_KEY];
  if (text === undefined) return { weights: tensors, stated: null, what: 'weights' };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`'${file}': its '${MODEL_METADATA_KEY}' metadata is not JSON`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`'${file}': its '${MODEL_METADATA_KEY}' metadata is not a JSON object`);
  }
  return { weights: tensors, stated: json as Record<string, unknown>, what: 'model file' };
}

const IDENTITY = ['model', 'arch', 'numClasses'] as const;

/**
 * The spec of a file's model: the settings it states, with what its weights tell (the kind,
 * the number of classes, the aux classifier) for the fields they leave out, where the two
 * agree on which model it is; an error in words when neither says.
 */
function specOf(file: string, { weights, stated, what }: FileContents): { spec: ModelSpec; inferred: boolean } {
  const found = kindOfWeights(weights);
  const says = stated !== null && IDENTITY.some((key) => stated[key] !== undefined);
  if (!says && !found) {
    const tensors = `${[...weights.keys()].slice(0, 3).join(', ') || 'none'}${weights.size > 3 ? ', ...' : ''}`;
    const known = "neither the chapter's FCN (createFcn) nor a torchvision segmentation model (models.segmentation)";
    throw new Error(
      what === 'checkpoint'
        ? `'${file}' is a checkpoint of a model that fcn eval, predict and serve cannot rebuild: its config does not ` +
            `say which (model or arch, and numClasses) and its tensors (${tensors}) are those of ${known}; ` +
            'save one of those, or load it with loadCheckpoint into your own model'
        : `'${file}' holds no fcn-torch model: give the checkpoint.safetensors or model.safetensors that fcn train ` +
            "writes, or a checkpoint (saveCheckpoint) or state dict (save(net.stateDict(), file)) of the chapter's " +
            `FCN or of a torchvision segmentation model; its tensors (${tensors}) are those of ${known}`,
    );
  }
  const agrees =
    found !== null &&
    (!says ||
      (stated?.model === undefined
        ? found.model === undefined && (stated?.arch === undefined || stated.arch === found.arch)
        : stated.model === found.model));
  const statedKind = stated?.model ?? stated?.arch;
  if (found && says && !agrees && typeof statedKind === 'string') {
    throw new Error(
      `'${file}': its config says ${statedKind}, but its weights are those of ${kindName(found)} ` +
        `with ${found.numClasses} classes`,
    );
  }
  const spec = parseOrThrow(
    ModelSpecSchema,
    { ...(agrees ? found : {}), ...stated },
    `'${file}' does not say which model it holds`,
  );
  return { spec, inferred: !says };
}

/** The first differences between the weights a model has and those given (names and shapes), in words; empty when they fit. */
function misfits(mine: Map<string, Tensor>, given: Map<string, Tensor>): string[] {
  const problems: string[] = [];
  for (const [key, t] of mine) {
    const theirs = given.get(key);
    if (!theirs) problems.push(`it has no '${key}'`);
    else if (theirs.shape.join() !== t.shape.join())
      problems.push(`its '${key}' is [${theirs.shape.join(', ')}], not [${t.shape.join(', ')}]`);
  }
  for (const key of given.keys()) if (!mine.has(key)) problems.push(`it has '${key}', which the model has not`);
  return problems;
}

/**
 * The model in a file, on device: a checkpoint (`fcn train`'s checkpoint.safetensors, or one
 * `saveCheckpoint` wrote), the model.safetensors `fcn train` writes, or a plain state dict of
 * the chapter's FCN or of a torchvision segmentation model (`save(net.stateDict(), file)`,
 * a torchvision `.pth`). Which model, and its number of classes, come from the file's
 * settings where it states them, else from its tensors' names and shapes.
 */
export async function modelFromFile(file: string, device: Device): Promise<ModelFile> {
  const { tensors, metadata } = await loadWithMetadata(file);
  const contents = contentsOf(file, tensors, metadata);
  const { weights, epoch } = contents;
  const { spec, inferred } = specOf(file, contents);
  const name = kindName(spec);
  if (spec.classes && spec.classes.length !== spec.numClasses) {
    throw new Error(`'${file}' names ${spec.classes.length} classes but says it has ${spec.numClasses}`);
  }
  const scores = classTensor(spec);
  const classes = weights.get(scores);
  if (classes?.shape[0] !== spec.numClasses) {
    throw new Error(
      `'${file}' says ${name} with ${spec.numClasses} classes, but its ${scores} is ` +
        `${classes ? `[${classes.shape.join(', ')}]` : 'missing'}`,
    );
  }
  const net = await buildModel(spec, 'cpu');
  const problems = misfits(net.stateDict(), weights);
  if (problems.length > 0) {
    net.dispose(); // not left to the garbage collector: the viewer reloads a file each time it changes
    const more = problems.length > 2 ? ` (and ${problems.length - 2} more)` : '';
    throw new Error(
      `'${file}' ${inferred ? 'looks like' : 'says'} ${name} with ${spec.numClasses} classes, but its weights are ` +
        `not ${name}'s: ${problems.slice(0, 2).join('; ')}${more}`,
    );
  }
  net.loadStateDict(weights);
  return { net: net.to(device), spec, epoch };
}
