#include "core/cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <mutex>
#include <unordered_map>

#include "core/backends.h"

namespace fcn {

namespace {

constexpr size_t kSmallest = size_t{1} << 20;  // smaller blocks come cheaply from malloc's heap
constexpr size_t kMostCached = size_t{4} << 30;

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t bytes) override {
    if (bytes < kSmallest) {
      void* data = c10::alloc_cpu(bytes);
      return {data, data, &CachingCpuAllocator::release, c10::Device(c10::kCPU)};
    }
    void* data = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end()) {
        data = it->second;
        free_.erase(it);
        cached_ -= bytes;
      }
    }
    if (data == nullptr) data = c10::alloc_cpu(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      sizes_[data] = bytes;
    }
    return {data, data, &CachingCpuAllocator::release, c10::Device(c10::kCPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &CachingCpuAllocator::release; }

  void copy_data(void* dest, const void* src, size_t count) const override { default_copy_data(dest, src, count); }

  size_t cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

  void releaseAll() {
    std::unordered_multimap<size_t, void*> blocks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      blocks.swap(free_);
      cached_ = 0;
    }
    for (auto& [bytes, data] : blocks) c10::free_cpu(data);
  }

  static CachingCpuAllocator& instance() {
    static CachingCpuAllocator allocator;  // lives as long as the process: tensors may outlive any JS context
    return allocator;
  }

 private:
  /// The deleter of every block: small ones (not in sizes_) go back to malloc at once.
  static void release(void* data) {
    auto& self = instance();
    {
      std::lock_guard<std::mutex> lock(self.mutex_);
      auto it = self.sizes_.find(data);
      if (it == self.sizes_.end()) {
        c10::free_cpu(data);
        return;
      }
      size_t bytes = it->second;
      self.sizes_.erase(it);
      if (backends::cachingCpuAllocator && self.cached_ + bytes <= kMostCached) {
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
};

}  // namespace

void installCachingCpuAllocator() {
  static std::once_flag once;
  std::call_once(once, [] { c10::SetCPUAllocator(&CachingCpuAllocator::instance(), /*priority=*/1); });
}

size_t cachedCpuBytes() { return CachingCpuAllocator::instance().cached(); }

void releaseCachedCpuMemory() { CachingCpuAllocator::instance().releaseAll(); }

}  // namespace fcn
