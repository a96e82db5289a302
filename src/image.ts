/**
 * Pictures: decoding images into tensors (sharp: libvips with libjpeg-turbo and libspng),
 * the chapter's label colouring, and PNG grids of input | prediction | ground truth.
 */
import fs from 'node:fs';
import { encode as encodePng } from 'fast-png';
import sharp from 'sharp';
import { checkInteger } from './checks';
import type { Tensor } from './tensor';
import * as torch from './torch';
import { VOC_COLORMAP, VOC_VOID_COLOUR } from './voc/colours';

/** Decoded pixels, row-major [H, W, 3]. */
export interface RgbPixels {
  data: Buffer;
  height: number;
  width: number;
}

/** The default bound on the pixels of an image decoded by {@link readImage} (as sharp's own). */
export const DECODE_MAX_PIXELS = 0x3fff * 0x3fff;

/**
 * Decodes an image file to 8-bit RGB (alpha dropped, palettes expanded, grey made RGB; with
 * `orient`, turned upright by its EXIF orientation); errors name the file. An image of more
 * than maxPixels pixels is refused from its header, before decoding.
 */
export async function decodeRgb(
  file: string,
  maxPixels = DECODE_MAX_PIXELS,
  options: { orient?: boolean } = {},
): Promise<RgbPixels> {
  checkInteger(maxPixels, 'maxPixels', 1); // sharp reads a limit of 0 as none
  try {
    // sharp checks the header against limitInputPixels before it decodes; only a refused
    // file costs a second look at its header, for the size the message gives.
    const decoder = sharp(file, { failOn: 'truncated', limitInputPixels: maxPixels });
    const { data, info } = await (options.orient ? decoder.rotate() : decoder)
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true })
      .catch(async (err: Error) => {
        if (!/Input image exceeds pixel limit/.test(err.message)) throw err;
        const { width = 0, height = 0 } = await sharp(file).metadata();
        throw new Error(`it is ${width}x${height} (${width * height} pixels), more than the ${maxPixels} allowed`);
      });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return { data, height: info.height, width: info.width };
  } catch (err) {
    throw new Error(`cannot read image '${file}': ${(err as Error).message}`);
  }
}

/** pixels as a uint8 tensor [H, W, 3] (one copy). */
export function pixelsToTensor(pixels: RgbPixels): Tensor<'uint8'> {
  const bytes = new Uint8Array(pixels.data.buffer, pixels.data.byteOffset, pixels.data.length);
  return torch.tensor(bytes, { shape: [pixels.height, pixels.width, 3] });
}

/**
 * An image file as a uint8 tensor [3, H, W], like torchvision's `read_image(path, RGB)`.
 * Images of more than `maxPixels` pixels (default {@link DECODE_MAX_PIXELS}) are refused from
 * their header, before anything is decoded.
 */
export async function readImage(file: string, options: { maxPixels?: number } = {}): Promise<Tensor<'uint8'>> {
  const hwc = pixelsToTensor(await decodeRgb(file, options.maxPixels));
  return hwc.permute([2, 0, 1]).contiguous();
}

/**
 * The chapter's `label2image`: class ids (any integer tensor, any shape, any device) to
 * their colours, uint8 [..., 3] on the same device: VOC's palette, or `colours` (a dataset's,
 * index = class id). Ids outside the palette (such as the ignore index 255) are drawn in the
 * VOC boundary colour.
 */
export function label2image(
  pred: Tensor,
  colours: readonly (readonly [number, number, number])[] = VOC_COLORMAP,
): Tensor<'uint8'> {
  // The class colours, then the boundary colour for every id past them.
  const table = Uint8Array.from([...colours, VOC_VOID_COLOUR].flat());
  const colormap = torch.tensor(table, { shape: [colours.length + 1, 3], device: pred.device });
  const ids = pred.long();
  const last = colours.length - 1;
  return colormap.index([ids.maskedFill(ids.lt(0).logicalOr(ids.gt(last)), last + 1)]);
}

