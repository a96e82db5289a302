#include "core/cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Exception.h>
#include <malloc.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/backends.h"

namespace fcn {

namespace {

constexpr size_t kSmallest = size_t{128} << 10;  // smaller blocks come cheaply from malloc's heap
constexpr size_t kMostCached = size_t{4} << 30;

/// Blocks of kSmallest and more are mapped and unmapped here, not taken from malloc: a block the
/// cache gives up then leaves the process at once, where malloc would keep it in a heap that
/// only grows (glibc raises its mmap threshold to the size of blocks freed, up to 32 MiB).
void* mapBlock(size_t bytes) {
  void* data = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  TORCH_CHECK(data != MAP_FAILED, "can't allocate memory: you tried to allocate ", bytes, " bytes");
  return data;
}

void freeBlock(void* data, size_t bytes) {
  if (bytes >= kSmallest)
    munmap(data, bytes);
  else
    c10::free_cpu(data);
}

std::atomic<int> peakBound{0};  // live PeakBound scopes

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t bytes) override {
    void* data = nullptr;
    if (bytes < kSmallest) {
      data = c10::alloc_cpu(bytes);  // malloc's heap; the cache neither keeps nor evicts for these
    } else if ((data = takeCached(bytes)) == nullptr) {
      if (peakBound.load() > 0) freeBlocks(makeRoomFor(bytes));
      data = mapBlock(bytes);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      sizes_[data] = bytes;
      inUse_ += static_cast<int64_t>(bytes);
      mostInUse_ = std::max(mostInUse_, inUse_);
    }
    return {data, data, &CachingCpuAllocator::release, c10::Device(c10::kCPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &CachingCpuAllocator::release; }

  void copy_data(void* dest, const void* src, size_t count) const override { default_copy_data(dest, src, count); }

  size_t cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

  int64_t inUse() {
    std::lock_guard<std::mutex> lock(mutex_);
    return inUse_;
  }

  void releaseAll() {
    std::vector<std::pair<size_t, void*>> blocks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      blocks.assign(free_.begin(), free_.end());
      free_.clear();
      cached_ = 0;
      mostInUse_ = inUse_;
    }
    freeBlocks(blocks);
    malloc_trim(0);
  }

  /// The one allocator of the process. It is never destroyed: tensors may outlive any JS
  /// environment, and libtorch frees some during its own teardown at exit.
  static CachingCpuAllocator& instance() {
    alignas(CachingCpuAllocator) static unsigned char storage[sizeof(CachingCpuAllocator)];
    static CachingCpuAllocator* allocator = ::new (storage) CachingCpuAllocator();
    return *allocator;
  }

 private:
  /// The smallest cached block of `bytes` to twice that, or null; bytes becomes its size. A
  /// block may serve a smaller tensor: with exact sizes only, the chapter's train step at
  /// batch 4, 320x480 mapped ~500 MB of fresh blocks per step under the bound (74K page faults,
  /// 2.2x the step's time on a 2-core EPYC VM), with twice ~0; peak RSS 871 -> 894 MB.
  void* takeCached(size_t& bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.lower_bound(bytes);
    if (it == free_.end() || it->first / 2 > bytes) return nullptr;
    void* data = it->second;
    bytes = it->first;
    free_.erase(it);
    cached_ -= bytes;
    return data;
  }

  /// Under a PeakBound, before a fresh block of `bytes` is allocated: takes cached blocks out
  /// of the cache until the memory held (in use and cached) stays within 1.25x the most ever
  /// in use at once (without a cache the process would hold 1x). The quarter keeps most
  /// blocks for their next use: with blocks reused down to half their size, the chapter's
  /// train step (batch 4, 320x480) touches almost no fresh page at 1.25x (0.69 s), 20K a
  /// step at 1.1x (0.77 s), 48K at 1x (0.99 s), on a 2-core EPYC VM. The smallest block that
  /// makes room alone goes first, else the largest, to free few blocks.
  std::vector<std::pair<size_t, void*>> makeRoomFor(size_t bytes) {
    std::vector<std::pair<size_t, void*>> evicted;
    std::lock_guard<std::mutex> lock(mutex_);
    auto held = [&] { return inUse_ + static_cast<int64_t>(cached_ + bytes); };
    const int64_t limit = std::max(mostInUse_ + mostInUse_ / 4, inUse_ + static_cast<int64_t>(bytes));
    while (held() > limit && !free_.empty()) {
      auto it = free_.lower_bound(static_cast<size_t>(held() - limit));
      if (it == free_.end()) it = std::prev(free_.end());
      evicted.emplace_back(*it);
      cached_ -= it->first;
      free_.erase(it);
    }
    return evicted;
  }

  static void freeBlocks(const std::vector<std::pair<size_t, void*>>& blocks) {
    for (auto [bytes, data] : blocks) freeBlock(data, bytes);
  }

  /// The deleter of every block: small ones go back to malloc at once, large ones to the cache.
  static void release(void* data) {
    auto& self = instance();
    size_t bytes = 0;
    {
      std::lock_guard<std::mutex> lock(self.mutex_);
      auto it = self.sizes_.find(data);
      if (it != self.sizes_.end()) {
        bytes = it->second;
        self.sizes_.erase(it);
        self.inUse_ -= static_cast<int64_t>(bytes);
      }
      if (bytes >= kSmallest && backends::cachingCpuAllocator && self.cached_ + bytes <= kMostCached) {
        self.free_.emplace(bytes, data);
        self.cached_ += bytes;
        return;
      }
    }
    freeBlock(data, bytes);
  }

  std::mutex mutex_;
  std::multimap<size_t, void*> free_;        // size -> freed block
  std::unordered_map<void*, size_t> sizes_;  // block in use -> size
  size_t cached_ = 0;
  int64_t inUse_ = 0;
  int64_t mostInUse_ = 0;  // the most bytes in use at once since the cache was last emptied
};

}  // namespace

PeakBound::PeakBound() { ++peakBound; }

PeakBound::~PeakBound() { --peakBound; }

void installCachingCpuAllocator() {
  static std::once_flag once;
  std::call_once(once, [] { c10::SetCPUAllocator(&CachingCpuAllocator::instance(), /*priority=*/1); });
}

size_t cachedCpuBytes() { return CachingCpuAllocator::instance().cached(); }

int64_t cpuBytesInUse() { return CachingCpuAllocator::instance().inUse(); }

void releaseCachedCpuMemory() { CachingCpuAllocator::instance().releaseAll(); }

}  // namespace fcn
