/**
 * The image/mask folder layout: `images/` beside `masks/` (or `annotations/`, `labels/`),
 * files paired by their path without extension (sub-folders allowed), and its splits:
 * `train/` and `val/` each holding such folders, or `train.txt`/`val.txt` of stems at the
 * root, or else a seeded random split.
 */
import fs from 'node:fs';
import path from 'node:path';
import { seededRandom } from '../voc/random';
import { readLines } from './classes';

/** The folders a layout's masks may be in, in the order they are looked for. */
export const MASK_FOLDERS = ['masks', 'annotations', 'labels'] as const;
/** Image files by extension (what sharp decodes). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.bmp', '.gif', '.avif', '.heic'];
/** Mask files by extension (lossless formats; JPEG masks would blur their labels). */
export const MASK_EXTENSIONS = ['.png', '.tif', '.tiff', '.bmp', '.gif', '.webp'];

/** One image and its mask. */
export interface Pair {
  /** The path below images/ without extension, with '/' between folders: what split files list. */
  stem: string;
  image: string;
  mask: string;
}

/** Something wrong with one file of a dataset. */
export interface Problem {
  file: string;
  message: string;
}

const isDir = (p: string) => fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;

/** The mask folder beside images/ in dir, or null. */
function maskFolder(dir: string): string | null {
  for (const name of MASK_FOLDERS) if (isDir(path.join(dir, name))) return path.join(dir, name);
  return null;
}

/** True when dir holds images/ and a mask folder (itself, or in train/ and val/). */
export function isFolderLayout(dir: string): boolean {
  const holds = (d: string) => isDir(path.join(d, 'images')) && maskFolder(d) !== null;
  return holds(dir) || (holds(path.join(dir, 'train')) && holds(path.join(dir, 'val')));
}

/** Files below dir with one of extensions, by stem ('/'-separated path without extension); hidden files skipped. */
function filesByStem(dir: string, extensions: readonly string[], problems: Problem[]): Map<string, string> {
  const found = new Map<string, string>();
  const visited = new Set<string>(); // real paths of the folders walked: a link back up is walked once
  const walk = (sub: string) => {
    const real = fs.realpathSync(path.join(dir, sub));
    if (visited.has(real)) return;
    visited.add(real);
    for (const entry of fs.readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      // Symbolic links are followed (a dataset may link to where its files are kept).
      const stat = entry.isSymbolicLink() ? fs.statSync(path.join(dir, rel), { throwIfNoEntry: false }) : entry;
      if (!stat) {
        problems.push({ file: path.join(dir, rel), message: 'is a symbolic link to nothing' });
        continue;
      }
      if (stat.isDirectory()) {
        walk(rel);
        continue;
      }
      const ext = path.extname(entry.name).toLowerCase();
      if (!stat.isFile() || !extensions.includes(ext)) continue;
      const stem = rel.slice(0, rel.length - ext.length);
      const file = path.join(dir, rel);
      const other = found.get(stem);
      if (other !== undefined) {
        problems.push({ file, message: `has the same name as '${other}'; keep one file per name` });
        continue;
      }
      found.set(stem, file);
    }
  };
  walk('');
  return found;
}

/** The pairs of one folder holding images/ and a mask folder, sorted by stem; unmatched files are problems. */
export function scanPairs(dir: string, problems: Problem[]): Pair[] {
  const masksDir = maskFolder(dir);
  const imagesDir = path.join(dir, 'images');
  if (!masksDir || !isDir(imagesDir)) {
    throw new Error(`'${dir}' holds no images/ folder beside a ${MASK_FOLDERS.join('/')} folder`);
  }
  const images = filesByStem(imagesDir, IMAGE_EXTENSIONS, problems);
  const masks = filesByStem(masksDir, MASK_EXTENSIONS, problems);
  const pairs: Pair[] = [];
  for (const [stem, image] of images) {
    const mask = masks.get(stem);
    if (mask === undefined) {
      problems.push({ file: image, message: `has no mask (looked for ${path.join(masksDir, stem)}.png and the like)` });
    } else {
      pairs.push({ stem, image, mask });
    }
  }
  for (const [stem, mask] of masks) {
    if (!images.has(stem))
      problems.push({ file: mask, message: `has no image (looked for ${path.join(imagesDir, stem)}.*)` });
  }
  return pairs.sort((a, b) => (a.stem < b.stem ? -1 : a.stem > b.stem ? 1 : 0));
}

