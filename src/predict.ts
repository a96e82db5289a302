/**
 * The chapter's `predict`: normalise with the ImageNet statistics, run the FCN, take the
 * argmax over channels. 'whole' mode (the default; the chapter's exercise 3) labels an image
 * of any size from tiles whose sides are multiples of 32, averaging the logits where tiles
 * overlap; 'crop' mode predicts the chapter's 320x480 top-left crop. torchvision's
 * segmentation models carry their weights' preprocessing instead (shorter side resized to
 * 520, normalised), which predict applies to the whole image, giving labels at the image's
 * own size.
 */
import { checkBoolean, checkInteger, checkOneOf, checkSizeMultipleOf32, checkTensor } from './checks';
import { SegmentationModel } from './models/segmentation';
import { native } from './native';
import type { Module } from './nn/module';
import { type Precision, resolvePrecision } from './precision';
import { Tensor } from './tensor';
import * as torch from './torch';
import { IMAGENET_MEAN, IMAGENET_STD } from './voc/loader';

/** Options of {@link predict} (for the chapter's FCNs; segmentation models take none). */
export interface PredictOptions {
  /**
   * 'whole' (default): every pixel of the image, at its own size, from tiles (exercise 3);
   * 'crop': the top-left cropSize only, as the chapter's `predict`.
   */
  mode?: 'whole' | 'crop';
  /** [height, width] of the crop in 'crop' mode, multiples of 32 (default [320, 480]). */
  cropSize?: [number, number];
  /** Largest tile in 'whole' mode, multiples of 32 (default [320, 480]). */
  tileSize?: [number, number];
  /**
   * The most pixels (height x width) labelled at once in 'whole' mode (default 16,777,216,
   * 4096 x 4096: the logits of every pixel are summed over the tiles, about 100 bytes a pixel).
   */
  maxPixels?: number;
  /**
   * Each convolution and the BatchNorm after it as one convolution with the BatchNorm folded
   * in, ReLUs and residual adds fused, weights kept in oneDNN's layout (CPU; default true).
   * Logits stay within 1e-4 relative of the layer-by-layer forward, so labels are the same
   * except where two classes' logits are that close; false runs the layers one by one,
   * exactly as PyTorch does. The model then keeps up to two more copies of its convolution
   * weights (folded, and packed for the last input size) until its next forward in train mode
   * or off the CPU. See
   * `torch.backends.fusedInference` for plain forwards.
   */
  fused?: boolean;
  /**
   * This call's precision instead of the process-wide `torch.setAutocast`: 'float32',
   * 'bfloat16' (mixed precision, where the hardware has bfloat16 units: see
   * {@link resolvePrecision}) or 'auto' (bfloat16 on CPUs with AVX-512 BF16 or AMX, float32
   * elsewhere). bfloat16 labels agree with float32's on most pixels, not all.
   */
  precision?: Precision;
}

/** The precision override a predict call hands the native job: null keeps the process-wide setting. */
function precisionOf(net: Module, options: PredictOptions): 'float32' | 'bfloat16' | null {
  if (options.precision === undefined) return null;
  return resolvePrecision(options.precision, net.parameters()[0]?.device ?? 'cpu');
}

/** The default bound of {@link PredictOptions.maxPixels}. */
export const PREDICT_MAX_PIXELS = 4096 * 4096;

/** uint8 pixels [3, H, W] or [N, 3, H, W], or normalised float32, as [N, 3, H, W]; a TypeError otherwise. */
function batchOf(image: Tensor): Tensor {
  checkTensor(image, 'image');
  const batched = image.shape.length === 3 ? image.unsqueeze(0) : image;
  if (batched.shape.length !== 4 || batched.shape[1] !== 3 || (image.dtype !== 'uint8' && image.dtype !== 'float32')) {
    throw new TypeError(
      'image: expected uint8 pixels [3, H, W] or [N, 3, H, W] (readImage gives them) or normalised float32, got ' +
        `${image.dtype} [${image.shape.join(', ')}]`,
    );
  }
  return batched;
}

/**
 * The model's input [N, 3, H, W] for an image: uint8 pixels [3, H, W] or [N, 3, H, W] are
 * normalised with the ImageNet statistics (the chapter's `normalize_image`); float32 input
 * is taken as normalised already.
 */
