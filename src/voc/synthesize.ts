/**
 * A synthetic VOC2012: a real VOCdevkit tree (JPEG images, palette PNG labels with the VOC
 * palette, split files) of scenes with shapes whose colour and form tell their class, so
 * the FCN can learn them. It is the default data of `npm start` and of the tests.
 */
import fs from 'node:fs';
import path from 'node:path';
import { encode } from 'fast-png';
import sharp from 'sharp';
import { VOC_COLORMAP, VOC_IGNORE_INDEX, VOC_VOID_COLOUR } from './colours';
import { labelToClassIds } from './labels';
import { seededRandom } from './random';

/** Options of {@link synthesize}. */
export interface SynthesizeOptions {
  /** Number of images (default 48). */
  count?: number;
  /** Image height (default 160). */
  height?: number;
  /** Image width (default 240). */
  width?: number;
  /** Seed of the scenes (default 0): same seed, same files. */
  seed?: number;
  /** Share of the images listed in val.txt (default 0.25); the rest are in train.txt. */
  valFraction?: number;
  /** Classes drawn (default 1..20, every VOC class). */
  classes?: number[];
}

interface Shape {
  cls: number;
  kind: 'rect' | 'circle' | 'triangle';
  x: number;
  y: number;
  r: number;
}

function geometry(s: Shape): string {
  switch (s.kind) {
    case 'rect':
      return `<rect x="${s.x - s.r}" y="${s.y - s.r * 0.7}" width="${2 * s.r}" height="${1.4 * s.r}"`;
    case 'circle':
      return `<circle cx="${s.x}" cy="${s.y}" r="${s.r}"`;
    default:
      return `<polygon points="${s.x},${s.y - s.r} ${s.x + s.r},${s.y + s.r * 0.8} ${s.x - s.r},${s.y + s.r * 0.8}"`;
  }
}

const rgb = (c: readonly number[]) => `rgb(${c[0]},${c[1]},${c[2]})`;

/** The photo: a textured gradient background and each shape in its class's hue. */
function imageSvg(shapes: Shape[], width: number, height: number, random: () => number): string {
  const bg = [0, 1].map(() => `hsl(${Math.floor(random() * 360)},25%,${40 + Math.floor(random() * 30)}%)`);
  const body = shapes
    .map((s) => {
      const hue = Math.round((s.cls * 360) / 21);
      const light = 45 + Math.floor(random() * 10);
      return `${geometry(s)} fill="hsl(${hue},80%,${light}%)" stroke="hsl(${hue},60%,25%)" stroke-width="2"/>`;
    })
    .join('');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="${bg[0]}"/>` +
    `<stop offset="1" stop-color="${bg[1]}"/></linearGradient>` +
    `<filter id="n"><feTurbulence type="fractalNoise" baseFrequency="0.08" seed="${Math.floor(random() * 1000)}"/>` +
    '<feColorMatrix type="saturate" values="0"/></filter></defs>' +
    `<rect width="100%" height="100%" fill="url(#g)"/><rect width="100%" height="100%" filter="url(#n)" opacity="0.25"/>` +
    `${body}</svg>`
  );
}

/** The label: class colours without anti-aliasing and a boundary band in the void colour. */
function labelSvg(shapes: Shape[], width: number, height: number): string {
  const body = shapes
    .map((s) => `${geometry(s)} fill="${rgb(VOC_COLORMAP[s.cls])}" stroke="${rgb(VOC_VOID_COLOUR)}" stroke-width="3"/>`)
    .join('');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" shape-rendering="crispEdges">` +
    `<rect width="100%" height="100%" fill="rgb(0,0,0)"/>${body}</svg>`
  );
}

/** The VOC palette: class colours at their ids, the boundary colour at the ignore index. */
function vocPalette(): [number, number, number][] {
  const palette: [number, number, number][] = Array.from({ length: 256 }, () => [0, 0, 0]);
  VOC_COLORMAP.forEach((c, i) => {
    palette[i] = [c[0], c[1], c[2]];
  });
  palette[VOC_IGNORE_INDEX] = [...VOC_VOID_COLOUR];
  return palette;
}

