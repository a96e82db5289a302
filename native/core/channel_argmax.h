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

}  // namespace fcn
