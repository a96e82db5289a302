// A transposed convolution whose kernel is twice its stride s (the FCN's 64/32 upsampling)
// computed as a sub-pixel convolution: every output pixel receives exactly 2x2 input taps per
// channel, so the layer is one dense 2x2 convolution with out*s*s channels over the input
// padded by one, then a pixel shuffle and a crop, fused here into one copy (in training into
// a channels-last output, with its gradient as one copy back). The same numbers as
// ConvTranspose2d up to float rounding, faster on the CPU in inference and in training.
#pragma once

#include <torch/torch.h>

#include <optional>

namespace fcn {

/// True when a ConvTranspose2d with these options and input runs faster as sub-pixel:
/// CPU float32 input, weight and bias (if any) outside CPU autocast, 4-d input, kernel 2s
/// with s >= 8, no groups, dilation or output padding.
bool subpixelFits(const torch::nn::detail::ConvNdOptions<2>& options, const at::Tensor& input, const at::Tensor& weight,
                  const at::Tensor& bias);

/// conv_transpose2d(input, weight [C, O, 2s, 2s], bias, stride s, padding p), by sub-pixels;
/// differentiable when a gradient is wanted (the kernel matrix is then made anew each call,
/// unpacked, and the product and its gradients are oneDNN's linear, or at::addmm's where
/// this libtorch lacks it).
at::Tensor subpixelTransposedConv(const at::Tensor& input, const at::Tensor& weight,
                                  const std::optional<at::Tensor>& bias, int64_t stride, int64_t padding);

/// at::argmax over the channels of subpixelTransposedConv(...) without gradient, int64
/// [N, H, W], taken from the sub-pixel scores as the shuffle reads them: the full-size
/// float output is never written (equal maxima: the first channel; NaN ranks highest).
at::Tensor subpixelLabels(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          int64_t stride, int64_t padding);

}  // namespace fcn
