/**
 * The dataset layouts read, each as the pairs of its splits, its classes and how its mask
 * values become classes where the layout fixes them: VOC2012's tree, Cityscapes (`gtFine`
 * label ids to its 19 train ids), ADE20K (`ADEChallengeData2016`, 150 classes, 0 ignored),
 * COCO (instances of VOC's 20 categories, as torchvision's references use it), and image/mask
 * folders (classes and mapping decided from the class file and the masks).
 */
import fs from 'node:fs';
import path from 'node:path';
import { resolveVocRoot } from '../voc/dataset';
import { readLabel } from '../voc/labels';
import { type ClassInfo, classColour, defaultClasses, readLines } from './classes';
import { type CocoPair, cocoInstances, cocoMask, cocoPairs } from './coco';
import { isFolderLayout, type Pair, type Problem, type SplitSource, splitPairs } from './folders';
import { type MaskMapping, type RawMask, readMask } from './masks';

/** The dataset layouts read. */
export const DATA_FORMATS = ['voc', 'folders', 'cityscapes', 'ade20k', 'coco'] as const;
/** A dataset layout. */
export type DataFormat = (typeof DATA_FORMATS)[number];

/** A layout's splits, and what it fixes of classes and masks. */
export interface Layout {
  root: string;
  train: Pair[];
  val: Pair[];
  split: SplitSource | 'official';
  /** The layout's own classes, and what they are; null: from the class file or the masks. */
  classes: ClassInfo[] | null;
  classSource?: string;
  /** The layout's own mapping of mask values; null: decided from the masks. */
  mapping: MaskMapping | null;
  /** Reads a pair's mask as stored. */
  readMask(pair: Pair, maxPixels: number): Promise<RawMask>;
}

const isDir = (p: string) => fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;

/** Cityscapes' 19 training classes: names, colours, and the label id each is in gtFine's `*_labelIds.png`. */
const CITYSCAPES: [string, [number, number, number], number][] = [
  ['road', [128, 64, 128], 7],
  ['sidewalk', [244, 35, 232], 8],
  ['building', [70, 70, 70], 11],
  ['wall', [102, 102, 156], 12],
  ['fence', [190, 153, 153], 13],
  ['pole', [153, 153, 153], 17],
  ['traffic light', [250, 170, 30], 19],
  ['traffic sign', [220, 220, 0], 20],
  ['vegetation', [107, 142, 35], 21],
  ['terrain', [152, 251, 152], 22],
  ['sky', [70, 130, 180], 23],
  ['person', [220, 20, 60], 24],
  ['rider', [255, 0, 0], 25],
  ['car', [0, 0, 142], 26],
  ['truck', [0, 0, 70], 27],
  ['bus', [0, 60, 100], 28],
  ['train', [0, 80, 100], 31],
  ['motorcycle', [0, 0, 230], 32],
  ['bicycle', [119, 11, 32], 33],
];

