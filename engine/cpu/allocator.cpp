#include "engine/cpu/allocator.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <new>

#include "engine/size_buckets.h"

// Under AddressSanitizer a cached block is poisoned while it waits on a free list, and only the bytes
// requested are unpoisoned when it is handed out: a use after free, or a read past the request into
// the bucket's slack, is still reported although the block never went back to malloc.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define LASGRAD_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define LASGRAD_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define LASGRAD_POISON(p, n) ((void)(p), (void)(n))
#define LASGRAD_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace lasgrad {

constexpr size_t kAlign = 64;
constexpr size_t kHuge = size_t{2} << 20;       // a transparent huge page
constexpr size_t kHugeFrom = size_t{16} << 20;  // from here on buckets are multiples of kHuge

size_t CachingAllocator::bucket_size(size_t bytes) { return size_bucket(bytes, kAlign); }

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
      LASGRAD_UNPOISON(p, bytes);
      return p;
    }
    ++stats_.misses;
  }
  void* p = nullptr;
  try {
    p = system_alloc(size);
  } catch (const std::bad_alloc&) {  // the cache may hold what is missing: give it back and try once more
    release_cached();
    p = system_alloc(size);
  }
  LASGRAD_POISON(static_cast<char*>(p) + bytes, size - bytes);
  return p;
}

void CachingAllocator::deallocate(void* ptr, size_t bytes) noexcept {
  if (!ptr) return;
  size_t size = bucket_size(bytes);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stats_.cached_bytes + size <= limit_) {
      try {
        free_[size].push_back(ptr);  // may allocate; out of memory here, the block goes back to the system
        LASGRAD_POISON(ptr, size);
        stats_.cached_bytes += size;
        return;
      } catch (const std::bad_alloc&) {}
    }
  }
  LASGRAD_UNPOISON(ptr, size);
  std::free(ptr);
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [size, blocks] : free_)
    for (void* p : blocks) {
      LASGRAD_UNPOISON(p, size);
      std::free(p);
    }
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
