/**
 * Segmentation masks as people save them, to class ids. A mask is first read as it is
 * ({@link readMask}: PNGs of any bit depth by fast-png, palette indices kept as indices;
 * other images by sharp, EXIF orientation applied), then the dataset decides once, from every
 * mask, how values become classes ({@link MaskMapping}: indices, binary 0/255, or colours
 * through the class file), and {@link toClassIds} applies it.
 */
import { decode } from 'fast-png';
import sharp from 'sharp';
import { inflateRows, parseIndexedPng, readBounded } from '../voc/labels';

/** A mask as stored: one value per pixel (indices, or grey levels), or RGB colours. */
export interface RawMask {
  width: number;
  height: number;
  /** 1: a value per pixel (grey or palette index); 3: RGB. Alpha is dropped. */
  channels: 1 | 3;
  /** Row-major, channels interleaved; 16-bit PNGs give a Uint16Array. */
  data: Uint8Array | Uint16Array;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Sub-byte samples (PNG depths 1, 2, 4) unpacked to one byte each, rows padded to whole bytes as PNG packs them. */
function unpackBits(packed: Uint8Array, width: number, height: number, depth: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const rowBytes = Math.ceil((width * depth) / 8);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      out[y * width + x] = (packed[y * rowBytes + (bit >> 3)] >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

/** PNG's Paeth predictor of a byte from its left (a), upper (b) and upper-left (c) neighbours. */
function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/** The pixels of inflated PNG scanlines of one byte a pixel, each row's filter reversed. */
function unfilterRows(rows: Buffer, width: number, height: number): Uint8Array {
  if (rows.length !== height * (width + 1)) {
    throw new Error(`its image data inflates to ${rows.length} bytes, not the ${height * (width + 1)} of its rows`);
  }
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const src = y * (width + 1) + 1;
    const at = y * width;
    const up = at - width; // y > 0 only; the first row's upper neighbours are zeros
    const filter = rows[src - 1];
    out.set(rows.subarray(src, src + width), at);
    if (filter === 1) {
      for (let x = 1; x < width; x++) out[at + x] += out[at + x - 1];
    } else if (filter === 2) {
      if (y > 0) for (let x = 0; x < width; x++) out[at + x] += out[up + x];
    } else if (filter === 3) {
      for (let x = 0; x < width; x++) {
        out[at + x] += ((x > 0 ? out[at + x - 1] : 0) + (y > 0 ? out[up + x] : 0)) >> 1;
      }
    } else if (filter === 4) {
      for (let x = 0; x < width; x++) {
        const left = x > 0 ? out[at + x - 1] : 0;
        const above = y > 0 ? out[up + x] : 0;
        out[at + x] += paeth(left, above, x > 0 && y > 0 ? out[up + x - 1] : 0);
      }
    } else if (filter !== 0) {
      throw new Error(`row ${y} has PNG filter type ${filter}, not one of 0-4`);
    }
  }
  return out;
}

/** Only the first `keep` of every `channels` samples. */
function dropChannels<T extends Uint8Array | Uint16Array>(data: T, channels: number, keep: number): T {
  if (channels === keep) return data;
  const pixels = data.length / channels;
  const out = new (data.constructor as { new (n: number): T })(pixels * keep);
  for (let i = 0; i < pixels; i++) for (let k = 0; k < keep; k++) out[i * keep + k] = data[i * channels + k];
  return out;
}

/**
 * A mask file as stored: PNGs by fast-png (1- to 16-bit grey, palette indices, RGB; alpha
 * dropped), other formats by sharp with EXIF orientation applied. Files of more than
 * maxPixels pixels are refused. Errors name the file.
 */
export async function readMask(file: string, maxPixels: number): Promise<RawMask> {
  try {
    const bytes = await readBounded(file, maxPixels);
    if (bytes.subarray(0, 8).equals(PNG_SIGNATURE)) {
      // The size from the header (IHDR comes first), before anything is inflated.
      const [width, height] = bytes.length >= 24 ? [bytes.readUInt32BE(16), bytes.readUInt32BE(20)] : [0, 0];
      if (width * height > maxPixels) {
        throw new Error(`it is ${width}x${height} (${width * height} pixels), more than the ${maxPixels} allowed`);
      }
      // The common masks (8-bit grey or palette indices), inflated off this thread.
      const indexed = parseIndexedPng(bytes, maxPixels, true);
      if (indexed) {
        const { width, height } = indexed;
        return { width, height, channels: 1, data: unfilterRows(await inflateRows(indexed), width, height) };
      }
      const png = decode(bytes);
      let data = png.data as Uint8Array | Uint16Array;
      if (png.depth < 8) {
        data = unpackBits(png.data as Uint8Array, png.width * png.channels, png.height, png.depth);
        // Grey samples of 1, 2 or 4 bits stand for their 8-bit level (PNG's scaling: a 1-bit
        // mask is 0/255, as optimisers store 0/255 masks); palette indices stay indices.
        if (!png.palette) data = data.map((v) => (v * 255) / ((1 << png.depth) - 1));
      }
      // grey, grey + alpha, RGB, RGBA (fast-png gives palette images as one index channel)
      const channels = png.channels <= 2 ? 1 : 3;
      return { width: png.width, height: png.height, channels, data: dropChannels(data, png.channels, channels) };
    }
    const { data, info } = await sharp(bytes, { failOn: 'truncated', limitInputPixels: maxPixels })
      .rotate()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const channels = info.channels <= 2 ? 1 : 3;
    const values = new Uint8Array(data.buffer, data.byteOffset, data.length);
    return { width: info.width, height: info.height, channels, data: dropChannels(values, info.channels, channels) };
  } catch (err) {
    throw new Error(`cannot read mask '${file}': ${(err as Error).message}`);
  }
}

/** True when every pixel of an RGB mask is grey (r = g = b): its values are then indices. */
export function isGrey(mask: RawMask): boolean {
  if (mask.channels === 1) return true;
  const d = mask.data;
  for (let i = 0; i < d.length; i += 3) if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return false;
  return true;
}

/** The values of a one-value-per-pixel mask (grey RGB read through its first channel), as a set. */
export function valuesOf(mask: RawMask, into: Set<number>): void {
  const d = mask.data;
  const step = mask.channels;
  const seen = new Uint8Array(d instanceof Uint16Array ? 65536 : 256);
  for (let i = 0; i < d.length; i += step) seen[d[i]] = 1;
  for (let v = 0; v < seen.length; v++) if (seen[v]) into.add(v);
}

/** How a dataset's mask values become class ids; decided once from all its masks. */
export type MaskMapping =
  /** value v is class v; `ignore` is ignored. */
  | { kind: 'index'; ignore: number }
  /** 0 is background (class 0), 255 (or 1) foreground (class 1). */
  | { kind: 'binary' }
  /** each colour (r << 16 | g << 8 | b) is the class it maps to; others are problems. */
  | { kind: 'colour'; colours: ReadonlyMap<number, number> }
  /** table[v] is value v's class (-1: ignored, -2: no class); values past the table are `beyond`. */
  | { kind: 'table'; table: Int32Array; beyond: -1 | -2 };

/**
 * The class ids of a mask under mapping, uint8 (ignore = 255) when storedIgnore is 255, else
 * int32 (ignore = storedIgnore). Values that are no class (>= numClasses, or an unknown
 * colour) are refused, naming the value and where it is.
 */
export function toClassIds(
  mask: RawMask,
  mapping: MaskMapping,
  numClasses: number,
  storedIgnore: number,
): Uint8Array | Int32Array {
  const n = mask.width * mask.height;
  const out = storedIgnore === 255 ? new Uint8Array(n) : new Int32Array(n);
  const d = mask.data;
  const where = (p: number) => `at row ${Math.floor(p / mask.width)}, column ${p % mask.width}`;
  if (mapping.kind === 'colour') {
    if (mask.channels !== 3) throw new Error('is a single-value mask, but the dataset has colour masks');
    for (let p = 0; p < n; p++) {
      const id = mapping.colours.get((d[3 * p] << 16) | (d[3 * p + 1] << 8) | d[3 * p + 2]);
      if (id === undefined) {
        throw new Error(
          `colour (${d[3 * p]}, ${d[3 * p + 1]}, ${d[3 * p + 2]}) ${where(p)} is not a class colour of the class file`,
        );
      }
      out[p] = id < 0 ? storedIgnore : id;
    }
    return out;
  }
  // Each value's class (-1: ignored, -2: no class), found once for the values the mask can hold.
  const classOf = new Int32Array(d instanceof Uint16Array ? 65536 : 256);
  for (let v = 0; v < classOf.length; v++) {
    if (mapping.kind === 'binary') classOf[v] = v === 0 ? 0 : 1;
    else if (mapping.kind === 'table') classOf[v] = v < mapping.table.length ? mapping.table[v] : mapping.beyond;
    else classOf[v] = v === mapping.ignore ? -1 : v < numClasses ? v : -2;
  }
  const step = mask.channels;
  for (let p = 0; p < n; p++) {
    const v = d[p * step];
    const id = classOf[v];
    if (id >= 0) {
      out[p] = id;
    } else if (id === -1) {
      out[p] = storedIgnore;
    } else if (mapping.kind === 'index') {
      throw new Error(
        `value ${v} ${where(p)} is not a class: the dataset has ${numClasses} (0..${numClasses - 1}) and ignores ${mapping.ignore}`,
      );
    } else {
      throw new Error(`value ${v} ${where(p)} is no class of this dataset`);
    }
  }
  return out;
}
