// Switches for this addon's speed-ups, as torch.backends holds PyTorch's: all on by
// default, and off only to measure what each one brings (the numbers do not change).
#pragma once

#include <atomic>

namespace fcn::backends {

/// Transposed convolutions with kernel 2 x stride computed as sub-pixel convolutions.
inline std::atomic<bool> subpixelUpsampling{true};
/// Convolution weights and inputs kept channels-last (NHWC) on the CPU.
inline std::atomic<bool> channelsLast{true};
/// Freed CPU blocks of 1 MiB and more kept for reuse (see cpu_allocator.h).
inline std::atomic<bool> cachingCpuAllocator{true};

}  // namespace fcn::backends