/** How a dataset's split was made, for the report and the run's config. */
export type SplitSource = 'folders' | 'files' | 'random' | 'run';

/** A stored split: the val stems (train is every other pair). */
export interface SplitFile {
  val: string[];
}

/**
 * The train and val pairs of a folder-layout dataset at root: `train/` and `val/` folders,
 * or `train.txt`/`val.txt` at the root (one given: the other is the rest), or `splitFile`
 * (a split an earlier run wrote), or a random split of valFraction of the pairs (at least
 * one), seeded. Stems a split file lists that are not pairs are problems.
 */
export function splitPairs(
  root: string,
  options: { valFraction: number; seed: number; splitFile?: string },
  problems: Problem[],
): { train: Pair[]; val: Pair[]; source: SplitSource } {
  if (isDir(path.join(root, 'train')) && isDir(path.join(root, 'val')) && !isDir(path.join(root, 'images'))) {
    return {
      train: scanPairs(path.join(root, 'train'), problems),
      val: scanPairs(path.join(root, 'val'), problems),
      source: 'folders',
    };
  }
  const pairs = scanPairs(root, problems);
  const byStem = new Map(pairs.map((p) => [p.stem, p]));
  const listed = (file: string, stems: string[]): Set<string> => {
    const out = new Set<string>();
    stems.forEach((stem, i) => {
      if (byStem.has(stem)) out.add(stem);
      else problems.push({ file, message: `line ${i + 1}: '${stem}' is no image with a mask in ${root}` });
    });
    return out;
  };
  const [trainFile, valFile] = ['train.txt', 'val.txt'].map((f) => path.join(root, f));
  const hasTrain = fs.existsSync(trainFile);
  const hasVal = fs.existsSync(valFile);
  if (hasTrain || hasVal) {
    const train = hasTrain ? listed(trainFile, readLines(trainFile)) : null;
    const val = hasVal ? listed(valFile, readLines(valFile)) : null;
    return {
      train: pairs.filter((p) => (train ? train.has(p.stem) : !val?.has(p.stem))),
      val: pairs.filter((p) => (val ? val.has(p.stem) : !train?.has(p.stem))),
      source: 'files',
    };
  }
  if (options.splitFile && fs.existsSync(options.splitFile)) {
    let stored: SplitFile;
    try {
      stored = JSON.parse(fs.readFileSync(options.splitFile, 'utf8')) as SplitFile;
      if (!Array.isArray(stored.val) || !stored.val.every((s) => typeof s === 'string')) throw new Error('no val list');
    } catch (err) {
      throw new Error(`the split file '${options.splitFile}' is not one fcn train wrote: ${(err as Error).message}`);
    }
    const val = listed(options.splitFile, stored.val);
    return { train: pairs.filter((p) => !val.has(p.stem)), val: pairs.filter((p) => val.has(p.stem)), source: 'run' };
  }
  const order = pairs.map((_, i) => i);
  const random = seededRandom(options.seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  // At least one val image (and one train image) unless the fraction is 0.
  const share = Math.round(options.valFraction * pairs.length);
  const count = options.valFraction === 0 || pairs.length < 2 ? 0 : Math.min(pairs.length - 1, Math.max(1, share));
  const val = new Set(order.slice(0, count));
  return {
    train: pairs.filter((_, i) => !val.has(i)),
    val: pairs.filter((_, i) => val.has(i)),
    source: 'random',
  };
}
