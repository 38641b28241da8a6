// CachingAllocator: host memory for tensors, 64-byte aligned, recycled through size-bucketed free lists.
//
// Why: a training step allocates the same activation and gradient sizes every step. Returning those
// blocks to malloc hands large ones back to the kernel (munmap), and the next step pays an mmap and a
// page fault per 4 KiB page on first touch, easily more than the kernels that use the memory. Keeping
// freed blocks and handing them back out avoids both after the first step.
//
// How: a request is rounded up to its bucket (multiples of 64 bytes up to 512 bytes; above that, eight
// buckets per power of two, so at most 12.5% is wasted), and a freed block goes on its bucket's free
// list. A request first pops its bucket's list, else asks the system. Blocks of 16 MiB and more are
// 2 MiB aligned and advised as transparent huge pages, so first touch faults once per 2 MiB. The bytes
// held in free lists are capped (half the physical memory by default); a block freed beyond the cap
// goes back to the system. One mutex guards the lists: allocations are per tensor, not per element.
#pragma once
#include <cstddef>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace lasgrad {

class CachingAllocator {
 public:
  struct Stats {
    size_t hits = 0;          // requests served from a free list
    size_t misses = 0;        // requests that went to the system
    size_t cached_bytes = 0;  // bytes sitting in free lists now
  };

  CachingAllocator();
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // 64-byte aligned; never null. Out of memory, it frees the cache and tries once more, then throws
  // std::bad_alloc.
  void* allocate(size_t bytes);
  // bytes as given to allocate. Never throws: it runs in destructors, also while an exception unwinds.
  void deallocate(void* ptr, size_t bytes) noexcept;
  void release_cached();  // return every cached block to the system
  void set_cache_limit(size_t bytes);
  Stats stats() const;

  static size_t bucket_size(size_t bytes);  // the size actually reserved for a request

 private:
  mutable std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // bucket size -> free blocks
  Stats stats_;
  size_t limit_;
};

}  // namespace lasgrad
