// A caching allocator for libtorch's CPU tensors, as the CUDA allocator caches device
// memory: blocks of 128 KiB and more are kept when freed and handed out again for a tensor
// of their size or down to half of it (the smallest that fits). A training step allocates
// the same large buffers every time, and on some machines first touching fresh memory costs
// more than the arithmetic on it (a fresh 52 MB output costs ~120 ms of page faults); reuse
// removes that, and keeps RSS flat across steps. Within a training step (PeakBound) the
// cache never makes the process hold more than 1.25x the most bytes ever in use at once (a
// block that must be fresh first evicts cached ones), so training's peak stays close to what
// it would be without a cache. Inference keeps a
// block of every size: a forward frees each activation as the next is made, so a bound
// there would evict every block before its reuse (predict 0.17 -> 0.27 s when tried). The
// cache is given back to the system when the torch thread has been idle for a while, and it
// counts the bytes in use, so that a forward can tell what its result keeps alive.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fcn {

/// While one lives (a training step), fresh blocks first evict cached ones, so that memory in
/// use plus cached stays within 1.25x the most ever in use at once.
class PeakBound {
 public:
  PeakBound();
  ~PeakBound();
  PeakBound(const PeakBound&) = delete;
  PeakBound& operator=(const PeakBound&) = delete;
};

/// Installs the allocator as libtorch's CPU allocator, once per process.
void installCachingCpuAllocator();

/// Bytes held in freed blocks, ready for reuse.
size_t cachedCpuBytes();

/// Bytes of CPU tensor memory in use now (allocated through this allocator, not yet freed).
int64_t cpuBytesInUse();

/// Gives every cached block back to the system, and lets malloc return its free pages.
void releaseCachedCpuMemory();

}  // namespace fcn
