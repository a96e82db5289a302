/**
 * VOC label images to class ids: each palette colour becomes its class, the boundary colour
 * the ignore index, computed natively off the event loop.
 */
import { pixelsToTensor, type RgbPixels } from '../image';
import { native } from '../native';
import { Tensor } from '../tensor';

/**
 * Class ids uint8 [H, W] of RGB label pixels, computed natively off the event loop: the
 * boundary colour becomes the ignore index, any colour outside the palette is an error.
 */
export async function labelToClassIds(pixels: RgbPixels): Promise<Tensor> {
  const rgb = pixelsToTensor(pixels);
  try {
    return new Tensor(await native.voc.labelIndices(rgb.native));
  } finally {
    rgb.dispose();
  }
}