/** ADE20K's 150 classes (SceneParsing's objectInfo150), class k stored as k + 1. */
export const ADE20K_CLASSES = [
  'wall', 'building', 'sky', 'floor', 'tree', 'ceiling', 'road', 'bed', 'windowpane', 'grass', 'cabinet', 'sidewalk',
  'person', 'earth', 'door', 'table', 'mountain', 'plant', 'curtain', 'chair', 'car', 'water', 'painting', 'sofa',
  'shelf', 'house', 'sea', 'mirror', 'rug', 'field', 'armchair', 'seat', 'fence', 'desk', 'rock', 'wardrobe', 'lamp',
  'bathtub', 'railing', 'cushion', 'base', 'box', 'column', 'signboard', 'chest of drawers', 'counter', 'sand', 'sink',
  'skyscraper', 'fireplace', 'refrigerator', 'grandstand', 'path', 'stairs', 'runway', 'case', 'pool table', 'pillow',
  'screen door', 'stairway', 'river', 'bridge', 'bookcase', 'blind', 'coffee table', 'toilet', 'flower', 'book', 'hill',
  'bench', 'countertop', 'stove', 'palm', 'kitchen island', 'computer', 'swivel chair', 'boat', 'bar',
  'arcade machine', 'hovel', 'bus', 'towel', 'light', 'truck', 'tower', 'chandelier', 'awning', 'streetlight', 'booth',
  'television receiver', 'airplane', 'dirt track', 'apparel', 'pole', 'land', 'bannister', 'escalator', 'ottoman',
  'bottle', 'buffet', 'poster', 'stage', 'van', 'ship', 'fountain', 'conveyer belt', 'canopy', 'washer', 'plaything',
  'swimming pool', 'stool', 'barrel', 'basket', 'waterfall', 'tent', 'bag', 'minibike', 'cradle', 'oven', 'ball',
  'food', 'step', 'tank', 'trade name', 'microwave', 'pot', 'animal', 'bicycle', 'lake', 'dishwasher', 'screen',
  'blanket', 'sculpture', 'hood', 'sconce', 'vase', 'traffic light', 'tray', 'ashcan', 'fan', 'pier', 'crt screen',
  'plate', 'monitor', 'bulletin board', 'shower', 'radiator', 'glass', 'clock', 'flag',
]; // biome-ignore format: a table

/** A value-to-class table: table[v] is v's class, -1 ignored; values past it are `beyond`. */
function table(entries: [number, number][], beyond: -1 | -2): MaskMapping {
  const size = Math.max(...entries.map(([v]) => v)) + 1;
  const t = new Int32Array(size).fill(beyond);
  for (const [v, c] of entries) t[v] = c;
  return { kind: 'table', table: t, beyond };
}

/** The root of an ADE20K tree: dir itself, or dir/ADEChallengeData2016. */
function ade20kRoot(dir: string): string {
  const nested = path.join(dir, 'ADEChallengeData2016');
  return isDir(path.join(dir, 'images', 'training')) || !isDir(nested) ? dir : nested;
}

/** The layout of dir, detected; an error saying what was looked for. */
export function detectFormat(dir: string): DataFormat {
  const root = path.resolve(dir);
  if (!isDir(root)) throw new Error(`no such folder '${dir}'`);
  if (fs.existsSync(path.join(resolveVocRoot(root), 'ImageSets', 'Segmentation'))) return 'voc';
  if (isDir(path.join(root, 'leftImg8bit')) && isDir(path.join(root, 'gtFine'))) return 'cityscapes';
  const ade = ade20kRoot(root);
  if (isDir(path.join(ade, 'images', 'training')) && isDir(path.join(ade, 'annotations', 'training'))) return 'ade20k';
  if (fs.existsSync(cocoInstances(root, 'train')) || fs.existsSync(cocoInstances(root, 'val'))) return 'coco';
  if (isFolderLayout(root)) return 'folders';
  throw new Error(
    `'${dir}' is no dataset layout known here: not VOC2012 (ImageSets/Segmentation, JPEGImages, SegmentationClass), ` +
      'Cityscapes (leftImg8bit/, gtFine/), ADE20K (ADEChallengeData2016/images/training, annotations/training), ' +
      'COCO (annotations/instances_train2017.json) nor image/mask folders (images/ beside masks/, annotations/ or ' +
      'labels/, at the top or in train/ and val/)',
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
    const image = path.join(root, 'JPEGImages', `${stem}.jpg`);
    const mask = path.join(root, 'SegmentationClass', `${stem}.png`);
    const missing = [image, mask].find((f) => !fs.existsSync(f));
    if (missing) problems.push({ file: missing, message: `is listed in ${listFile} but does not exist` });
    else pairs.push({ stem, image, mask });
  });
  return pairs;
}

/**
 * Pairs found by walking `images` (files ending in imageSuffix, in sub-folders), each with the
 * mask at the same place under `masks` with maskSuffix; an image without its mask is a problem.
 */
