// The size buckets of the caching allocators (engine/cpu/allocator.h, engine/cuda/device_allocator.h):
// multiples of `quantum` up to eight quantums, then eight buckets per power of two, so at most 12.5% of
// a block is slack. A request of 0 bytes gets one quantum. C++17, for nvcc's dialect too.
#pragma once
#include <cstddef>

namespace lasgrad {

inline size_t size_bucket(size_t bytes, size_t quantum) {
  if (bytes <= 8 * quantum) return bytes == 0 ? quantum : (bytes + quantum - 1) / quantum * quantum;
  // 1/8 of the largest power of two <= bytes (bytes > 8 quantums >= 8, so the shift is >= 0).
  const size_t step = size_t{1} << (63 - __builtin_clzll(static_cast<unsigned long long>(bytes)) - 3);
  return (bytes + step - 1) / step * step;
}

}  // namespace lasgrad
