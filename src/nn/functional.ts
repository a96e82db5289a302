/**
 * Stateless functions (PyTorch's `torch.nn.functional`).
 */
import { checkTensor } from '../checks';
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