/**
 * Writes class ids [H, W] as a mask file labelling tools open: an indexed PNG whose palette
 * is the class colours (pixel value = class id) up to 256 classes, else a 16-bit grey PNG of
 * the ids.
 */
export async function saveMask(
  labels: Tensor,
  colours: readonly (readonly [number, number, number])[],
  file: string,
): Promise<void> {
  if (labels.ndim !== 2) throw new RangeError(`saveMask: expected class ids [H, W], got [${labels.shape}]`);
  const [height, width] = labels.shape;
  const ids = labels.cpu().to('int32').toTypedArray() as Int32Array;
  const png =
    colours.length <= 256
      ? encodePng({
          width,
          height,
          channels: 1,
          depth: 8,
          data: Uint8Array.from(ids),
          palette: colours.map((c) => [c[0], c[1], c[2]] as [number, number, number]),
        })
      : encodePng({ width, height, channels: 1, depth: 16, data: Uint16Array.from(ids) });
  await fs.promises.writeFile(file, png);
}

/** An image tensor as [H, W, 3] uint8 on the CPU: accepts [3, H, W] or [H, W, 3], uint8. */
function toHwc(image: Tensor, where: string): Tensor {
  if (image.dtype !== 'uint8' || image.ndim !== 3 || (image.shape[0] !== 3 && image.shape[2] !== 3)) {
    throw new TypeError(`${where}: expected a uint8 image [3, H, W] or [H, W, 3], got ${image.dtype} [${image.shape}]`);
  }
  const hwc = image.shape[2] === 3 ? image : image.permute([1, 2, 0]);
  return hwc.cpu().contiguous();
}

/**
 * Writes one PNG with a row per entry of rows and a column per image (the chapter shows
 * input | prediction | ground truth this way). Images are uint8 [3, H, W] or [H, W, 3]
 * (`label2image` output, `readImage` output); cells are as large as the largest image, on
 * a white background with a 4-pixel gap.
 */
export async function saveImageGrid(rows: Tensor[][], file: string, options: { gap?: number } = {}): Promise<void> {
  const gap = options.gap ?? 4;
  const cells = rows.map((row, r) => row.map((image, c) => toHwc(image, `rows[${r}][${c}]`)));
  const columns = Math.max(0, ...cells.map((row) => row.length));
  if (cells.length === 0 || columns === 0) throw new RangeError('saveImageGrid: no images given');
  const cellH = Math.max(...cells.flat().map((t) => t.shape[0]));
  const cellW = Math.max(...cells.flat().map((t) => t.shape[1]));
  const composites = cells.flatMap((row, r) =>
    row.map((t, c) => ({
      input: Buffer.from((t.toTypedArray() as Uint8Array).buffer),
      raw: { width: t.shape[1], height: t.shape[0], channels: 3 as const },
      top: r * (cellH + gap),
      left: c * (cellW + gap),
    })),
  );
  const width = columns * cellW + (columns - 1) * gap;
  const height = cells.length * cellH + (cells.length - 1) * gap;
  await sharp({ create: { width, height, channels: 3, background: { r: 255, g: 255, b: 255 } } })
    .composite(composites)
    .png()
    .toFile(file);
}

/** A class present in a label map: its id, name, pixel count and share of the pixels. */
export interface ClassFound {
  id: number;
  name: string;
  pixels: number;
  share: number;
}

/** The classes of a label map (class ids, any integer dtype), most pixels first, named from names. */
export function classesFound(labels: Tensor, names: readonly string[]): ClassFound[] {
  const ids = labels.to('int32').toTypedArray();
  const counts = new Map<number, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return [...counts.entries()]
    .map(([id, pixels]) => ({ id, name: names[id] ?? `class ${id}`, pixels, share: pixels / ids.length }))
    .sort((a, b) => b.pixels - a.pixels || a.id - b.id);
}

/** The image blended half and half with its label colours (label2image's), uint8 [H, W, 3]. */
export function overlay(image: Tensor, colours: Tensor): Tensor {
  const hwc = toHwc(image, 'image');
  return hwc.to('float32').add(colours.cpu().to('float32')).div(2).add(0.5).to('uint8');
}
