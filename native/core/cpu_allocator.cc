#include "core/cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <malloc.h>

#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>

#include "core/backends.h"

namespace fcn {

namespace {

constexpr size_t kSmallest = size_t{128} << 10;  // smaller blocks come cheaply from malloc's heap
constexpr size_t kMostCached = size_t{4} << 30;

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t bytes) override {
    void* data = bytes >= kSmallest ? takeCached(bytes) : nullptr;
    if (data == nullptr) data = c10::alloc_cpu(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      sizes_[data] = bytes;
      inUse_ += static_cast<int64_t>(bytes);
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
    std::unordered_multimap<size_t, void*> blocks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      blocks.swap(free_);
      cached_ = 0;
    }
    for (auto& [bytes, data] : blocks) c10::free_cpu(data);
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
  void* takeCached(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(bytes);
    if (it == free_.end()) return nullptr;
    void* data = it->second;
    free_.erase(it);
    cached_ -= bytes;
    return data;
  }

  /// The deleter of every block: small ones go back to malloc at once, large ones to the cache.
  static void release(void* data) {
    auto& self = instance();
    {
      std::lock_guard<std::mutex> lock(self.mutex_);
      auto it = self.sizes_.find(data);
      size_t bytes = it == self.sizes_.end() ? 0 : it->second;
      if (it != self.sizes_.end()) {
        self.sizes_.erase(it);
        self.inUse_ -= static_cast<int64_t>(bytes);
      }
      if (bytes >= kSmallest && backends::cachingCpuAllocator && self.cached_ + bytes <= kMostCached) {
        self.free_.emplace(bytes, data);
        self.cached_ += bytes;
        return;
      }
    }
    c10::free_cpu(data);
  }

  std::mutex mutex_;
  std::unordered_multimap<size_t, void*> free_;  // size -> freed block
  std::unordered_map<void*, size_t> sizes_;      // block in use -> size
  size_t cached_ = 0;
  int64_t inUse_ = 0;
};

}  // namespace

void installCachingCpuAllocator() {
  static std::once_flag once;
  std::call_once(once, [] { c10::SetCPUAllocator(&CachingCpuAllocator::instance(), /*priority=*/1); });
}

size_t cachedCpuBytes() { return CachingCpuAllocator::instance().cached(); }

int64_t cpuBytesInUse() { return CachingCpuAllocator::instance().inUse(); }

void releaseCachedCpuMemory() { CachingCpuAllocator::instance().releaseAll(); }

}  // namespace fcn
