/**
 * An uploaded image, checked before it is decoded: its header alone (sharp's metadata) must
 * say JPEG, PNG or WebP with no more pixels than allowed, so that a decompression bomb (a few
 * kB claiming gigapixels) is refused without allocating its pixels; decoding itself also runs
 * under sharp's `limitInputPixels`. Every refusal is an {@link HttpError} whose message the
 * page shows.
 */
import sharp from 'sharp';
import { pixelsToTensor } from '../image';
import type { Tensor } from '../tensor';

/** An error the server answers with its status code and message (not a crash, not a 500). */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The image formats the viewer accepts, as sharp names them. */
export const IMAGE_FORMATS = ['jpeg', 'png', 'webp'] as const;

/** A decoded upload: uint8 pixels [3, H, W]. */
export interface DecodedImage {
  pixels: Tensor;
  width: number;
  height: number;
  format: (typeof IMAGE_FORMATS)[number];
}

/** What an upload's header says, checked: format and size. */
export interface UploadHeader {
  format: (typeof IMAGE_FORMATS)[number];
  width: number;
  height: number;
}

/**
 * Reads the header of image bytes (nothing is decoded): an HttpError unless it is a JPEG, PNG
 * or WebP of at most maxPixels pixels.
 */
export async function inspectUpload(bytes: Buffer, maxPixels: number): Promise<UploadHeader> {
  if (bytes.length === 0) throw new HttpError(400, 'the upload is empty: choose a JPEG, PNG or WebP image');
  let header: sharp.Metadata;
  try {
    header = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new HttpError(415, `not an image that can be read (${(err as Error).message}): expected JPEG, PNG or WebP`);
  }
  const format = IMAGE_FORMATS.find((f) => f === header.format);
  if (!format)
    throw new HttpError(415, `${header.format ?? 'these'} images are not accepted: expected JPEG, PNG or WebP`);
  const { width, height } = header;
  if (!width || !height) throw new HttpError(415, 'the image header gives no size');
  const pages = header.pages ?? 1;
  if (width * height * pages > maxPixels) {
    throw new HttpError(
      413,
      `the image is ${width}x${height}${pages > 1 ? ` with ${pages} frames` : ''} = ${width * height * pages} pixels, ` +
        `over the limit of ${maxPixels}`,
    );
  }
  return { format, width, height };
}

/** Decodes checked image bytes (see {@link inspectUpload}) to RGB pixels [3, H, W], EXIF orientation applied. */
export async function decodeUpload(bytes: Buffer, header: UploadHeader, maxPixels: number): Promise<DecodedImage> {
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'truncated' })
      .rotate() // as browsers show it: EXIF orientation applied
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    const hwc = pixelsToTensor({ data, height: info.height, width: info.width });
    const pixels = hwc.permute([2, 0, 1]).contiguous();
    hwc.dispose();
    return { pixels, width: info.width, height: info.height, format: header.format };
  } catch (err) {
    throw new HttpError(400, `the ${header.format.toUpperCase()} image cannot be decoded: ${(err as Error).message}`);
  }
}
