/**
 * The chapter's VOCSegDataset: the images and labels of one split, decoded once and kept in
 * memory, without the images smaller than the crop.
 */
import fs from 'node:fs';
import path from 'node:path';
import { decodeRgb, pixelsToTensor } from '../image';
import type { Tensor } from '../tensor';
import { keep } from '../tidy';
import { readLabel } from './labels';

/**
 * The VOC2012 folder of dir: dir itself when it holds ImageSets, or the tree that
 * `download` and `synthesize` write under their root (dir/VOCdevkit/VOC2012).
 */
export function resolveVocRoot(dir: string): string {
  const root = path.resolve(dir);
  const nested = path.join(root, 'VOCdevkit', 'VOC2012');
  return !fs.existsSync(path.join(root, 'ImageSets')) && fs.existsSync(nested) ? nested : root;
}

/** Options of {@link VOCSegDataset}. */
export interface VOCSegDatasetOptions {
  split: 'train' | 'val';
  /** [height, width] of the random crops; smaller images are dropped. */
  cropSize: [number, number];
  /** Where the "read N examples" line goes (default console.log; null for silence). */
  log?: ((line: string) => void) | null;
  /** Images decoded at once while loading (default 4). */
  concurrency?: number;
}

/** One decoded example: the image [H, W, 3] and its class ids [H, W], both uint8. */
export interface Example {
  name: string;
  image: Tensor;
  label: Tensor;
}

/**
 * One split of a VOC2012 tree (`root` holds ImageSets/Segmentation, JPEGImages and
 * SegmentationClass). The constructor checks that every listed file exists;
 * {@link VOCSegDataset.load} decodes them (once) with their labels as class ids, the VOC
 * boundary colour becoming the ignore index 255.
 */
export class VOCSegDataset {
  readonly root: string;
  readonly split: 'train' | 'val';
  readonly cropSize: [number, number];
  /** Names listed in the split file, in its order. */
  readonly names: readonly string[];
  #examples: Example[] | null = null;
  #loading: Promise<Example[]> | null = null;
  readonly #options: VOCSegDatasetOptions;

  constructor(root: string, options: VOCSegDatasetOptions) {
    if (options.split !== 'train' && options.split !== 'val') {
      throw new TypeError(`split: expected 'train' or 'val', got ${JSON.stringify(options.split)}`);
    }
    const [h, w] = options.cropSize ?? [];
    if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) {
      throw new RangeError(
        `cropSize: expected [height, width] of integers >= 1, got ${JSON.stringify(options.cropSize)}`,
      );
    }
    this.root = resolveVocRoot(root);
    this.split = options.split;
    this.cropSize = [h, w];
    this.#options = options;
    if (!fs.existsSync(this.root)) throw new Error(`VOC root '${this.root}' does not exist`);
    const listFile = path.join(this.root, 'ImageSets', 'Segmentation', `${this.split}.txt`);
    const listStat = fs.statSync(listFile, { throwIfNoEntry: false });
    if (!listStat) throw new Error(`no split file '${listFile}': is '${this.root}' a VOC2012 folder?`);
    if (!listStat.isFile()) throw new Error(`the split file '${listFile}' is not a file`);
    // One name a line (a UTF-8 byte-order mark and CR line ends allowed); names may hold
    // spaces and any letters, but no folder separator: nothing that could reach outside.
    this.names = fs
      .readFileSync(listFile, 'utf8')
      .replace(/^\uFEFF/, '')
      .split(/\r?\n|\r/)
      .map((line) => line.trim())
      .filter((line) => line.length > 0);
    this.names.forEach((name, i) => {
      if (/[/\\\0]/.test(name) || name === '.' || name === '..') {
        throw new Error(`${listFile} line ${i + 1}: '${name}' is not a file name inside the dataset`);
      }
    });
    for (const name of this.names) {
      for (const file of [this.imagePath(name), this.labelPath(name)]) {
        if (!fs.existsSync(file)) throw new Error(`'${file}', listed in ${listFile}, does not exist`);
      }
    }
  }

  /** Path of the JPEG image of name. */
  imagePath(name: string): string {
    return path.join(this.root, 'JPEGImages', `${name}.jpg`);
  }
  /** Path of the PNG label of name. */
  labelPath(name: string): string {
    return path.join(this.root, 'SegmentationClass', `${name}.png`);
  }

  /** Decodes every example once (later calls return the same list). */
  load(): Promise<Example[]> {
    if (this.#examples) return Promise.resolve(this.#examples);
    this.#loading ??= this.#decodeAll().then((examples) => {
      this.#examples = examples;
      return examples;
    });
    return this.#loading;
  }

  /** Examples kept (after dropping those smaller than the crop); throws before load(). */
  get examples(): Example[] {
    if (!this.#examples) throw new Error('call await dataset.load() first');
    return this.#examples;
  }

  /** Number of examples kept. */
  get length(): number {
    return this.examples.length;
  }

  async #decodeOne(name: string): Promise<Example | null> {
    const [image, labelRead] = await Promise.allSettled([
      decodeRgb(this.imagePath(name)),
      readLabel(this.labelPath(name)),
    ]);
    if (image.status === 'rejected') {
      if (labelRead.status === 'fulfilled') labelRead.value.dispose();
      throw image.reason;
    }
    if (labelRead.status === 'rejected') throw labelRead.reason;
    const [pixels, label] = [image.value, labelRead.value];
    const [labelHeight, labelWidth] = label.shape;
    if (pixels.height !== labelHeight || pixels.width !== labelWidth) {
      label.dispose();
      throw new Error(
        `label '${this.labelPath(name)}' is ${labelWidth}x${labelHeight} but its image is ` +
          `${pixels.width}x${pixels.height}`,
      );
    }
    const [h, w] = this.cropSize;
    if (pixels.height < h || pixels.width < w) {
      label.dispose();
      return null;
    }
    // The dataset owns its tensors for its lifetime, whatever tidy scope loaded it.
    return { name, image: keep(pixelsToTensor(pixels)), label: keep(label) };
  }

  async #decodeAll(): Promise<Example[]> {
    const results: (Example | null)[] = new Array(this.names.length).fill(null);
    let next = 0;
    const worker = async () => {
      while (next < this.names.length) {
        const i = next++;
        results[i] = await this.#decodeOne(this.names[i]);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.#options.concurrency ?? 4) }, worker));
    const kept = results.filter((e): e is Example => e !== null);
    const log = this.#options.log === undefined ? console.log : this.#options.log;
    log?.(
      `read ${kept.length} examples (${this.split}; ${this.names.length - kept.length} smaller than the crop dropped)`,
    );
    return kept;
  }
}
