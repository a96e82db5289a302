/**
 * Where the viewer's model comes from. A model source is a small interface (a name, whether
 * its weights were trained, and a loader giving the network, its class names and optionally
 * its own preprocessing), so that other model families plug in without touching the server.
 * The sources that exist today: the chapter's FCN with fresh weights, a torchvision
 * segmentation model with its published weights (or a file of them), and a file (a checkpoint
 * of `fcn train` or `saveCheckpoint`, or a state dict of one of the chapter's FCNs or of a
 * segmentation model), reloaded when the file changes, so that a model being trained is always
 * seen at its latest epoch.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkOneOf, checkString } from '../checks';
import { defaultClasses } from '../data/classes';
import type { ReadDatasetOptions } from '../data/dataset';
import { FCN_ARCHS, type FcnArch } from '../fcn';
import { buildModel, classesOf, modelFromFile, modelWeights } from '../model-file';
import { classTensor } from '../model-kind';
import { getModel, SEGMENTATION_MODELS, SegmentationModel, type SegmentationModelName } from '../models/segmentation';
import type { Module } from '../nn/module';
import { predict } from '../predict';
import type { Device, Tensor } from '../tensor';
import { VOC_CLASSES } from '../voc';

/** A model ready to label images. */
export interface LoadedModel {
  /** The network: uint8 pixels go through `preprocess` (default ImageNet normalisation), logits come out. */
  net: Module;
  /** Class names, index = class id. */
  classes: readonly string[];
  /** Class colours, index = class id (default: VOC's palette, extended). */
  palette?: [number, number, number][];
  /** How the model's dataset is read (its layout, ignore value, split); absent for VOC2012. */
  dataset?: ReadDatasetOptions;
  /** The network's input [1, 3, H, W] for uint8 pixels [3, H, W] (default: `normalizeImage`). */
  preprocess?: (image: Tensor) => Tensor;
  /** Largest tile of whole-image prediction, multiples of 32 (default [320, 480]). */
  tileSize?: [number, number];
  /** What the page says about this model (architecture, epoch, file). */
  label: string;
}

/** Where a model comes from; {@link serve} asks it for the model before each prediction. */
export interface ModelSource {
  /** Short name shown on the page. */
  readonly name: string;
  /** False for fresh weights: the page then says that the labels are noise. */
  readonly trained: boolean;
  /** The model; may be cached, and reloaded when what it was read from changed. */
  load(): Promise<LoadedModel>;
}

/** Class ids int64 [H, W] of uint8 pixels [3, H, W]: the whole image labelled at its own size. */
export async function labelImage(model: LoadedModel, pixels: Tensor): Promise<Tensor> {
  // A segmentation model brings its weights' preprocessing and labels the whole image itself.
  if (model.net instanceof SegmentationModel) return predict(model.net, pixels);
  const input = model.preprocess ? model.preprocess(pixels) : pixels;
  const tile = model.tileSize ?? [320, 480];
  const labels = await predict(model.net, input, { mode: 'whole', cropSize: tile, tileSize: tile });
  return labels.ndim === 3 ? labels.squeeze(0) : labels;
}

/** The classes of an n-class model: VOC's names for 21, else "class_k". */
const classNames = (n: number) => defaultClasses(n).map((c) => c.name);

/** The chapter's FCN (ResNet-18 body) with fresh, untrained weights. */
export function chapterModel(arch: FcnArch = 'fcn32s', options: { device?: Device } = {}): ModelSource {
  const checked = checkOneOf(arch, 'arch', FCN_ARCHS);
  let model: Promise<LoadedModel> | undefined;
  return {
    name: `${checked}, untrained`,
    trained: false,
    load() {
      model ??= buildModel(
        { arch: checked, init: 'bilinear', numClasses: VOC_CLASSES.length, auxLoss: false },
        options.device ?? 'cpu',
      )
        .then((net) => ({
          net,
          classes: classNames(VOC_CLASSES.length),
          label: `${checked} (the chapter's FCN) with fresh weights: untrained, its labels are noise`,
        }))
        .catch((err: unknown) => {
          model = undefined;
          throw err;
        });
      return model;
    },
  };
}

/**
 * A torchvision segmentation model (`fcn_resnet50`, ..., `lraspp_mobilenet_v3_large`) with
 * `weights`: a published name (`DEFAULT`, `COCO_WITH_VOC_LABELS_V1`: downloaded once into the
 * cache and checked by SHA-256) or the path of a file of them (torchvision's `.pth`).
 */
export function segmentationModel(
  name: SegmentationModelName,
  options: { weights?: string; device?: Device } = {},
): ModelSource {
  const checked = checkOneOf(name, 'name', SEGMENTATION_MODELS);
  const weights = checkString(options.weights ?? 'DEFAULT', 'weights');
  let model: Promise<LoadedModel> | undefined;
  return {
    name: checked,
    trained: true,
    load() {
      model ??= getModel(checked, { weights: modelWeights(weights) })
        .then((net) => ({
          net: net.to(options.device ?? 'cpu'),
          classes: net.categories ?? classNames(net.stateDict().get(classTensor({ model: checked }))?.shape[0] ?? 0),
          label: `${checked} (${weights === 'DEFAULT' ? 'COCO_WITH_VOC_LABELS_V1' : path.basename(weights)})`,
        }))
        .catch((err: unknown) => {
          model = undefined;
          throw err;
        });
      return model;
    },
  };
}

/** The model of a file, read fresh. */
async function readModel(file: string, device: Device): Promise<LoadedModel> {
  const { net, spec, epoch } = await modelFromFile(file, device);
  const name = spec.model ?? spec.arch;
  const classes = classesOf(spec);
  return {
    net,
    classes: classes.map((c) => c.name),
    palette: classes.map((c) => c.color),
    ...(spec.dataset ? { dataset: spec.dataset } : {}),
    ...(spec.crop && !spec.model ? { tileSize: spec.crop } : {}),
    label:
      epoch === undefined
        ? `${name} (${path.basename(file)})`
        : `${name} after epoch ${epoch} (${path.basename(file)})`,
  };
}

/**
 * The model in a file: a checkpoint (`fcn train`'s, or one `saveCheckpoint` wrote: its config
 * rebuilds the model), the `model.safetensors` of `fcn train`, or a state dict of one of the
 * chapter's FCNs or of a torchvision segmentation model (`save(net.stateDict(), file)`, a
 * `.pth`; the model and its number of classes are told by the tensors' names and shapes).
 * Read on first use and again whenever the file's size or modification time changes.
 */
export function fileModel(file: string, options: { device?: Device } = {}): ModelSource {
  const resolved = path.resolve(checkString(file, 'file'));
  const device = options.device ?? 'cpu';
  let cached: { stamp: string; model: Promise<LoadedModel> } | undefined;
  return {
    name: path.basename(resolved),
    trained: true,
    async load() {
      const stat = await fs.promises.stat(resolved).catch(() => {
        throw new Error(`the model file '${resolved}' does not exist (yet)`);
      });
      const stamp = `${stat.mtimeMs}:${stat.size}`;
      if (cached?.stamp !== stamp) {
        const model = readModel(resolved, device);
        cached = { stamp, model };
        model.catch(() => {
          if (cached?.model === model) cached = undefined;
        });
      }
      return cached.model;
    },
  };
}
