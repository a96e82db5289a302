/**
 * Post-training static int8 inference on the CPU, opt-in: {@link quantizeInt8} calibrates a
 * trained FCN-32s on sample images and returns an {@link Int8Model} whose ResNet body runs in
 * int8 (libtorch's quantized convolutions: fbgemm or oneDNN) while its classifier and
 * transposed convolution stay float32. `predict`, `evaluate` and `forward` take it as they
 * take the float model. Native side: native/models/int8_model.h.
 */
import { checkTensor } from './checks';
import { native } from './native';
import { Module, registerModuleClass, type StateDict, wrapModule } from './nn/module';
import { normalizeImage } from './predict';
import type { Tensor } from './tensor';

/**
 * A model quantized by {@link quantizeInt8}. Its children are the float model's layers after
 * the body (shared with it); the body is an int8 copy. It refuses to run, with an error, once
 * the float model has changed (a training step, `loadStateDict`, `to()`, a new layer):
 * quantize again then. It runs on the CPU in float32 only and cannot be moved, copied or
 * saved: save the float model, and quantize it after loading.
 */
export class Int8Model extends Module {
  static {
    registerModuleClass('Int8Model', Int8Model);
  }

  /** Refused: the int8 body has no state dict; save the float model's. */
  override stateDict(): never {
    throw new Error('Int8Model: an int8 model is not saved; save the float model and quantize it after loading');
  }

  /** Refused: load the weights into the float model, then quantize it again. */
  override loadStateDict(_dict: StateDict | Record<string, Tensor>, _options?: { strict?: boolean }): never {
    throw new Error('Int8Model: load the weights into the float model, then quantize it again');
  }
}

/**
 * An int8 version of `net`, calibrated on `calibration`: batches of images, uint8 pixels
 * [3, H, W] or [N, 3, H, W] (normalised with the ImageNet statistics, as `predict` does) or
 * normalised float32 [N, 3, H, W], a few hundred crops in all (the training split's, for
 * instance). `net` must be a float32 CPU `Sequential` that starts with a ResNet body (the
 * chapter's FCN-32s from `createFcn()`); it is put in eval mode.
 *
 * Post-training static quantization with PyTorch's 'x86' configuration but min/max ranges
 * (its default observes histograms): each BatchNorm folded into its convolution as PyTorch
 * folds it, weights int8 per output channel (symmetric), activations uint8 in 7 bits at a
 * scale from the range observed over the calibration images, ReLUs and residual adds fused.
 * The float model must not change while it is calibrated (an error says so). Labels differ
 * from the float model's where classes are close; measure the accuracy on your validation
 * split before you ship it.
 */
export async function quantizeInt8(
  net: Module,
  calibration: Iterable<Tensor> | AsyncIterable<Tensor>,
): Promise<Int8Model> {
  if (!(net instanceof Module)) throw new TypeError('quantizeInt8: net must be a Module');
  if (
    calibration === null ||
    typeof calibration !== 'object' ||
    !(Symbol.iterator in calibration || Symbol.asyncIterator in calibration)
  ) {
    throw new TypeError('quantizeInt8: calibration must be an iterable (or async iterable) of image batches');
  }
  const model = wrapModule(native.quantizeInt8(net.native)) as Int8Model;
  for await (const images of calibration) {
    checkTensor(images, 'quantizeInt8: a calibration batch');
    const normalised = normalizeImage(images);
    try {
      await native.int8Observe(model.native, normalised.native);
    } finally {
      if (normalised !== images) normalised.dispose(); // a copy or a view: the caller's images stay
    }
  }
  await native.int8Freeze(model.native);
  return model;
}
