/**
 * A segmentation dataset as people have it, read whole: the layout detected (or forced), the
 * classes from its class file or its labels, every image decoded (EXIF orientation applied,
 * grey and RGBA made RGB) with its mask as class ids, and every problem found, each naming
 * its file. `fcn data check` reports what {@link readDataset} found; training refuses a
 * dataset with problems, with the same words.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkInteger, checkNumber, checkOneOf } from '../checks';
import { DECODE_MAX_PIXELS, decodeRgb, pixelsToTensor } from '../image';
import type { Tensor } from '../tensor';
import { keep } from '../tidy';
import * as torch from '../torch';
import { VOC_CLASSES, VOC_VOID_COLOUR } from '../voc/colours';
import type { Example } from '../voc/dataset';
import { resolveVocRoot } from '../voc/dataset';
import { readLabel } from '../voc/labels';
import { type ClassInfo, defaultClasses, MAX_CLASSES, readClassFile, readLines } from './classes';
import { isFolderLayout, type Pair, type Problem, type SplitSource, splitPairs } from './folders';
import { isGrey, type MaskMapping, type RawMask, readMask, toClassIds, valuesOf } from './masks';

/** The dataset layouts read: VOC2012's tree, and image/mask folders. */
export const DATA_FORMATS = ['voc', 'folders'] as const;
/** A dataset layout. */
export type DataFormat = (typeof DATA_FORMATS)[number];

/** Options of {@link readDataset}. */
export interface ReadDatasetOptions {
  /** The layout (default: detected). */
  format?: DataFormat;
  /** The mask value that marks pixels to ignore (default 255). */
  ignoreIndex?: number;
  /** Share of the pairs in val when the dataset has no split of its own (default 0.1). */
  valFraction?: number;
  /** Seed of that random split (default 0). */
  seed?: number;
  /** A split an earlier run wrote (`split.json`), used when the dataset has none of its own. */
  splitFile?: string;
  /** The classes of a dataset without a class file, when known (a trained model's); else from its masks. */
  classes?: readonly ClassInfo[];
  /** Only this split is decoded (the other's pairs are still listed). */
  only?: 'train' | 'val';
  /** Images and masks decoded at once (default 4). */
  concurrency?: number;
  /** The largest image or mask read, in pixels. */
  maxPixels?: number;
}

/** One split of a dataset as read. */
export interface DatasetSplit {
  /** Its pairs, in order (those with problems included). */
  pairs: Pair[];
  /** The decoded examples (those without problems); empty when not decoded. */
  examples: Example[];
}

/** A dataset read whole. */
export interface SegmentationData {
  root: string;
  format: DataFormat;
  /** Where the classes came from: the class file, or how they were made up. */
  classSource: string;
  classes: ClassInfo[];
  /** How mask values became classes. */
  masks: 'voc palette' | 'index' | 'binary' | 'colour';
  /** The ignore label of the examples' class ids: 255 (uint8) up to 255 classes, else the mask value (int32). */
  ignoreIndex: number;
  split: SplitSource | 'voc';
  train: DatasetSplit;
  val: DatasetSplit;
  problems: Problem[];
}

