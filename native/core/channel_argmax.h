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

/// Pixels a blockArgmax takes at most.
constexpr int64_t kArgmaxBlock = 1024;

/// The kernel: for `length` (<= kArgmaxBlock) pixels whose scores of channel c are the
/// `length` floats from first + c * channelStride, the channel of each pixel's maximum
/// (the first of equal maxima, NaN above every number) into channel[0, length).
void blockArgmax(const float* first, int64_t channels, int64_t channelStride, int64_t length, int32_t* channel);

}  // namespace fcn
