/**
 * What `fcn train` stores in its checkpoints, so that eval, predict and --resume rebuild the
 * run: a schema, checked whenever a checkpoint is read back, so that a damaged or foreign
 * config is reported by field instead of failing somewhere later.
 */
import { z } from 'zod';
import { FCN_ARCHS, UPSAMPLING_INITS } from '../fcn';
import { parseOrThrow } from '../model-file';
import { SEGMENTATION_MODELS } from '../models/segmentation';

const size32 = z.int().min(32).multipleOf(32);

/** The optimizers `fcn train --optimizer` offers. */
export const OPTIMIZERS = ['sgd', 'adamw'] as const;
/** The learning-rate schedules `fcn train --scheduler` offers (stepped after every batch). */
export const SCHEDULERS = ['none', 'poly', 'step', 'cosine'] as const;

/** The settings of a training run. */
export const RunConfigSchema = z.object({
  /** A torchvision segmentation model (`--model`); absent for the chapter's FCN. */
  model: z.enum(SEGMENTATION_MODELS).optional(),
  /** The chapter's FCN (absent in a `--model` run's config: fcn32s). */
  arch: z.enum(FCN_ARCHS).default('fcn32s'),
  init: z.enum(UPSAMPLING_INITS).default('bilinear'),
  numClasses: z.int().min(1).max(1024),
  /** The auxiliary classifier of a `--model` run. */
  auxLoss: z.boolean().default(false),
  crop: z.tuple([size32, size32]),
  batchSize: z.int().min(1),
  lr: z.number().min(0),
  wd: z.number().min(0),
  momentum: z.number().min(0),
  optimizer: z.enum(OPTIMIZERS).default('sgd'),
  scheduler: z.enum(SCHEDULERS).default('none'),
  /** Epochs of linear warm-up (from 1 % of lr) before the schedule. */
  warmupEpochs: z.int().min(0).default(0),
  seed: z.int().min(0),
  data: z.string(),
});

/** The settings of a training run. */
export type RunConfig = z.infer<typeof RunConfigSchema>;

/** config as a RunConfig, or an error naming file and every field that is wrong. */
export function runConfigOf(config: unknown, file: string): RunConfig {
  return parseOrThrow(RunConfigSchema, config, `'${file}' holds no fcn train run config`);
}
