/**
 * What rebuilds a trained model (its spec): which model, its classes, the crop it was trained
 * on and how its dataset was read, as `fcn train` writes it, `saveCheckpoint` adds it and the
 * CLI and viewer read it back (model-file.ts).
 */
import { z } from 'zod';
import { MAX_CLASSES } from './data/classes';
import { DATA_FORMATS } from './data/dataset';
import { FCN_ARCHS, UPSAMPLING_INITS } from './fcn';
import { SEGMENTATION_MODELS } from './models/segmentation';

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
