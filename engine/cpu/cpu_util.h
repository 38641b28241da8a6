// Helpers shared by the CPU kernels: work splitting over OpenMP threads, and
// deterministic sums. Internal to engine/cpu.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "engine/dispatch.h"
#include "engine/tensor.h"

namespace lasgrad::cpu {

// Below about this many elements of cheap work a kernel runs on one thread: waking a team costs a
// few microseconds, as much as streaming ~32K floats.
constexpr int64_t kGrain = 1 << 15;

// Runs f(begin, end) over [0, n) in contiguous chunks, one per thread (a static schedule), and on
// the calling thread alone when n < 2 * grain. Kernels whose result depends on how work is split
// (floating sums) must not use the chunk bounds for that: see the fixed blocks in reduce.cpp.
template <class F>
void parallel_for(int64_t n, int64_t grain, const F& f) {
  if (n <= 0) return;
  int64_t chunks = std::min<int64_t>(omp_get_max_threads(), n / std::max<int64_t>(grain, 1));
  if (chunks <= 1 || omp_in_parallel()) {
    f(int64_t{0}, n);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(static_cast <int>(chunks))
  for (int64_t c = 0; c < chunks; ++c) f(n * c / chunks, n * (c + 1) / chunks);
}

// Rows of `len` elements per chunk so that a chunk holds about kGrain elements.
inline int64_t row_grain(int64_t len) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(len, 1)); }

// memcpy split over threads for large blocks (one thread cannot saturate memory bandwidth).
inline void parallel_memcpy(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  parallel_for(static_cast<int64_t>(bytes), int64_t{1} << 20, [&](int64_t b, int64_t e) {
    std::memcpy(static_cast<char*>(dst) + b, static_cast<const char*>(src) + b, static_cast<size_t>(e - b));
  });
}

// sum_{i<n} g(i) in double with 32 independent lanes folded pairwise at the end. The lanes let the
// compiler vectorise (it may not reassociate a single running sum) and break the add latency chain;
// the order of additions is a fixed function of n, so the result never depends on threads.
template <class G>
double lane_sum(int64_t n, const G& g) {
  constexpr int W = 32;
  double acc[W] = {};
  int64_t i = 0;
  for (; i + W <= n; i += W)
    for (int j = 0; j < W; ++j) acc[j] += g(i + j);
  double tail = 0;
  for (; i < n; ++i) tail += g(i);
  for (int w = W / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0] + tail;
}

}  // namespace lasgrad::cpu
