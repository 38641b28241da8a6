// matmul: batched GEMM through Eigen on row-major maps (no copies; the transposes are Eigen views,
// which its GEMM packs for free).
#include <omp.h>


#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_util.h"
#include "engine/cpu/eigen.h"

namespace lasgrad {

using namespace cpu;

// c [M, N] = op(a) @ op(b); a is [M, K] ([K, M] when ta), b is [K, N] ([N, K] when tb).
template <class T>
static void gemm(const T* a, bool ta, const T* b, bool tb, T* c, int64_t M, int64_t N, int64_t K) {
  Eigen::Map<RowMat<T>> C(c, M, N);
  if (K == 0) {
    C.setZero();
    return;
  }
  Eigen::Map<const RowMat<T>> A(a, ta ? K : M, ta ? M : K), B(b, tb ? N : K, tb ? K : N);
  if (!ta && !tb) C.noalias() = A * B;
  else if (ta && !tb) C.noalias() = A.transpose() * B;
  else if (!ta && tb) C.noalias() = A * B.transpose();
  else C.noalias() = A.transpose() * B.transpose();
}

// a [batch, M, K] or [batch, K, M], b [batch, K, N] or [batch, N, K], out [batch, M, N]; out must not
// alias a or b.
void CpuBackend::matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& out) {
  dispatch_floating("matmul", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t batch = out.dim(0), M = out.dim(1), N = out.dim(2), K = trans_a ? a.dim(1) : a.dim(2);
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* cp = out.data<T>();
    if (batch < omp_get_max_threads()) {
      // Few matrices: one after another, each GEMM threaded by Eigen itself.
      for (int64_t i = 0; i < batch; ++i) gemm(ap + i * M * K, trans_a, bp + i * K * N, trans_b, cp + i * M * N, M, N, K);
      return;
    }
    // Many matrices (attention heads): one per thread at a time. Eigen sees it runs inside a parallel
    // region and stays single-threaded, which avoids nested teams.
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < batch; ++i) gemm(ap + i * M * K, trans_a, bp + i * K * N, trans_b, cp + i * M * N, M, N, K);
  });
}

}  // namespace lasgrad
