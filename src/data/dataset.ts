/**
 * A segmentation dataset as people have it, read whole: the layout detected (or forced), the
 * classes from its class file or its labels, every image decoded (EXIF orientation applied,
 * grey and RGBA made RGB) with its mask as class ids, and every problem found, each naming
 * its file. `fcn data check` reports what {@link readDataset} found; training refuses a
 * dataset with problems, with the same words.
 */
import path from 'node:path';
import { checkInteger, checkNumber, checkOneOf } from '../checks';
import { DECODE_MAX_PIXELS, decodeRgb, pixelsToTensor } from '../image';
import type { Tensor } from '../tensor';
import { keep } from '../tidy';
import * as torch from '../torch';
import { VOC_VOID_COLOUR } from '../voc/colours';
import type { Example } from '../voc/dataset';
import { type ClassInfo, defaultClasses, MAX_CLASSES, readClassFile } from './classes';
import type { Pair, Problem, SplitSource } from './folders';
import { DATA_FORMATS, type DataFormat, detectFormat, openLayout } from './layouts';
import { isGrey, type MaskMapping, type RawMask, toClassIds, valuesOf } from './masks';

export { DATA_FORMATS, type DataFormat, detectFormat };

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

/** How a dataset's mask values became classes. */
export type MaskKind = 'voc palette' | 'index' | 'binary' | 'colour' | 'cityscapes' | 'ade20k' | 'coco';

/** A dataset read whole. */
export interface SegmentationData {
  root: string;
  format: DataFormat;
  /** Where the classes came from: the class file, or how they were made up. */
  classSource: string;
  classes: ClassInfo[];
  /** How mask values became classes: the layout's own way, or as the folder layout's masks were found. */
  masks: MaskKind;
  /** The ignore label of the examples' class ids: 255 (uint8) up to 255 classes, else the mask value (int32). */
  ignoreIndex: number;
  split: SplitSource | 'official';
  train: DatasetSplit;
  val: DatasetSplit;
  problems: Problem[];
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
  const layout = openLayout(format, dir, { valFraction, seed, splitFile: options.splitFile }, problems);
  const wanted = (['train', 'val'] as const).filter((s) => !options.only || options.only === s);

  // Masks and images are read at once (masks inflated by zlib's or decoded by fast-png,
  // images by sharp's threads), so neither waits for the other. The mapping needs every mask; when it
  // cannot be decided, the images not yet started are not decoded and those read are released.
  const raw = new Map<Pair, RawMask>();
  const images = new Map<Pair, Tensor<'uint8'>>();
  let stopped = false;
  const pairs = wanted.flatMap((split) => layout[split]);
  const readMasks = eachLimited(pairs, concurrency, async (pair) => {
    try {
      raw.set(pair, await layout.readMask(pair, maxPixels));
    } catch (err) {
      const message = (err as Error).message.replace(/^cannot read (mask|image) '[^']*': /, '');
      problems.push({ file: pair.mask, message: message.replace(/^label '[^']*': /, '') });
    }
  });
  const readImages = eachLimited(pairs, concurrency, async (pair) => {
    if (stopped) return;
    try {
      const pixels = await decodeRgb(pair.image, maxPixels, { orient: format !== 'voc' });
      if (stopped) return;
      images.set(pair, keep(pixelsToTensor(pixels)));
    } catch (err) {
      problems.push({ file: pair.image, message: (err as Error).message.replace(/^cannot read image '[^']*': /, '') });
    }
  });
  const releaseImages = async () => {
    stopped = true;
    await readImages;
    for (const image of images.values()) image.dispose();
  };
  await readMasks;
  let mapping: MaskMapping;
  let classes: ClassInfo[];
  let classSource: string;
  let storedIgnore: number;
  try {
    if (layout.classes && layout.mapping) {
      [mapping, classes, classSource] = [layout.mapping, layout.classes, layout.classSource ?? format];
    } else {
      const classFile = readClassFile(layout.root);
      // The class file decides; classes given (a trained model's) stand in for a dataset without one.
      const given = options.classes ? { classes: [...options.classes], colours: false, source: 'the model' } : null;
      const known = classFile ? { ...classFile, source: path.basename(classFile.file) } : given;
      const masks = [...raw.entries()].map(([pair, mask]) => ({ pair, mask }));
      ({ mapping, classes, source: classSource } = decideMapping(masks, known, ignore));
    }
    storedIgnore = classes.length <= 255 ? 255 : ignore;
    if (storedIgnore < classes.length && mapping.kind === 'index') {
      throw new Error(
        `the dataset has ${classes.length} classes, so the ignore index ${ignore} is a class; give --ignore-index ` +
          `${MAX_CLASSES} (or another value past the classes)`,
      );
    }
  } catch (err) {
    await releaseImages();
    throw err;
  }
  await readImages;

  /** The split's pairs whose mask and image were both read, with the mask as class ids and the sizes checked. */
  const labelSplit = (pairs: Pair[]): Example[] => {
    const out: Example[] = [];
    for (const pair of pairs) {
      const mask = raw.get(pair);
      const image = images.get(pair);
      raw.delete(pair);
      images.delete(pair);
      if (mask === undefined || image === undefined) {
        image?.dispose();
        continue;
      }
      const [height, width] = image.shape;
      if (height !== mask.height || width !== mask.width) {
        image.dispose();
        const orientation = format === 'voc' ? '' : ' (after its EXIF orientation)';
        const seen = `its image '${pair.image}' is ${width}x${height}${orientation}`;
        problems.push({ file: pair.mask, message: `is ${mask.width}x${mask.height} but ${seen}` });
        continue;
      }
      try {
        const ids = toClassIds(mask, mapping, classes.length, storedIgnore);
        out.push({ name: pair.stem, image, label: keep(torch.tensor(ids, { shape: [mask.height, mask.width] })) });
      } catch (err) {
        image.dispose();
        problems.push({ file: pair.mask, message: (err as Error).message });
      }
    }
    return out;
  };
  const train = { pairs: layout.train, examples: wanted.includes('train') ? labelSplit(layout.train) : [] };
  const val = { pairs: layout.val, examples: wanted.includes('val') ? labelSplit(layout.val) : [] };
  const masks = format === 'voc' ? 'voc palette' : format === 'folders' ? (mapping.kind as MaskKind) : format;
  return {
    root: layout.root,
    format,
    classSource,
    classes,
    masks,
    ignoreIndex: storedIgnore,
    split: layout.split,
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
