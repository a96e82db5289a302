/**
 * COCO's instance annotations as semantic masks, as torchvision's segmentation references
 * make them (`references/segmentation/coco_utils.py`): only VOC's 20 categories (plus
 * background), each annotation's polygons or run-length encoding rasterised as pycocotools
 * rasterises them (`frPyObjects` + `decode`: polygons drawn on a 5x finer grid, boundary
 * pixels whose centre the outline passes counted in), the class the largest category index
 * over an annotation's pixels, and pixels of more than one annotation ignored (255). Training
 * images whose kept annotations cover no more than 1000 pixels of area are left out, as
 * `_coco_remove_images_without_annotations` does.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { readText } from './classes';
import type { Pair, Problem } from './folders';
import type { RawMask } from './masks';

/** COCO category ids of VOC's classes, index = class id (0: background), torchvision's CAT_LIST. */
export const COCO_VOC_CATEGORIES = [0, 5, 2, 16, 9, 44, 6, 3, 17, 62, 21, 67, 18, 19, 4, 1, 64, 20, 63, 7, 72];

const rleSchema = z.object({
  counts: z.union([z.array(z.int().min(0)), z.string()]),
  size: z.tuple([z.int(), z.int()]),
});
const annotationSchema = z.object({
  image_id: z.int(),
  category_id: z.int(),
  area: z.number().default(0),
  segmentation: z.union([z.array(z.array(z.number())), rleSchema]),
});
const instancesSchema = z.object({
  images: z.array(z.object({ id: z.int(), file_name: z.string(), height: z.int().min(1), width: z.int().min(1) })),
  annotations: z.array(z.unknown()),
});

type Annotation = z.infer<typeof annotationSchema>;

/** A run-length encoding: alternating runs of 0 and 1, column by column (COCO's order), of an h x w mask. */
interface Rle {
  h: number;
  w: number;
  counts: number[];
}

/** pycocotools' rleFrPoly: a closed polygon [x0, y0, x1, y1, ...] as an RLE of an h x w mask. */
export function polygonRle(xy: readonly number[], h: number, w: number): Rle {
  const scale = 5;
  const k = Math.floor(xy.length / 2);
  const x = Array.from({ length: k + 1 }, (_, j) => Math.trunc(scale * xy[2 * (j % k)] + 0.5));
  const y = Array.from({ length: k + 1 }, (_, j) => Math.trunc(scale * xy[2 * (j % k) + 1] + 0.5));
  // Dense points along every edge of the upsampled outline.
  const u: number[] = [];
  const v: number[] = [];
  for (let j = 0; j < k; j++) {
    let [xs, xe, ys, ye] = [x[j], x[j + 1], y[j], y[j + 1]];
    const dx = Math.abs(xe - xs);
    const dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) [xs, xe, ys, ye] = [xe, xs, ye, ys];
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    const steps = Math.max(dx, dy);
    for (let d = 0; d <= steps; d++) {
      const t = flip ? steps - d : d;
      if (dx >= dy) {
        u.push(t + xs);
        v.push(Math.trunc(ys + s * t + 0.5));
      } else {
        v.push(t + ys);
        u.push(Math.trunc(xs + s * t + 0.5));
      }
    }
  }
  // Where the outline crosses a pixel column's centre, back on the image's grid: the starts
  // and ends of the runs, as positions in column-major order.
  const cuts: number[] = [];
  for (let j = 1; j < u.length; j++) {
    if (u[j] === u[j - 1]) continue;
    const xd = ((u[j] < u[j - 1] ? u[j] : u[j] - 1) + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > w - 1) continue;
    const yd = Math.ceil(Math.min(Math.max((Math.min(v[j], v[j - 1]) + 0.5) / scale - 0.5, 0), h));
    cuts.push(xd * h + yd);
  }
  cuts.push(h * w);
  cuts.sort((a, b) => a - b);
  // Differences between cuts are the runs; an empty run merges its neighbours.
  const runs = cuts.map((c, j) => c - (j > 0 ? cuts[j - 1] : 0));
  const counts = [runs[0]];
  for (let j = 1; j < runs.length; ) {
    if (runs[j] > 0) counts.push(runs[j++]);
    else {
      j++;
      if (j < runs.length) counts[counts.length - 1] += runs[j++];
    }
  }
  return { h, w, counts };
}

/** pycocotools' compressed RLE string (6 bits a character, each count after the second relative to the one two before). */
export function stringRle(s: string, h: number, w: number): Rle {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let value = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error('its RLE string ends inside a number');
      const c = s.charCodeAt(p) - 48;
      value |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) value |= -1 << (5 * k);
    }
    if (counts.length > 2) value += counts[counts.length - 2];
    counts.push(value >>> 0);
  }
  return { h, w, counts };
}

/** Sets the 1-runs of rle in mask (row-major h x w), adding 1 per pixel covered. */
function paintRle(rle: Rle, into: Uint8Array, h: number, w: number): void {
  if (rle.h !== h || rle.w !== w) throw new Error(`its RLE is ${rle.w}x${rle.h}, the image ${w}x${h}`);
  let position = 0;
  for (let j = 0; j < rle.counts.length; j++) {
    const end = Math.min(position + rle.counts[j], h * w);
    if (j % 2 === 1) {
      for (let q = position; q < end; q++) into[(q % h) * w + Math.floor(q / h)] = 1;
    }
    position = end;
  }
}

