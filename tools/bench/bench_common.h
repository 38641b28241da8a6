// What the benchmarks share: the median of timed repetitions, the machine's measured float32 FMA
// peak, and the CPU's name and vector extensions, so that every figure names its machine.
#pragma once
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace lasgrad::bench {

// Seconds one call of f takes.
inline double seconds(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

inline double median(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Median seconds of `reps` runs of f after two warm-up runs.
inline double median_seconds(int reps, const std::function<void()>& f) {
  f();
  f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) t.push_back(seconds(f));
  return median(t);
}

// ---- peak float32 FLOP/s ----

// kAcc independent accumulator registers hide the FMA latency (4 cycles) across the FMA pipes; the
// loop body is only FMAs, so it runs at the core's FMA throughput.
constexpr int kAcc = 16;
#if defined(__AVX512F__)
using VecF = __m512;
constexpr int kLanes = 16;
inline VecF vset(float x) { return _mm512_set1_ps(x); }
inline VecF vfma(VecF a, VecF b, VecF c) { return _mm512_fmadd_ps(a, b, c); }
inline float vfirst(VecF a) { return _mm512_cvtss_f32(a); }
#elif defined(__FMA__)
using VecF = __m256;
constexpr int kLanes = 8;
inline VecF vset(float x) { return _mm256_set1_ps(x); }
inline VecF vfma(VecF a, VecF b, VecF c) { return _mm256_fmadd_ps(a, b, c); }
inline float vfirst(VecF a) { return _mm256_cvtss_f32(a); }
#else
#error "bench_ops measures peak with AVX2+FMA or AVX-512 intrinsics; configure with LASGRAD_NATIVE=ON"
#endif

inline float fma_loop(int64_t iters) {
  VecF acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = vset(0.001f * j);
  const VecF a = vset(0.999999f), b = vset(1e-6f);  // acc -> a acc + b stays bounded
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < kAcc; ++j) acc[j] = vfma(acc[j], a, b);
  float s = 0;
  for (int j = 0; j < kAcc; ++j) s += vfirst(acc[j]);
  return s;  // used, so the loop is not optimised away
}

// FLOP/s of fma_loop on `threads` threads at once.
inline double peak_flops(int threads) {
  const int64_t iters = 4'000'000;
  std::vector<float> sink(threads);
  double t = median_seconds(5, [&] {
#pragma omp parallel num_threads(threads)
    sink[omp_get_thread_num()] = fma_loop(iters);
  });
  if (sink[0] == 42) std::printf(" ");  // keeps the results alive
  return 2.0 * kLanes * kAcc * iters * threads / t;
}

inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

// The vector extensions this build was compiled for (-march=native follows the machine).
inline std::string vector_extensions() {
  std::string s;
#if defined(__AVX512F__)
  s += "AVX-512F ";
#endif
#if defined(__AVX2__)
  s += "AVX2 ";
#endif
#if defined(__FMA__)
  s += "FMA ";
#endif
  if (!s.empty()) s.pop_back();
  return s.empty() ? "none" : s;
}

}  // namespace lasgrad::bench
