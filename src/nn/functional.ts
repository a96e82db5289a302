/**
 * Stateless functions (PyTorch's `torch.nn.functional`).
 */
import { checkInteger, checkNumber, checkTensor } from '../checks';
import { native } from '../native';
import { Tensor } from '../tensor';

/** Options of {@link crossEntropy}. */
export interface CrossEntropyOptions {
  /** 'mean' (default), 'sum', or 'none' (one loss per element, shaped like target). */
  reduction?: 'mean' | 'sum' | 'none';
  /** Target value that contributes no loss (default -100, as in PyTorch; VOC uses 255). */
  ignoreIndex?: number;
  /** Label smoothing in [0, 1]. */
  labelSmoothing?: number;
  /** A weight per class. */
  weight?: Tensor;
}

/**
 * Cross-entropy between logits input [N, C, ...] and int64 class indices target [N, ...]
 * (PyTorch's `F.cross_entropy`). The chapter's per-pixel loss is
 * `crossEntropy(Y_hat, Y, { reduction: 'none' }).mean(1).mean(1)`.
 */
export function crossEntropy(input: Tensor, target: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const reduction = options.reduction ?? 'mean';
  if (!['mean', 'sum', 'none'].includes(reduction)) {
    throw new RangeError(`reduction: expected 'mean', 'sum' or 'none', got ${JSON.stringify(reduction)}`);
  }
  const smoothing = options.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing <= 1)) throw new RangeError(`labelSmoothing: expected 0..1, got ${smoothing}`);
  return new Tensor(
    native.functional.crossEntropy(
      checkTensor(input, 'input'),
      checkTensor(target, 'target'),
      reduction,
      options.ignoreIndex ?? -100,
      smoothing,
      options.weight === undefined ? undefined : checkTensor(options.weight, 'weight'),
    ),
  );
}

/** Options of {@link diceLoss} and {@link focalLoss}. */
export interface SegmentationLossOptions {
  /** Target value that contributes no loss (default 255, VOC's boundaries). */
  ignoreIndex?: number;
}

/**
 * segmentation_models_pytorch's `DiceLoss('multiclass')` of logits input [B, C, H, W] for
 * int64 labels target [B, H, W]: per class 1 - 2|P∩T| / (|P| + |T|) over the batch (P the
 * softmax probabilities, T the one-hot labels, ignored pixels left out), 0 for classes absent
 * from the labels, averaged over the classes. A scalar, differentiable.
 */
export function diceLoss(input: Tensor, target: Tensor, options: SegmentationLossOptions = {}): Tensor {
  const ignore = checkInteger(options.ignoreIndex ?? 255, 'ignoreIndex');
  return new Tensor(native.functional.diceLoss(checkTensor(input, 'input'), checkTensor(target, 'target'), ignore));
}

/**
 * segmentation_models_pytorch's `FocalLoss('multiclass', gamma)`: per class the mean over
 * the labelled pixels of (1 - p_t)^gamma times the binary cross-entropy of the class's logit
 * (a sigmoid focal loss, as RetinaNet's), summed over the classes; 0 without labelled pixels.
 */
export function focalLoss(
  input: Tensor,
  target: Tensor,
  options: SegmentationLossOptions & { gamma?: number } = {},
): Tensor {
  const ignore = checkInteger(options.ignoreIndex ?? 255, 'ignoreIndex');
  const gamma = checkNumber(options.gamma ?? 2, 'gamma', 0);
  return new Tensor(
    native.functional.focalLoss(checkTensor(input, 'input'), checkTensor(target, 'target'), ignore, gamma),
  );
}
