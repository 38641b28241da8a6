// Shared by the emulated-kernel tests (test_cuda_emulated*.cpp): the emulator of CUDA's thread model,
// random inputs, and the comparison of an emulated kernel's output with the CPU backend's.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "engine/cuda/gemm_plan.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "tests/cuda/simt_emulator.h"

// The attention kernels' one dynamic shared-memory array (their `extern __shared__ smem_raw`, which
// the emulator makes thread_local): 192 KiB is more than any of their launches asks for (the largest,
// float64 with dh = 128, is about 150 KiB) and less than an H100 block may have. Declared before
// attention_kernels.cuh is included, so that the kernels' declaration names it.
namespace lasgrad::cuda {
inline namespace LASGRAD_CUDA_ABI {
namespace attn {
constexpr size_t kSharedBytes = 192 * 1024;
alignas(16) inline thread_local unsigned char smem_raw[kSharedBytes];
}  // namespace attn
}  // namespace LASGRAD_CUDA_ABI
}  // namespace lasgrad::cuda

namespace lasgrad::emulated {

// Uniform values in [lo, hi) of dtype dt on the CPU.
inline Tensor random(const Shape& shape, Rng& rng, DType dt, double lo = -1, double hi = 1) {
  std::vector<double> v(static_cast<size_t>(numel_of(shape)));
  for (double& x : v) x = rng.uniform(lo, hi);
  return Tensor::from(v, shape, dt);
}

// |got - want| <= tol (1 + |want|) for every entry; infinities must be equal. On failure it reports how
// many entries are off, the first one and the worst error (NaN, as from an unwritten output, counts as off).
inline void expect_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  const std::vector<double> g = got.to_doubles(), w = want.to_doubles();
  REQUIRE(g.size() == w.size());
  size_t bad = 0, first = 0;
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const bool same_inf = std::isinf(w[i]) && g[i] == w[i];
    const double err = same_inf ? 0 : std::abs(g[i] - w[i]) / (1 + std::abs(w[i]));
    if (!(err <= tol)) {
      if (!bad++) first = i;
      worst = std::isnan(err) ? err : std::max(worst, err);
    }
  }
  INFO(what << ": " << bad << " of " << g.size() << " entries off; first at " << first << " (emulated "
            << (bad ? g[first] : 0) << ", cpu " << (bad ? w[first] : 0) << "), worst relative error " << worst);
  CHECK(bad == 0);
}

// cublas<t>gemmStridedBatched's definition: for each batch entry, C = op(A) op(B) with op(A) m x k,
// op(B) k x n, C m x n, all column-major: entry (i, j) of X with leading dimension ld is X[i + j ld];
// op transposes when its flag is set. A is the call's first operand, B its second. What cuBLAS does
// with a GemmPlan, for the host (test_gemm_plan, and matmul of the emulated backend). Operands of type
// In (float, double or bf16) are read as their exact values; sums in double, stored as Out.
template <class In, class Out>
void column_major_gemm(const cuda::GemmPlan& p, const In* first, const In* second, Out* c) {
  for (int b = 0; b < p.batch; ++b) {
    const In* A = first + b * p.stride_first;
    const In* B = second + b * p.stride_second;
    Out* C = c + b * p.stride_c;
    for (int j = 0; j < p.n; ++j)
      for (int i = 0; i < p.m; ++i) {
        double sum = 0;
        for (int l = 0; l < p.k; ++l) {
          const auto a =
              static_cast<double>(p.trans_first ? A[l + i * int64_t(p.ld_first)] : A[i + l * int64_t(p.ld_first)]);
          const auto bb =
              static_cast<double>(p.trans_second ? B[j + l * int64_t(p.ld_second)] : B[l + j * int64_t(p.ld_second)]);
          sum += a * bb;
        }
        C[i + j * int64_t(p.ldc)] = static_cast<Out>(sum);
      }
  }
}

// A tensor whose entries stay NaN unless a kernel writes them.
inline Tensor unwritten(const Shape& shape, DType dt) { return Tensor::full(shape, std::nan(""), dt); }

// The kernels' scratch (their `mem`) on the host, each buffer filled with 0xFF bytes, a NaN in float and
// double, so that a kernel reading scratch it did not write shows in its results.
struct NanScratch {
  void* allocate(size_t bytes) {
    void* p = std::malloc(bytes ? bytes : 1);
    if (!p) throw std::bad_alloc();
    std::memset(p, 0xFF, bytes);
    return p;
  }
  void deallocate(void* p, size_t) { std::free(p); }
};

}  // namespace lasgrad::emulated
