/**
 * What `fcn train` stores in its checkpoints, so that eval, predict and --resume rebuild the
 * run: a schema, checked whenever a checkpoint is read back, so that a damaged or foreign
 * config is reported by field instead of failing somewhere later.
 */
import { z } from 'zod';
import { ModelSpecSchema, parseOrThrow } from '../model-spec';

/** The optimizers `fcn train --optimizer` offers. */
export const OPTIMIZERS = ['sgd', 'adamw'] as const;
/** The learning-rate schedules `fcn train --scheduler` offers (stepped after every batch). */
export const SCHEDULERS = ['none', 'poly', 'step', 'cosine'] as const;

/** The losses `fcn train --loss` offers: cross-entropy (ce), Dice, Focal, and ce with either. */
export const LOSS_TERMS = ['ce', 'dice', 'focal', 'ce+dice', 'ce+focal'] as const;

/** The settings of a training run: the model's spec (with the crop it trains on) and the recipe. */
export const RunConfigSchema = ModelSpecSchema.extend({
  crop: ModelSpecSchema.shape.crop.unwrap(),
  batchSize: z.int().min(1),
  accumulate: z.int().min(1).default(1),
  lr: z.number().min(0),
  wd: z.number().min(0),
  momentum: z.number().min(0),
  optimizer: z.enum(OPTIMIZERS).default('sgd'),
  scheduler: z.enum(SCHEDULERS).default('none'),
  /** Epochs of linear warm-up (from 1 % of lr) before the schedule. */
  warmupEpochs: z.int().min(0).default(0),
  seed: z.int().min(0),
  data: z.string(),
  loss: z.enum(LOSS_TERMS).default('ce'),
  /** `--base-size` of the random resize (0: none; absent: the loader's default). */
  baseSize: z.int().min(0).optional(),
  /** The cross-entropy's class weights (median frequency balancing, or a file's), fixed when the run began. */
  classWeights: z.array(z.number().min(0)).optional(),
});

/** The settings of a training run. */
export type RunConfig = z.infer<typeof RunConfigSchema>;

/** config as a RunConfig, or an error naming file and every field that is wrong. */
export function runConfigOf(config: unknown, file: string): RunConfig {
  return parseOrThrow(RunConfigSchema, config, `'${file}' holds no fcn train run config`);
}
