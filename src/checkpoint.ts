/**
 * Training checkpoints: model weights, optimizer state, epoch, history and configuration
 * in one safetensors file (`model.*` and `optimizer.*` tensors, the rest as JSON in its
 * metadata), written to a temporary name and renamed, so a crash mid-save leaves the
 * previous checkpoint intact. Python's `safetensors` reads them too.
 */

import { z } from 'zod';
import type { EpochMetrics } from './metrics';
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
  /** The caller's description of the run (architecture, crop, learning rate, ...). */
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

/** Writes model and optimizer state with info to file (a `.safetensors` path), atomically. */
export async function saveCheckpoint(
  file: string,
  parts: { model: Module; optimizer?: Optimizer } & CheckpointInfo,
): Promise<void> {
  const tensors = new Map<string, Tensor>();
  for (const [name, t] of parts.model.stateDict()) tensors.set(`model.${name}`, t);
  for (const [name, t] of parts.optimizer?.stateDict() ?? []) tensors.set(`optimizer.${name}`, t);
  const info: CheckpointInfo = {
    epoch: parts.epoch,
    history: parts.history,
    config: parts.config,
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
