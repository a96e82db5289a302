/**
 * What `fcn train` stores in its checkpoints, so that eval, predict and --resume rebuild the
 * run: a schema, checked whenever a checkpoint is read back, so that a damaged or foreign
 * config is reported by field instead of failing somewhere later.
 */
import { z } from 'zod';
import { FCN_ARCHS, UPSAMPLING_INITS } from '../fcn';

const size32 = z.int().min(32).multipleOf(32);

/** The settings of a training run. */
export const RunConfigSchema = z.object({
  arch: z.enum(FCN_ARCHS),
  init: z.enum(UPSAMPLING_INITS),
  numClasses: z.int().min(1).max(1024),
  crop: z.tuple([size32, size32]),
  batchSize: z.int().min(1),
  lr: z.number().min(0),
  wd: z.number().min(0),
  momentum: z.number().min(0),
  seed: z.int().min(0),
  data: z.string(),
});

/** The settings of a training run. */
export type RunConfig = z.infer<typeof RunConfigSchema>;

/** What rebuilds a trained model: its architecture and classes, and the crop it was trained on. */
export const ModelSpecSchema = z.object({
  arch: z.enum(FCN_ARCHS),
  init: z.enum(UPSAMPLING_INITS).default('bilinear'),
  numClasses: z.int().min(1).max(1024),
  crop: z.tuple([size32, size32]).optional(),
});

/** What rebuilds a trained model. */
export type ModelSpec = z.infer<typeof ModelSpecSchema>;

/** The metadata key under which model.safetensors keeps its {@link ModelSpec}. */
export const MODEL_METADATA_KEY = 'fcn-torch-model';

function parsed<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`).join('; ');
    throw new Error(`${what} (${problems})`);
  }
  return result.data;
}

/** config as a RunConfig, or an error naming file and every field that is wrong. */
export function runConfigOf(config: unknown, file: string): RunConfig {
  return parsed(RunConfigSchema, config, `'${file}' holds no fcn train run config`);
}

/** The model a checkpoint's config or a model file's metadata describes. */
export function modelSpecOf(config: unknown, file: string): ModelSpec {
  return parsed(ModelSpecSchema, config, `'${file}' does not say which model it holds`);
}
