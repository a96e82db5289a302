#pragma once

#include <ATen/ATen.h>

namespace fcn {

/// The chapter's bilinear_kernel: a [in, out, k, k] float32 weight whose (i, i) planes hold
/// the bilinear upsampling filter, computed in the same float32 steps as the chapter.
/// in and out must be equal, or one of them 1 (broadcast, as the chapter's indexing does).
at::Tensor bilinearKernel(int64_t inChannels, int64_t outChannels, int64_t kernelSize);

}  // namespace fcn
