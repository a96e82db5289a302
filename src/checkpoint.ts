/**
 * Training checkpoints: model weights, optimizer state, epoch, history and configuration
 * in one safetensors file (`model.*` and `optimizer.*` tensors, the rest as JSON in its
 * metadata), written to a temporary name and renamed, so a crash mid-save leaves the
 * previous checkpoint intact. Python's `safetensors` reads them too. The configuration holds
 * what rebuilds the model (its kind and classes), so that `fcn eval`, `fcn predict` and
 * `fcn serve` take a checkpoint written from the API as they take `fcn train`'s.
 */

import { z } from 'zod';
import { describe } from './checks';
import type { ClassInfo } from './data/classes';
import type { EpochMetrics } from './metrics';
import { classList, modelConfig } from './model-kind';
import { ModelSpecSchema, parseOrThrow } from './model-spec';
import type { Module } from './nn/module';
import type { Optimizer, SchedulerState } from './optim';
import { loadWithMetadata, save } from './serialization';
import type { Tensor } from './tensor';

const METADATA_KEY = 'fcn-torch';

/** What a checkpoint holds besides tensors. */
export interface CheckpointInfo {
  /** Epochs completed. */
  epoch: number;
  /** Metrics of those epochs. */
  history: EpochMetrics[];
  /**
   * The run's settings: what rebuilds the model (`model` or `arch`, `numClasses`, `auxLoss`,
   * `classes`, as `fcn train` writes them) and the caller's description of the run (crop,
   * learning rate, ...).
   */
  config: Record<string, unknown>;
  /** The learning-rate scheduler's state, when the run has one. */
  scheduler?: SchedulerState;
}

/** A checkpoint read back by {@link loadCheckpoint}. */
export interface Checkpoint extends CheckpointInfo {
  /** The model's state dict. */
  model: Map<string, Tensor>;
  /** The optimizer's state (see `Optimizer.stateDict`). */
  optimizer: Map<string, Tensor>;
}

/** What {@link saveCheckpoint} writes: the model, and optionally its optimizer, classes and settings. */
export interface CheckpointParts extends Omit<CheckpointInfo, 'config'> {
  /** The model; its state dict is saved, and its kind and number of classes go into the config. */
  model: Module;
  /** The optimizer, whose state (momentum buffers, ...) a resumed run continues from. */
  optimizer?: Optimizer;
  /**
   * The class names, index = class id, or names with colours (`{ name, color: [r, g, b] }`),
   * one per class of the model: `fcn eval`, `fcn predict` and `fcn serve` show them. Default:
   * a torchvision model's categories where its published weights have them; else the CLI
   * makes them up (VOC's for 21 classes, `class_k` otherwise).
   */
  classes?: readonly (string | ClassInfo)[];
  /**
   * The run's settings (crop, learning rate, ...: anything JSON), stored as they are. The
   * model's kind and classes are added for the fields this does not set: `arch` ('fcn32s',
   * 'fcn16s', 'fcn8s') for the chapter's FCN or `model` (torchvision's builder name) for a
   * segmentation model, `numClasses`, `auxLoss`, and `classes` (from `classes`). Fields set
   * here win, so a config that says otherwise than the weights is refused when loaded by the
   * CLI.
   */
  config?: Record<string, unknown>;
}

/**
 * Writes model and optimizer state with info to file (a `.safetensors` path), atomically.
 * The config also says which model it is (see `CheckpointParts.config`), so that the
 * CLI rebuilds it: a checkpoint of `createFcn`'s FCN or of a `models.segmentation` model
 * loads in `fcn eval --checkpoint`, `fcn predict --checkpoint` and `fcn serve --checkpoint`.
 */
export async function saveCheckpoint(file: string, parts: CheckpointParts): Promise<void> {
  const config = parts.config ?? {};
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new TypeError(`saveCheckpoint: config must be an object of settings, got ${describe(config)}`);
  }
  const state = parts.model.stateDict();
  const tensors = new Map<string, Tensor>();
  for (const [name, t] of state) tensors.set(`model.${name}`, t);
  for (const [name, t] of parts.optimizer?.stateDict() ?? []) tensors.set(`optimizer.${name}`, t);
  const merged = { ...modelConfig(parts.model, state, parts.classes), ...config };
  if (Array.isArray(merged.classes)) merged.classes = classList(merged.classes, 'config.classes');
  // A model the CLI can rebuild: the fields it reads must read back, refused here, not at load.
  if (['model', 'arch', 'numClasses'].some((key) => merged[key] !== undefined)) {
    parseOrThrow(
      ModelSpecSchema,
      merged,
      'saveCheckpoint: the config would not load in fcn eval, predict or serve, which read its model, arch, ' +
        'init, numClasses, auxLoss, crop, classes and dataset fields (keep other settings under other names)',
    );
  }
  const info: CheckpointInfo = {
    epoch: parts.epoch,
    history: parts.history,
    config: merged,
    ...(parts.scheduler ? { scheduler: parts.scheduler } : {}),
  };
  await save(tensors, file, { format: 'pt', [METADATA_KEY]: JSON.stringify(info) });
}

const finite = z.number().refine(Number.isFinite, 'expected a finite number');
const EpochMetricsSchema = z.object({
  epoch: z.int().min(1),
  trainLoss: finite,
  trainAccuracy: finite,
  testLoss: finite,
  testAccuracy: finite,
  testMeanIoU: finite,
  testClassIoU: z.array(finite.nullable()),
  examplesPerSecond: finite,
  seconds: finite,
});
const CheckpointInfoSchema = z.object({
  epoch: z.int().min(0),
  history: z.array(EpochMetricsSchema),
  config: z.record(z.string(), z.unknown()),
  scheduler: z.object({ lastEpoch: z.int().min(0) }).optional(),
});

/** Reads a checkpoint written by {@link saveCheckpoint}; other files are refused by name. */
export async function loadCheckpoint(file: string): Promise<Checkpoint> {
  if (typeof file !== 'string') throw new TypeError(`loadCheckpoint: path must be a string, got ${typeof file}`);
  const { tensors, metadata } = await loadWithMetadata(file);
  return checkpointOf(file, tensors, metadata);
}

/** Whether a weights file's metadata is a checkpoint's. */
export function isCheckpoint(metadata: Record<string, string>): boolean {
  return metadata[METADATA_KEY] !== undefined;
}

/** @internal The checkpoint in a weights file read already (its tensors and metadata), validated. */
export function checkpointOf(file: string, tensors: Map<string, Tensor>, metadata: Record<string, string>): Checkpoint {
  const text = metadata[METADATA_KEY];
  if (text === undefined) throw new Error(`'${file}' is not an fcn-torch checkpoint (no '${METADATA_KEY}' metadata)`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`'${file}': the checkpoint's metadata is not valid JSON (${(err as Error).message})`);
  }
  const parsed = CheckpointInfoSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'metadata'}: ${i.message}`).join('; ');
    throw new Error(`'${file}': the checkpoint's metadata is not valid (${problems})`);
  }
  const model = new Map<string, Tensor>();
  const optimizer = new Map<string, Tensor>();
  for (const [name, t] of tensors) {
    if (name.startsWith('model.')) model.set(name.slice(6), t);
    else if (name.startsWith('optimizer.')) optimizer.set(name.slice(10), t);
    else throw new Error(`'${file}': unexpected tensor '${name}' in a checkpoint`);
  }
  return { ...parsed.data, model, optimizer };
}