/** The union of an annotation's shapes, 0/1 row-major (pycocotools' frPyObjects, decode, any). */
function annotationMask(segmentation: Annotation['segmentation'], h: number, w: number): Uint8Array {
  const mask = new Uint8Array(h * w);
  if (Array.isArray(segmentation)) {
    // Every shape is a polygon, one of 2 points (4 numbers) too, where pycocotools'
    // frPyObjects would take it for boxes and fail.
    for (const xy of segmentation) if (xy.length >= 2) paintRle(polygonRle(xy, h, w), mask, h, w);
  } else {
    const [rh, rw] = segmentation.size;
    const rle =
      typeof segmentation.counts === 'string'
        ? stringRle(segmentation.counts, rh, rw)
        : { h: rh, w: rw, counts: segmentation.counts };
    paintRle(rle, mask, h, w);
  }
  return mask;
}

/** The semantic mask of an image's annotations (already only VOC's categories), as torchvision merges them. */
export function semanticMask(annotations: readonly Annotation[], h: number, w: number): Uint8Array {
  const target = new Uint8Array(h * w);
  const covered = new Uint8Array(h * w);
  for (const a of annotations) {
    const cls = COCO_VOC_CATEGORIES.indexOf(a.category_id);
    const mask = annotationMask(a.segmentation, h, w);
    for (let i = 0; i < mask.length; i++) {
      if (mask[i] === 0) continue;
      if (cls > target[i]) target[i] = cls;
      if (covered[i] < 2) covered[i] += 1;
    }
  }
  for (let i = 0; i < target.length; i++) if (covered[i] > 1) target[i] = 255;
  return target;
}

/** A COCO pair: the image, and its mask made from the annotations. */
export interface CocoPair extends Pair {
  height: number;
  width: number;
  annotations: Annotation[];
}

/** The instances file of a split at root, if any. */
export const cocoInstances = (root: string, split: 'train' | 'val') =>
  path.join(root, 'annotations', `instances_${split}2017.json`);

/**
 * The pairs of a COCO split (root/{train,val}2017/ and its instances file), with their
 * annotations of VOC's categories: every val image, the train images whose annotations'
 * area adds up to more than 1000 pixels (torchvision's filter).
 */
export function cocoPairs(root: string, split: 'train' | 'val', problems: Problem[]): CocoPair[] {
  const file = cocoInstances(root, split);
  if (!fs.existsSync(file)) {
    problems.push({ file, message: 'is missing' });
    return [];
  }
  let json: z.infer<typeof instancesSchema>;
  try {
    json = instancesSchema.parse(JSON.parse(readText(file)));
  } catch (err) {
    problems.push({ file, message: `is no COCO instances file: ${(err as Error).message.split('\n')[0]}` });
    return [];
  }
  const byImage = new Map<number, Annotation[]>();
  json.annotations.forEach((raw, i) => {
    const parsed = annotationSchema.safeParse(raw);
    if (!parsed.success) {
      problems.push({
        file,
        message: `annotation ${i}: ${parsed.error.issues[0].path.join('.')}: ${parsed.error.issues[0].message}`,
      });
      return;
    }
    if (!COCO_VOC_CATEGORIES.includes(parsed.data.category_id) || parsed.data.category_id === 0) return;
    const list = byImage.get(parsed.data.image_id) ?? [];
    list.push(parsed.data);
    byImage.set(parsed.data.image_id, list);
  });
  const folder = path.join(root, `${split}2017`);
  const pairs: CocoPair[] = [];
  for (const image of json.images) {
    const annotations = byImage.get(image.id) ?? [];
    if (split === 'train' && annotations.reduce((sum, a) => sum + a.area, 0) <= 1000) continue;
    if (/[/\\\0]/.test(image.file_name) || image.file_name.startsWith('.')) {
      problems.push({ file, message: `image ${image.id}: '${image.file_name}' is not a file name inside ${folder}` });
      continue;
    }
    const stem = image.file_name.replace(/\.[^.]*$/, '');
    pairs.push({ stem, image: path.join(folder, image.file_name), mask: file, ...image, annotations });
  }
  return pairs.sort((a, b) => (a.stem < b.stem ? -1 : a.stem > b.stem ? 1 : 0));
}

/** The semantic mask of a COCO pair as a one-value-per-pixel mask (classes 0..20, 255 ignored). */
export function cocoMask(pair: CocoPair, maxPixels: number): RawMask {
  if (pair.width * pair.height > maxPixels) {
    throw new Error(
      `its image is ${pair.width}x${pair.height} by the annotations, more than the ${maxPixels} pixels allowed`,
    );
  }
  return {
    width: pair.width,
    height: pair.height,
    channels: 1,
    data: semanticMask(pair.annotations, pair.height, pair.width),
  };
}