/** The file that marks a VOC2012 tree as synthetic (written by {@link synthesize}). */
export const SYNTHETIC_MARKER = '.fcn-torch-synthetic';

/** A synthetic tree is only ever written where there is none, or a synthetic one. */
function refuseRealDataset(voc: string): void {
  if (!fs.existsSync(voc) || fs.existsSync(path.join(voc, SYNTHETIC_MARKER))) return;
  if (fs.readdirSync(voc).length === 0) return;
  throw new Error(
    `refusing to write a synthetic VOC2012 into '${voc}': it holds a dataset that synthesize did not write ` +
      '(the real VOC2012?); give another folder',
  );
}

/**
 * Writes a synthetic VOC2012 under root (root/VOCdevkit/VOC2012) and returns that VOC2012
 * folder, ready for {@link VOCSegDataset} and {@link loadDataVoc}.
 */
export async function synthesize(root: string, options: SynthesizeOptions = {}): Promise<string> {
  const count = options.count ?? 48;
  const height = options.height ?? 160;
  const width = options.width ?? 240;
  const classes = options.classes ?? Array.from({ length: 20 }, (_, i) => i + 1);
  const valFraction = options.valFraction ?? 0.25;
  for (const [name, v, min] of [
    ['count', count, 2],
    ['height', height, 8],
    ['width', width, 8],
  ] as const) {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${name}: expected an integer >= ${min}, got ${v}`);
  }
  if (!(valFraction > 0 && valFraction < 1))
    throw new RangeError(`valFraction: expected 0 < v < 1, got ${valFraction}`);
  if (classes.length === 0 || !classes.every((c) => Number.isInteger(c) && c >= 1 && c <= 20)) {
    throw new RangeError('classes: expected class ids between 1 and 20');
  }
  const voc = path.join(path.resolve(root), 'VOCdevkit', 'VOC2012');
  refuseRealDataset(voc);
  for (const dir of ['JPEGImages', 'SegmentationClass', path.join('ImageSets', 'Segmentation')]) {
    fs.mkdirSync(path.join(voc, dir), { recursive: true });
  }
  const random = seededRandom(options.seed ?? 0);
  const palette = vocPalette();
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `synth_${String(i).padStart(6, '0')}`;
    names.push(name);
    const shapes: Shape[] = Array.from({ length: 1 + Math.floor(random() * 3) }, () => {
      const cls = classes[Math.floor(random() * classes.length)];
      const r = (0.15 + random() * 0.15) * Math.min(height, width);
      return {
        cls,
        kind: (['rect', 'circle', 'triangle'] as const)[cls % 3],
        x: Math.round(r + random() * (width - 2 * r)),
        y: Math.round(r + random() * (height - 2 * r)),
        r: Math.round(r),
      };
    });
    await sharp(Buffer.from(imageSvg(shapes, width, height, random)))
      .removeAlpha()
      .jpeg({ quality: 90 })
      .toFile(path.join(voc, 'JPEGImages', `${name}.jpg`));
    const { data, info } = await sharp(Buffer.from(labelSvg(shapes, width, height)))
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const ids = await labelToClassIds({ data, height: info.height, width: info.width });
    const png = encode({ width, height, data: ids.toTypedArray() as Uint8Array, depth: 8, channels: 1, palette });
    ids.dispose();
    fs.writeFileSync(path.join(voc, 'SegmentationClass', `${name}.png`), png);
  }
  const valCount = Math.max(1, Math.round(count * valFraction));
  const lists = path.join(voc, 'ImageSets', 'Segmentation');
  fs.writeFileSync(path.join(lists, 'train.txt'), `${names.slice(0, count - valCount).join('\n')}\n`);
  fs.writeFileSync(path.join(lists, 'val.txt'), `${names.slice(count - valCount).join('\n')}\n`);
  fs.writeFileSync(
    path.join(voc, SYNTHETIC_MARKER),
    `synthetic VOC2012 written by fcn-torch (seed ${options.seed ?? 0})\n`,
  );
  return voc;
}
