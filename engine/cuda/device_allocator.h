// DeviceAllocator: GPU memory recycled through size-bucketed free lists, the policy of the CUDA
// backend's allocator. It is a template over where blocks come from, so that the policy (buckets,
// reuse across steps, the out-of-memory retry, the statistics) is tested on the host with a fake
// device (tests/cuda/test_device_allocator.cpp); CudaAllocator (cuda_backend.h) is it over cudaMalloc.
//
// Buckets: 512-byte steps up to 4 KiB, then eight buckets per power of two, so at most 12.5% of a
// block is slack. A request pops its bucket's free list, else asks the memory for a block; when that
// finds no memory, it waits for the queued work, hands every cached block back and asks once more,
// before an Error reports the request and the usage. A freed block is reusable at once: every kernel
// and copy goes on one stream (cuda_backend.h), so a later user is queued after the last one.
//
// Memory is any type with
//   void* malloc(size_t bytes);    // a block, or nullptr when the device is out of memory; throws
//                                  // Error on any other failure
//   void free(void* p);
//   void synchronize();            // returns when no queued work uses any block any more
//   const char* name() const;      // for messages, e.g. "cudaMalloc"
#pragma once
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/size_buckets.h"
#include "engine/tensor.h"

namespace lasgrad {

template <class Memory>
class DeviceAllocator {
 public:
  struct Stats {
    size_t hits = 0;            // requests served from a free list
    size_t misses = 0;          // requests that went to the memory
    size_t in_use_bytes = 0;    // bucket bytes held by live blocks
    size_t peak_bytes = 0;      // the most in_use_bytes has been since the last reset_peak()
    size_t cached_bytes = 0;    // bytes sitting in free lists
    size_t reserved_bytes = 0;  // in use + cached: what the memory has handed out
  };

  explicit DeviceAllocator(Memory memory = Memory()) : memory_(std::move(memory)) {}
  DeviceAllocator(const DeviceAllocator&) = delete;
  DeviceAllocator& operator=(const DeviceAllocator&) = delete;

  static size_t bucket_size(size_t bytes) { return size_bucket(bytes, 512); }

  void* allocate(size_t bytes) {
    const size_t size = bucket_size(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    void* p = nullptr;
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      stats_.cached_bytes -= size;
      ++stats_.hits;
    } else {
      p = memory_.malloc(size);
      if (!p && stats_.cached_bytes > 0) {  // out of memory: give the cache back and try once more
        memory_.synchronize();              // queued kernels may still use cached blocks
        free_cached_locked();
        p = memory_.malloc(size);
      }
      if (!p)
        throw Error("cuda allocator: " + std::string(memory_.name()) + "(" + std::to_string(size) +
                    " bytes) found no free device memory; lasgrad holds " + std::to_string(stats_.in_use_bytes) +
                    " bytes in tensors (peak " + std::to_string(stats_.peak_bytes) + ")");
      ++stats_.misses;
      stats_.reserved_bytes += size;
    }
    stats_.in_use_bytes += size;
    if (stats_.in_use_bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.in_use_bytes;
    return p;
  }

  // bytes as given to allocate.
  void deallocate(void* p, size_t bytes) {
    if (!p) return;
    const size_t size = bucket_size(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    free_[size].push_back(p);
    stats_.in_use_bytes -= size;
    stats_.cached_bytes += size;
  }

  // Hands every cached block back to the memory, after the queued work that may use them.
  void release_cached() {
    memory_.synchronize();
    std::lock_guard<std::mutex> lock(mutex_);
    free_cached_locked();
  }

  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_bytes = stats_.in_use_bytes;
  }

  Stats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  void free_cached_locked() {
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) {
        memory_.free(p);
        stats_.cached_bytes -= size;
        stats_.reserved_bytes -= size;
      }
    free_.clear();
  }

  Memory memory_;
  mutable std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // bucket size -> free blocks
  Stats stats_;
};

}  // namespace lasgrad