/** The layout of dir: VOC2012's (ImageSets/Segmentation), or image/mask folders; an error saying what was looked for. */
export function detectFormat(dir: string): DataFormat {
  const root = path.resolve(dir);
  if (!fs.statSync(root, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`no such folder '${dir}'`);
  if (fs.existsSync(path.join(resolveVocRoot(root), 'ImageSets', 'Segmentation'))) return 'voc';
  if (isFolderLayout(root)) return 'folders';
  throw new Error(
    `'${dir}' is no dataset layout known here: neither a VOC2012 folder (ImageSets/Segmentation, JPEGImages, ` +
      'SegmentationClass) nor image/mask folders (images/ beside masks/, annotations/ or labels/, at the top or in train/ and val/)',
  );
}

/** The pairs of a VOC2012 tree's split (its split file's names; a name that is no file is a problem). */
function vocPairs(root: string, split: 'train' | 'val', problems: Problem[]): Pair[] {
  const listFile = path.join(root, 'ImageSets', 'Segmentation', `${split}.txt`);
  if (!fs.existsSync(listFile)) {
    problems.push({ file: listFile, message: 'is missing' });
    return [];
  }
  const pairs: Pair[] = [];
  readLines(listFile).forEach((stem, i) => {
    if (/[/\\\0]/.test(stem) || stem === '.' || stem === '..') {
      problems.push({ file: listFile, message: `line ${i + 1}: '${stem}' is not a file name inside the dataset` });
      return;
    }
    const pair = {
      stem,
      image: path.join(root, 'JPEGImages', `${stem}.jpg`),
      mask: path.join(root, 'SegmentationClass', `${stem}.png`),
    };
    const missing = [pair.image, pair.mask].find((f) => !fs.existsSync(f));
    if (missing) problems.push({ file: missing, message: `is listed in ${listFile} but does not exist` });
    else pairs.push(pair);
  });
  return pairs;
}

/** Runs fn over items, `concurrency` at a time, in order of start. */
async function eachLimited<T>(items: readonly T[], concurrency: number, fn: (item: T, i: number) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
}

/** The mapping of mask values to classes, decided from every mask read; problems where it cannot be. */
function decideMapping(
  masks: readonly { pair: Pair; mask: RawMask }[],
  classFile: { classes: ClassInfo[]; colours: boolean; source: string } | null,
  ignore: number,
): { mapping: MaskMapping; classes: ClassInfo[]; source: string } {
  const colourMasks = masks.filter((m) => !isGrey(m.mask));
  const coloured = classFile?.colours === true && masks.some((m) => m.mask.channels === 3);
  if (colourMasks.length > 0 || coloured) {
    if (!classFile?.colours) {
      const first = colourMasks[0];
      throw new Error(
        `'${first.pair.mask}' is a colour mask (${colourMasks.length} of ${masks.length} are): give each class its ` +
          'colour in classes.json ([{ "name": ..., "color": [r, g, b] }, ...]) at the dataset root',
      );
    }
    const colours = new Map<number, number>(
      classFile.classes.map((c, id) => [(c.color[0] << 16) | (c.color[1] << 8) | c.color[2], id]),
    );
    const [r, g, b] = VOC_VOID_COLOUR;
    const voidColour = (r << 16) | (g << 8) | b;
    if (!colours.has(voidColour)) colours.set(voidColour, -1); // VOC's boundary colour: ignored
    return { mapping: { kind: 'colour', colours }, classes: classFile.classes, source: classFile.source };
  }
  const values = new Set<number>();
  for (const m of masks) valuesOf(m.mask, values);
  const named = classFile?.classes.length;
  const binary = [...values].every((v) => v === 0 || v === 255) && values.has(255) && (named ?? 2) === 2;
  if (binary) {
    return {
      mapping: { kind: 'binary' },
      classes: classFile?.classes ?? defaultClasses(2),
      source: classFile?.source ?? 'binary masks (0/255)',
    };
  }
  const indices = [...values].filter((v) => v !== ignore);
  const largest = indices.length > 0 ? Math.max(...indices) : 0;
  if (classFile) return { mapping: { kind: 'index', ignore }, classes: classFile.classes, source: classFile.source };
  if (largest >= MAX_CLASSES) {
    throw new Error(
      `the masks hold the value ${largest}, past the ${MAX_CLASSES} classes a dataset may have; is it the ignore value? (--ignore-index ${largest})`,
    );
  }
  return {
    mapping: { kind: 'index', ignore },
    classes: defaultClasses(largest + 1),
    source: `no class file: ${largest + 1} classes from the largest mask value (${largest})`,
  };
}

/**
 * Reads the dataset in dir: its layout, classes, splits, and every image with its mask as
 * class ids. Problems (unmatched files, unreadable ones, sizes that differ, values that are
 * no class) are collected, each naming its file, not thrown; the examples hold the pairs
 * without problems.
 */
export async function readDataset(dir: string, options: ReadDatasetOptions = {}): Promise<SegmentationData> {
  const format = options.format ? checkOneOf(options.format, 'format', DATA_FORMATS) : detectFormat(dir);
  const ignore = checkInteger(options.ignoreIndex ?? 255, 'ignoreIndex', 0, MAX_CLASSES);
  const valFraction = checkNumber(options.valFraction ?? 0.1, 'valFraction', 0, 0.9);
  const seed = checkInteger(options.seed ?? 0, 'seed', 0);
  const maxPixels = checkInteger(options.maxPixels ?? DECODE_MAX_PIXELS, 'maxPixels', 1);
  const concurrency = checkInteger(options.concurrency ?? 4, 'concurrency', 1);
  const problems: Problem[] = [];
  const root = format === 'voc' ? resolveVocRoot(dir) : path.resolve(dir);
  let splits: { train: Pair[]; val: Pair[]; source: SplitSource | 'voc' };
  if (format === 'voc') {
    splits = { train: vocPairs(root, 'train', problems), val: vocPairs(root, 'val', problems), source: 'voc' };
  } else {
    splits = splitPairs(root, { valFraction, seed, splitFile: options.splitFile }, problems);
  }
  const wanted = (['train', 'val'] as const).filter((s) => !options.only || options.only === s);
  const classFile = format === 'voc' ? null : readClassFile(root);
  // The class file decides; classes given (a trained model's) stand in for a dataset without one.
  const given = options.classes ? { classes: [...options.classes], colours: false, source: 'the model' } : null;
  const known = classFile ? { ...classFile, source: path.basename(classFile.file) } : given;

  // Masks first (small), so that the mapping is decided before any image is decoded.
  const raw = new Map<Pair, RawMask | Tensor>();
  for (const split of wanted) {
    await eachLimited(splits[split], concurrency, async (pair) => {
      try {
        raw.set(
          pair,
          format === 'voc' ? keep(await readLabel(pair.mask, { maxPixels })) : await readMask(pair.mask, maxPixels),
        );
      } catch (err) {
        problems.push({ file: pair.mask, message: (err as Error).message.replace(/^cannot read mask '[^']*': /, '') });
      }
    });
  }
  let mapping: MaskMapping | null = null;
  let classes: ClassInfo[];
  let classSource: string;
  if (format === 'voc') {
    classes = known?.classes ?? defaultClasses(VOC_CLASSES.length);
    classSource = "VOC2012's 21 classes";
  } else {
    const masks = [...raw.entries()].map(([pair, mask]) => ({ pair, mask: mask as RawMask }));
    const decided = decideMapping(masks, known, ignore);
    mapping = decided.mapping;
    classes = decided.classes;
    classSource = decided.source;
  }
  const storedIgnore = classes.length <= 255 ? 255 : ignore;
  if (storedIgnore < classes.length && mapping?.kind === 'index') {
    throw new Error(
      `the dataset has ${classes.length} classes, so the ignore index ${ignore} is a class; give --ignore-index ` +
        `${MAX_CLASSES} (or another value past the classes)`,
    );
  }

  const decodeSplit = async (pairs: Pair[]): Promise<Example[]> => {
    const out: (Example | null)[] = new Array(pairs.length).fill(null);
    await eachLimited(pairs, concurrency, async (pair, i) => {
      const mask = raw.get(pair);
      if (mask === undefined) return;
      raw.delete(pair);
      let ids: Tensor;
      if (mapping === null) {
        ids = mask as Tensor; // VOC: class ids already
      } else {
        const m = mask as RawMask;
        try {
          ids = keep(
            torch.tensor(toClassIds(m, mapping, classes.length, storedIgnore), { shape: [m.height, m.width] }),
          );
        } catch (err) {
          problems.push({ file: pair.mask, message: (err as Error).message });
          return;
        }
      }
      const [height, width] = ids.shape;
      try {
        const pixels = await decodeRgb(pair.image, maxPixels, { orient: true });
        if (pixels.height !== height || pixels.width !== width) {
          ids.dispose();
          problems.push({
            file: pair.mask,
            message:
              `is ${width}x${height} but its image '${pair.image}' is ${pixels.width}x${pixels.height}` +
              (format === 'voc' ? '' : ' (after its EXIF orientation)'),
          });
          return;
        }
        out[i] = { name: pair.stem, image: keep(pixelsToTensor(pixels)), label: ids };
      } catch (err) {
        ids.dispose();
        problems.push({
          file: pair.image,
          message: (err as Error).message.replace(/^cannot read image '[^']*': /, ''),
        });
      }
    });
    return out.filter((e): e is Example => e !== null);
  };
  const train = { pairs: splits.train, examples: wanted.includes('train') ? await decodeSplit(splits.train) : [] };
  const val = { pairs: splits.val, examples: wanted.includes('val') ? await decodeSplit(splits.val) : [] };
  return {
    root,
    format,
    classSource,
    classes,
    masks: mapping?.kind ?? 'voc palette',
    ignoreIndex: storedIgnore,
    split: splits.source,
    train,
    val,
    problems,
  };
}

/** Releases the tensors of a dataset's examples. */
export function disposeDataset(data: SegmentationData): void {
  for (const e of [...data.train.examples, ...data.val.examples]) {
    e.image.dispose();
    e.label.dispose();
  }
}

/** An error for a dataset with problems: how many, and the first with its file. */
export function problemsError(data: SegmentationData, dir: string): Error {
  const [first] = data.problems;
  const more = data.problems.length > 1 ? ` (and ${data.problems.length - 1} more: fcn data check ${dir})` : '';
  return new Error(`'${first.file}' ${first.message}${more}`);
}