export function normalizeImage(image: Tensor): Tensor {
  const batched = batchOf(image);
  if (image.dtype === 'float32') return batched;
  const mean = torch.tensor([...IMAGENET_MEAN]).reshape([1, 3, 1, 1]);
  const std = torch.tensor([...IMAGENET_STD]).reshape([1, 3, 1, 1]);
  return batched.to('float32').div(255).sub(mean).div(std);
}

/**
 * Class ids (int64 [H, W], or [N, H, W] for a batch) for an image (see {@link normalizeImage}):
 * of every pixel (default), or of the chapter's top-left crop. The model is put in eval mode
 * (by the native job, so a training run in progress keeps its own mode for its steps) and
 * runs where its parameters are, on the native thread, where uint8 pixels are also
 * normalised. A crop is cut before the pixels are converted to float.
 *
 * A `models.segmentation` model gets its weights' preprocessing (`model.transforms`): uint8
 * pixels have their shorter side resized to 520 (bilinear, antialiased, as torchvision) and
 * are normalised; float32 images are taken as normalised and only resized. Its `out` logits
 * are resized back, so the labels have the image's own height and width.
 */
export async function predict(net: Module, image: Tensor, options: PredictOptions = {}): Promise<Tensor<'int64'>> {
  if (net instanceof SegmentationModel) return predictSegmentation(net, image, options);
  const mode = checkOneOf(options.mode ?? 'whole', 'mode', ['whole', 'crop'] as const);
  const [cropH, cropW] = checkSizeMultipleOf32(options.cropSize ?? [320, 480], 'cropSize');
  const [tileH, tileW] = checkSizeMultipleOf32(options.tileSize ?? [320, 480], 'tileSize');
  const maxPixels = checkInteger(options.maxPixels ?? PREDICT_MAX_PIXELS, 'maxPixels', 1);
  let pixels = batchOf(image);
  const [, , height, width] = pixels.shape;
  if (mode === 'crop') {
    if (height < cropH || width < cropW) {
      throw new RangeError(
        `image is ${height}x${width}, smaller than the ${cropH}x${cropW} crop; the default mode 'whole' labels images of any size`,
      );
    }
    pixels = pixels.narrow(2, 0, cropH).narrow(3, 0, cropW);
  } else if (height * width > maxPixels) {
    throw new RangeError(
      `image is ${height}x${width} (${height * width} pixels), more than maxPixels (${maxPixels}) at once; ` +
        'resize it, label a crop, or raise maxPixels',
    );
  }
  const fused = checkBoolean(options.fused ?? true, 'fused');
  const [tileHeight, tileWidth] = mode === 'crop' ? [cropH, cropW] : [tileH, tileW];
  // uint8 pixels are normalised natively, on the torch thread (as normalizeImage does)
  const labels = new Tensor<'int64'>(
    await native.predictLabels(
      net.native,
      pixels.native,
      tileHeight,
      tileWidth,
      IMAGENET_MEAN,
      IMAGENET_STD,
      fused,
      precisionOf(net, options),
    ),
  );
  return image.shape.length === 3 ? labels.squeeze(0) : labels;
}

async function predictSegmentation(
  net: SegmentationModel,
  image: Tensor,
  options: PredictOptions,
): Promise<Tensor<'int64'>> {
  const given = (['mode', 'cropSize', 'tileSize'] as const).filter((k) => options[k] !== undefined);
  if (given.length > 0) {
    throw new RangeError(
      `predict: ${given.join(', ')} apply to the chapter's FCN; a ${net.kind} model takes the whole image with its weights' preprocessing`,
    );
  }
  const batched = batchOf(image);
  const [, , height, width] = batched.shape;
  const maxPixels = checkInteger(options.maxPixels ?? PREDICT_MAX_PIXELS, 'maxPixels', 1);
  if (height * width > maxPixels) {
    throw new RangeError(
      `image is ${height}x${width} (${height * width} pixels), more than maxPixels (${maxPixels}) at once; resize it or raise maxPixels`,
    );
  }
  const fused = checkBoolean(options.fused ?? true, 'fused');
  const { resizeSize, mean, std } = net.transforms;
  const labels = new Tensor<'int64'>(
    await native.predictResized(net.native, batched.native, resizeSize, mean, std, fused, precisionOf(net, options)),
  );
  return image.shape.length === 3 ? labels.squeeze(0) : labels;
}
