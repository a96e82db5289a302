// The argmax over the channels of scores [N, C, H, W], as at::argmax(scores, 1) gives it,
// without its strided reduction (for contiguous scores it reads each channel C apart).
// Pure C++ (no Node-API) for the native tests.
#pragma once

#include <ATen/ATen.h>

namespace fcn {

/// at::argmax(scores, 1) of a 4-D tensor: int64 [N, H, W], the first index of equal maxima,
/// NaN above every number. Contiguous float32 scores on the CPU go through a kernel that
/// walks the channels over blocks of pixels held in cache; anything else is at::argmax.
at::Tensor channelArgmax(const at::Tensor& scores);

/// What a training step reports of its predictions: how many pixels are labelled (label !=
/// ignoreIndex) and how many of those have the label as channelArgmax(scores) (int64 0-d
/// tensors on scores' device), as ((argmax(scores, 1) == labels) & labelled).sum() gives it.
/// On the CPU, float32 scores of any strides are checked pixel by pixel without the argmax
/// tensor: a pixel counts when its label's score is above every score before it and not below
/// any after it (the first of equal maxima; NaN above numbers). Labels are int64 [N, H, W];
/// a label that is no channel and not ignoreIndex counts as wrong.
struct ArgmaxHits {
  at::Tensor hits, labelled;
};
ArgmaxHits argmaxHits(const at::Tensor& scores, const at::Tensor& labels, int64_t ignoreIndex);

/// Pixels a blockArgmax takes at most.
constexpr int64_t kArgmaxBlock = 1024;

/// The kernel: for `length` (<= kArgmaxBlock) pixels whose scores of channel c are the
/// `length` floats from first + c * channelStride, the channel of each pixel's maximum
/// (the first of equal maxima, NaN above every number) into channel[0, length).
void blockArgmax(const float* first, int64_t channels, int64_t channelStride, int64_t length, int32_t* channel);

}  // namespace fcn