function walkPairs(
  images: string,
  masks: string,
  imageSuffix: string,
  maskSuffix: string,
  problems: Problem[],
): Pair[] {
  if (!isDir(images)) {
    problems.push({ file: images, message: 'is missing' });
    return [];
  }
  const pairs: Pair[] = [];
  const walk = (sub: string) => {
    for (const entry of fs.readdirSync(path.join(images, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith(imageSuffix)) {
        const stem = rel.slice(0, -imageSuffix.length);
        const mask = path.join(masks, `${stem}${maskSuffix}`);
        if (fs.existsSync(mask)) pairs.push({ stem, image: path.join(images, rel), mask });
        else problems.push({ file: path.join(images, rel), message: `has no mask (looked for ${mask})` });
      }
    }
  };
  walk('');
  return pairs.sort((a, b) => (a.stem < b.stem ? -1 : a.stem > b.stem ? 1 : 0));
}

const fileMask = (pair: Pair, maxPixels: number) => readMask(pair.mask, maxPixels);

/** A layout's splits and what it fixes, for dir (the folder layout's split from `split`'s settings). */
export function openLayout(
  format: DataFormat,
  dir: string,
  split: { valFraction: number; seed: number; splitFile?: string },
  problems: Problem[],
): Layout {
  const root = path.resolve(dir);
  switch (format) {
    case 'voc': {
      const vocRoot = resolveVocRoot(root);
      return {
        root: vocRoot,
        train: vocPairs(vocRoot, 'train', problems),
        val: vocPairs(vocRoot, 'val', problems),
        split: 'official',
        classes: defaultClasses(21),
        classSource: "VOC2012's",
        mapping: { kind: 'index', ignore: 255 },
        // VOC's palette PNGs through the chapter's reader (colours to classes, the boundary ignored).
        async readMask(pair, maxPixels) {
          const ids = await readLabel(pair.mask, { maxPixels });
          const [height, width] = ids.shape;
          const data = ids.toTypedArray() as Uint8Array;
          ids.dispose();
          return { width, height, channels: 1, data };
        },
      };
    }
    case 'cityscapes': {
      const pairs = (s: string) =>
        walkPairs(
          path.join(root, 'leftImg8bit', s),
          path.join(root, 'gtFine', s),
          '_leftImg8bit.png',
          '_gtFine_labelIds.png',
          problems,
        );
      return {
        root,
        train: pairs('train'),
        val: pairs('val'),
        split: 'official',
        classes: CITYSCAPES.map(([name, color]) => ({ name, color })),
        classSource: "Cityscapes' training classes",
        mapping: table(
          CITYSCAPES.map(([, , id], trainId) => [id, trainId]),
          -1,
        ),
        readMask: fileMask,
      };
    }
    case 'ade20k': {
      const ade = ade20kRoot(root);
      const pairs = (s: string) =>
        walkPairs(path.join(ade, 'images', s), path.join(ade, 'annotations', s), '.jpg', '.png', problems);
      return {
        root: ade,
        train: pairs('training'),
        val: pairs('validation'),
        split: 'official',
        classes: ADE20K_CLASSES.map((name, id) => ({ name, color: classColour(id + 1) })),
        classSource: "ADE20K's SceneParsing classes",
        mapping: table([[0, -1], ...ADE20K_CLASSES.map((_, c): [number, number] => [c + 1, c])], -2),
        readMask: fileMask,
      };
    }
    case 'coco':
      return {
        root,
        train: cocoPairs(root, 'train', problems),
        val: cocoPairs(root, 'val', problems),
        split: 'official',
        classes: defaultClasses(21),
        classSource: "VOC's 20 categories and background, as torchvision's references take COCO",
        mapping: { kind: 'index', ignore: 255 },
        readMask: async (pair, maxPixels) => cocoMask(pair as CocoPair, maxPixels),
      };
    case 'folders': {
      const splits = splitPairs(root, split, problems);
      return {
        root,
        train: splits.train,
        val: splits.val,
        split: splits.source,
        classes: null,
        mapping: null,
        readMask: fileMask,
      };
    }
  }
}
