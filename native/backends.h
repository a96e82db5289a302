// Switches for this addon's speed-ups, as torch.backends holds PyTorch's: both on by
// default, and off only to measure what each one brings (the numbers do not change).
#pragma once

#include <napi.h>

#include <atomic>

namespace fcn::backends {

/// Transposed convolutions with kernel 2 x stride computed as sub-pixel convolutions.
extern std::atomic<bool> subpixelUpsampling;
/// Convolution weights and inputs kept channels-last (NHWC) on the CPU.
extern std::atomic<bool> channelsLast;
/// Freed CPU blocks of 1 MiB and more kept for reuse (see cpu_allocator.h).
extern std::atomic<bool> cachingCpuAllocator;

void init(Napi::Env env, Napi::Object exports);

}  // namespace fcn::backends
