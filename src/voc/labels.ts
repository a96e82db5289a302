/**
 * VOC label images to class ids: each palette colour becomes its class, the boundary colour
 * the ignore index, computed natively off the event loop.
 *
 * VOC's labels are 8-bit indexed PNGs. sharp (libvips) can only hand them over expanded to
 * RGB, which then has to be mapped back colour by colour; {@link readLabel} reads such a file
 * itself instead: the chunks here, the inflation by Node's zlib (on its thread pool), the
 * rows' filters and the index-to-class mapping natively.
 */
import fs from 'node:fs/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { checkInteger } from '../checks';
import { DECODE_MAX_PIXELS, decodeRgb, pixelsToTensor, type RgbPixels } from '../image';
import { native } from '../native';
import { Tensor } from '../tensor';
import * as torch from '../torch';

const inflate = promisify(zlib.inflate);
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * Class ids uint8 [H, W] of RGB label pixels, computed natively off the event loop: the
 * boundary colour becomes the ignore index, any colour outside the palette is an error.
 */
export async function labelToClassIds(pixels: RgbPixels): Promise<Tensor<'uint8'>> {
  const rgb = pixelsToTensor(pixels);
  try {
    return new Tensor<'uint8'>(await native.voc.labelIndices(rgb.native));
  } finally {
    rgb.dispose();
  }
}

/** What class ids need of a PNG of one byte a pixel: its size, palette (if any) and compressed image data. */
export interface IndexedPng {
  width: number;
  height: number;
  /** PLTE's colours; null for a grey image. */
  palette: Buffer | null;
  compressed: Buffer;
}

/**
 * The parts of an 8-bit, non-interlaced PNG of one sample a pixel: indexed (the format of
 * VOC's labels), or also grey when `grey` is true; null for any other image. Every chunk's
 * CRC is checked; a damaged or truncated file throws.
 */
export function parseIndexedPng(bytes: Buffer, maxPixels: number, grey = false): IndexedPng | null {
  if (bytes.length < PNG_SIGNATURE.length || !bytes.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE)) {
    return null;
  }
  let header: { width: number; height: number; colourType: number } | undefined;
  let palette: Buffer | undefined;
  const idat: Buffer[] = [];
  for (let offset = PNG_SIGNATURE.length; ; ) {
    if (offset + 12 > bytes.length)
      throw new Error(`truncated: it ends at byte ${bytes.length}, before its IEND chunk`);
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString('latin1', offset + 4, offset + 8);
    const end = offset + 12 + length;
    if (end > bytes.length) throw new Error(`truncated: its ${type} chunk runs past the end of the file`);
    if (zlib.crc32(bytes.subarray(offset + 4, end - 4)) !== bytes.readUInt32BE(end - 4)) {
      throw new Error(`its ${type} chunk at byte ${offset} fails its CRC check`);
    }
    const body = bytes.subarray(offset + 8, end - 4);
    offset = end;
    if (!header) {
      if (type !== 'IHDR' || length !== 13) throw new Error('its first chunk is not a PNG header (IHDR)');
      const [width, height] = [body.readUInt32BE(0), body.readUInt32BE(4)];
      const [depth, colourType, compression, filter, interlace] = body.subarray(8, 13);
      if (width * height > maxPixels) {
        throw new Error(`it is ${width}x${height} (${width * height} pixels), more than the ${maxPixels} allowed`);
      }
      const oneSample = colourType === 3 || (grey && colourType === 0);
      if (depth !== 8 || !oneSample || compression !== 0 || filter !== 0 || interlace !== 0) return null;
      if (width === 0 || height === 0) throw new Error(`its header gives a size of ${width}x${height}`);
      header = { width, height, colourType };
    } else if (type === 'PLTE') {
      if (length === 0 || length % 3 !== 0 || length > 768) {
        throw new Error(`its palette is ${length} bytes, not 3 per colour for 1 to 256 colours`);
      }
      palette = body;
    } else if (type === 'IDAT') {
      idat.push(body);
    } else if (type === 'IEND') {
      break;
    }
  }
  if (!header) throw new Error('it has no PNG header (IHDR)');
  if (!palette && header.colourType === 3) throw new Error('it is an indexed PNG without a palette (PLTE)');
  if (idat.length === 0) throw new Error('it has no image data (IDAT)');
  const { width, height, colourType } = header;
  return { width, height, palette: colourType === 3 ? (palette as Buffer) : null, compressed: Buffer.concat(idat) };
}

/**
 * A regular file's bytes, refusing from its size a file larger than an image of maxPixels
 * pixels stored uncompressed at 8 bytes a pixel (16-bit RGBA), with 64 MiB of metadata, could be.
 */
export async function readBounded(file: string, maxPixels: number): Promise<Buffer> {
  const handle = await fs.open(file);
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Error('it is not a regular file');
    const limit = 8 * maxPixels + 2 ** 26;
    if (stat.size > limit) {
      throw new Error(`it is ${stat.size} bytes, more than an image of ${maxPixels} pixels takes`);
    }
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/** PNG image data inflated, refusing to inflate past what width x height pixels take. */
export async function inflateRows(png: IndexedPng): Promise<Buffer> {
  const size = png.height * (png.width + 1);
  try {
    // One output chunk (Node's zlib makes a thread-pool round trip per chunk, 16 KiB by
    // default), but no larger than the data could inflate to (deflate's most is 1032:1).
    const chunkSize = Math.max(64, Math.min(size, png.compressed.length * 1032 + 64));
    return await inflate(png.compressed, { maxOutputLength: size, chunkSize });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new Error(`its image data inflates to more than the ${size} bytes of ${png.width}x${png.height} pixels`);
    }
    throw new Error(`its image data does not inflate: ${(err as Error).message}`);
  }
}

/**
 * The class ids uint8 [H, W] of a VOC label file: each palette colour becomes its class,
 * the boundary colour the ignore index, any other colour is an error naming the colour and
 * where it is. Indexed PNGs are read without expanding them to RGB; any other image goes
 * through {@link decodeRgb}. Files of more than `maxPixels` pixels (default
 * {@link DECODE_MAX_PIXELS}) are refused from their header. Errors name the file.
 */
export async function readLabel(file: string, options: { maxPixels?: number } = {}): Promise<Tensor<'uint8'>> {
  const maxPixels = checkInteger(options.maxPixels ?? DECODE_MAX_PIXELS, 'maxPixels', 1);
  let png: IndexedPng | null;
  let rows: Buffer;
  try {
    png = parseIndexedPng(await readBounded(file, maxPixels), maxPixels);
    rows = png ? await inflateRows(png) : Buffer.alloc(0);
  } catch (err) {
    throw new Error(`cannot read image '${file}': ${(err as Error).message}`);
  }
  const pixels = png ? null : await decodeRgb(file, maxPixels);
  try {
    if (pixels) return await labelToClassIds(pixels);
    const { width, height } = png as IndexedPng;
    const palette = (png as IndexedPng).palette as Buffer;
    return await torch.tidy(async () => {
      const scanlines = torch.tensor(new Uint8Array(rows.buffer, rows.byteOffset, rows.length), {
        shape: [rows.length],
      });
      const colours = torch.tensor(new Uint8Array(palette.buffer, palette.byteOffset, palette.length), {
        shape: [palette.length / 3, 3],
      });
      return new Tensor<'uint8'>(await native.voc.paletteLabelIndices(scanlines.native, height, width, colours.native));
    });
  } catch (err) {
    throw new Error(`label '${file}': ${(err as Error).message}`);
  }
}
