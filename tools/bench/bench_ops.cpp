// bench_ops: how close the CPU kernels run to this machine's limits.
//
// First it measures the limits: peak float32 FLOP/s with a register-blocked FMA loop (on one thread
// and on all), and memory bandwidth with a STREAM triad. Then it times GEMMs at transformer shapes
// (GFLOP/s, % of peak) and the memory-bound kernels (GB/s, % of the triad). Every number is the median
// of several repetitions after warm-up. Threads: omp_get_max_threads() (set OMP_NUM_THREADS).
#include <omp.h>

#include "engine/cpu/eigen.h"
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/rng.h"
#include "tools/bench/bench_common.h"

using namespace lasgrad;
using namespace lasgrad::bench;

// ---- memory bandwidth: STREAM triad a = b + s c ----

static double triad_bytes_per_s() {
  const int64_t n = int64_t{1} << 25;  // 128 MiB per array, far beyond any cache
  std::vector<float> a(n), b(n), c(n);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) a[i] = 0, b[i] = 1, c[i] = 2;  // first touch by the owning thread
  float* pa = a.data();
  const float *pb = b.data(), *pc = c.data();
  double t = median_seconds(7, [&] {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) pa[i] = pb[i] + 3.0f * pc[i];
  });
  return 3.0 * n * sizeof(float) / t;  // STREAM counting: two reads and one write
}

// ---- the kernels ----

static Tensor random(const Shape& shape, Rng& rng) {
  std::vector<float> v(static_cast<size_t>(numel_of(shape)));
  for (float& x : v) x = static_cast<float>(rng.uniform(-1, 1));
  return Tensor::from(v, shape);
}

int main() {
  Backend& cpu = cpu_backend();
  Rng rng(1);
  const int threads = omp_get_max_threads();

  std::printf("bench_ops: CPU kernels against measured peaks (median of repetitions, float32)\n");
  std::printf("cpu       %s\n", cpu_model().c_str());
  std::printf("threads   %d (OMP_NUM_THREADS)\n", threads);
  std::printf("compiler  g++ %s, %s, NDEBUG %s, OpenMP %d\n", __VERSION__,
#if defined(__AVX512F__)
              "-march: AVX-512F+FMA",
#elif defined(__AVX2__)
              "-march: AVX2+FMA",
#else
              "-march: baseline",
#endif
#ifdef NDEBUG
              "on",
#else
              "off (asserts active: not a Release build)",
#endif
              _OPENMP);
  std::printf("eigen     %d.%d.%d, SIMD %s\n\n", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION,
              Eigen::SimdInstructionSetsInUse());

  const double peak1 = peak_flops(1), peak = peak_flops(threads), bw = triad_bytes_per_s();
  std::printf("peak fp32 FMA     %8.1f GFLOP/s on 1 thread, %8.1f GFLOP/s on %d\n", peak1 / 1e9, peak / 1e9, threads);
  std::printf("stream triad      %8.1f GB/s on %d threads\n\n", bw / 1e9, threads);

  struct Gemm {
    const char* what;
    int64_t batch, M, K, N;
    bool ta, tb;
  };
  const Gemm gemms[] = {
      {"qkv projection      x W", 1, 8192, 128, 384, false, false},
      {"out projection      x W", 1, 8192, 384, 128, false, false},
      {"ffn up              x W", 1, 8192, 128, 512, false, false},
      {"input grad          g W^T", 1, 8192, 384, 128, false, true},
      {"weight grad         x^T g", 1, 128, 8192, 384, true, false},
      {"scores   64 x       q k^T", 64, 1024, 16, 1024, false, true},
      {"context  64 x       p v", 64, 1024, 1024, 16, false, false},
  };
  std::printf("%-30s %-22s %10s %10s %8s\n", "gemm (float32)", "M x K x N", "ms", "GFLOP/s", "% peak");
  for (const Gemm& g : gemms) {
    Tensor a = random(g.ta ? Shape{g.batch, g.K, g.M} : Shape{g.batch, g.M, g.K}, rng);
    Tensor b = random(g.tb ? Shape{g.batch, g.N, g.K} : Shape{g.batch, g.K, g.N}, rng);
    Tensor c = Tensor::empty({g.batch, g.M, g.N});
    double t = median_seconds(7, [&] { cpu.matmul(a, g.ta, b, g.tb, c); });
    double flops = 2.0 * g.batch * g.M * g.K * g.N / t;
    std::string dims = std::to_string(g.M) + " x " + std::to_string(g.K) + " x " + std::to_string(g.N);
    std::printf("%-30s %-22s %10.3f %10.1f %7.1f%%\n", g.what, dims.c_str(), t * 1e3, flops / 1e9, 100 * flops / peak);
  }

  std::printf("\n%-30s %-22s %10s %10s %8s\n", "memory-bound (float32)", "shape", "ms", "GB/s", "% triad");
  auto report = [&](const char* what, const Shape& s, double bytes, const std::function<void()>& f) {
    double t = median_seconds(9, f);
    std::printf("%-30s %-22s %10.3f %10.1f %7.1f%%\n", what, shape_str(s).c_str(), t * 1e3, bytes / t / 1e9,
                100 * bytes / t / bw);
  };
  for (int64_t D : {1024, 128}) {
    const int64_t R = 8192;
    const Shape s = {R, D};
    const double n = static_cast<double>(R * D) * sizeof(float);  // bytes of one [R, D] tensor
    Tensor x = random(s, rng), dy = random(s, rng), y = Tensor::empty(s), dx = Tensor::empty(s);
    Tensor gamma = random({D}, rng), beta = random({D}, rng), mean = Tensor::empty({R}), rstd = Tensor::empty({R});
    Tensor dg = Tensor::empty({D}), db = Tensor::empty({D}), bias = random({1, D}, rng), col = Tensor::empty({1, D});
    report("softmax", s, 2 * n, [&] { cpu.softmax(x, y); });
    report("softmax_grad", s, 3 * n, [&] { cpu.softmax_grad(y, dy, dx); });
    report("layer_norm", s, 2 * n, [&] { cpu.layer_norm(x, gamma, beta, 1e-5, y, mean, rstd); });
    report("layer_norm_grad", s, 3 * n, [&] { cpu.layer_norm_grad(x, gamma, mean, rstd, dy, dx, dg, db); });
    report("add bias [R,D]+[1,D]", s, 2 * n, [&] { cpu.binary(BinaryOp::Add, x, bias, y); });
    report("gelu (erf)", s, 2 * n, [&] { cpu.unary(UnaryOp::GeluErf, x, 0, y); });
    report("sum_to [R,D]->[1,D]", s, n, [&] { cpu.sum_to(x, col); });
  }
  {
    const Shape s = {32, 256, 8, 16}, p = {32, 8, 256, 16};  // [B, L, H, dh] -> [B, H, L, dh]
    Tensor x = random(s, rng), y = Tensor::empty(p);
    report("permute 0,2,1,3", s, 2.0 * numel_of(s) * sizeof(float), [&] { cpu.permute(x, {0, 2, 1, 3}, y); });
    Tensor t = random({8192, 1024}, rng), tt = Tensor::empty({1024, 8192});
    report("transpose", {8192, 1024}, 2.0 * 8192 * 1024 * sizeof(float), [&] { cpu.permute(t, {1, 0}, tt); });
  }
  std::printf(
      "\nnote: the triad streams 384 MiB from DRAM; a [8192, 128] tensor (4 MiB) stays in cache between\n"
      "repetitions, so kernels on it can run above 100%% of the triad.\n");
  return 0;
}
