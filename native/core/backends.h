// Switches for this addon's speed-ups, as torch.backends holds PyTorch's: on by default
// (off only to measure what each one brings; the numbers do not change), except CUDA graphs,
// which keep GPU memory for every input shape and are asked for, and emulated bfloat16, which
// changes the numbers (PyTorch's bfloat16 where the CPU is slower at it).
#pragma once

#include <atomic>

namespace fcn::backends {

/// Transposed convolutions with kernel 2 x stride computed as sub-pixel convolutions.
inline std::atomic<bool> subpixelUpsampling{true};
/// Convolution weights and inputs kept channels-last (NHWC) on the CPU.
inline std::atomic<bool> channelsLast{true};
/// In eval mode without gradients on the CPU, every forward runs Conv2d + BatchNorm2d (+ ReLU,
/// + residual add) as one convolution with the BatchNorm folded in (see models/fused_conv.h).
/// Off by default: a forward stays PyTorch-exact; predict asks for it itself.
inline std::atomic<bool> fusedInference{false};
/// Freed CPU blocks of 1 MiB and more kept for reuse (see cpu_allocator.h).
inline std::atomic<bool> cachingCpuAllocator{true};
/// CPU autocast on a CPU without bfloat16 units (AVX-512 BF16, AMX-BF16) runs bfloat16 anyway,
/// emulated, as PyTorch does; off by default: there it runs float32, which is faster (see
/// core/autocast.h).
inline std::atomic<bool> emulatedBfloat16{false};
/// Inference forwards on a GPU captured as CUDA graphs and replayed (see models/cuda_graphs.h).
inline std::atomic<bool> cudaGraphs{false};

}  // namespace fcn::backends
