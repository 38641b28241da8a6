#include "engine/cpu/allocator.h"

#include <sys/mman.h>
#include <unistd.h>

#include <bit>
#include <cstdlib>
#include <new>

namespace lasgrad {

constexpr size_t kAlign = 64;
constexpr size_t kHuge = size_t{2} << 20;        // a transparent huge page
constexpr size_t kHugeFrom = size_t{16} << 20;  // from here on buckets are multiples of kHuge

size_t CachingAllocator::bucket_size(size_t bytes) {
  if (bytes <= 512) return bytes == 0 ? kAlign : (bytes + kAlign - 1) / kAlign * kAlign;
  // Eight buckets per power of two: the step is 1/8 of the largest power of two <= bytes.
  size_t step = std::bit_floor(bytes) / 8;
  return (bytes + step - 1) / step * step;
}

static void* system_alloc(size_t size) {
  size_t align = size >= kHugeFrom ? kHuge : kAlign;
  void* p = std::aligned_alloc(align, size);  // size is a multiple of align by bucket_size
  if (!p) throw std::bad_alloc();
  if (align == kHuge) madvise(p, size, MADV_HUGEPAGE);  // a hint; failure only costs page faults
  return p;
}

CachingAllocator::CachingAllocator() {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  limit_ = pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) / 2 : size_t{4} << 30;
}

CachingAllocator::~CachingAllocator() { release_cached(); }

void* CachingAllocator::allocate(size_t bytes) {
  size_t size = bucket_size(bytes);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      stats_.cached_bytes -= size;
      ++stats_.hits;
      return p;
    }
    ++stats_.misses;
  }
  return system_alloc(size);
}

void CachingAllocator::deallocate(void* ptr, size_t bytes) {
  if (!ptr) return;
  size_t size = bucket_size(bytes);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stats_.cached_bytes + size <= limit_) {
      free_[size].push_back(ptr);
      stats_.cached_bytes += size;
      return;
    }
  }
  std::free(ptr);
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [size, blocks] : free_)
    for (void* p : blocks) std::free(p);
  free_.clear();
  stats_.cached_bytes = 0;
}

void CachingAllocator::set_cache_limit(size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  limit_ = bytes;
}

CachingAllocator::Stats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace lasgrad
