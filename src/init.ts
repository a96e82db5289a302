/**
 * Weight initialisation: the chapter's bilinear kernel and `torch.nn.init`'s in-place
 * fillers (no autograd recording, as in PyTorch).
 */
import { checkTensor } from './checks';
import { native } from './native';
import { Tensor } from './tensor';

/**
 * The chapter's `bilinear_kernel(in_channels, out_channels, kernel_size)`: a float32
 * [in, out, k, k] weight that makes a ConvTranspose2d upsample bilinearly (equal to the
 * chapter's numbers bit for bit; odd and even k). in and out must be equal, or one of them 1.
 */
export function bilinearKernel(inChannels: number, outChannels: number, kernelSize: number): Tensor {
  return new Tensor(native.init.bilinearKernel(inChannels, outChannels, kernelSize));
}

/** Xavier/Glorot uniform, in place: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)). */
export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  native.init.xavierUniform_(checkTensor(t, 'tensor'), gain);
  return t;
}
/** Xavier/Glorot normal, in place: N(0, gain^2 * 2 / (fan_in + fan_out)). */
export function xavierNormal_(t: Tensor, gain = 1): Tensor {
  native.init.xavierNormal_(checkTensor(t, 'tensor'), gain);
  return t;
}
/** Fills with value, in place. */
export function constant_(t: Tensor, value: number): Tensor {
  native.init.constant_(checkTensor(t, 'tensor'), value);
  return t;
}
/** Fills with 0, in place. */
export function zeros_(t: Tensor): Tensor {
  return constant_(t, 0);
}
/** Fills with 1, in place. */
export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}
/** Uniform samples in [a, b), in place. */
export function uniform_(t: Tensor, a = 0, b = 1): Tensor {
  native.init.uniform_(checkTensor(t, 'tensor'), a, b);
  return t;
}
/** Normal samples, in place. */
export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  native.init.normal_(checkTensor(t, 'tensor'), mean, std);
  return t;
}
