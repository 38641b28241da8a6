// How the CUDA backend's row-major batched matmul becomes one column-major cuBLAS strided-batched GEMM
// (gemm.cu makes the call). Plain C++, so the mapping is tested on the host against the CPU's matmul
// through a literal column-major GEMM (tests/cuda/test_gemm_plan.cpp).
//
// cuBLAS is column-major. A row-major [M, N] matrix is, in the same memory, the column-major [N, M]
// matrix C^T, so C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T: the operands swap places (cuBLAS's
// first operand is b, its second is a), each keeps its own transpose flag, and every leading dimension
// is the row length as stored.
#pragma once
#include <climits>
#include <cstdint>
#include <string>

#include "engine/tensor.h"

namespace lasgrad::cuda {

// The arguments of cublas<t>gemmStridedBatched(h, op_first, op_second, m, n, k, alpha, first, ld_first,
// stride_first, second, ld_second, stride_second, beta, c, ldc, stride_c, batch) with first = b and
// second = a.
struct GemmPlan {
  bool trans_first, trans_second;  // CUBLAS_OP_T when set, else CUBLAS_OP_N
  int m, n, k;
  int ld_first, ld_second, ldc;
  int64_t stride_first, stride_second, stride_c;
  int batch;
};

// out [batch, M, N] = op(a) op(b) for a [batch, M, K] (or [batch, K, M] when trans_a) and b [batch, K, N]
// (or [batch, N, K] when trans_b); every size at least 1. Throws Error when one exceeds cuBLAS's int.
inline GemmPlan gemm_plan(int64_t batch, int64_t M, int64_t N, int64_t K, bool trans_a, bool trans_b) {
  for (int64_t d : {batch, M, N, K})
    if (d > INT_MAX)
      throw Error("matmul: the cuda backend's cuBLAS calls take int sizes, got batch " + std::to_string(batch) +
                  ", M " + std::to_string(M) + ", N " + std::to_string(N) + ", K " + std::to_string(K));
  GemmPlan p;
  p.trans_first = trans_b;
  p.trans_second = trans_a;
  p.m = static_cast<int>(N);
  p.n = static_cast<int>(M);
  p.k = static_cast<int>(K);
  p.ld_first = static_cast<int>(trans_b ? K : N);   // b's rows as stored
  p.ld_second = static_cast<int>(trans_a ? M : K);  // a's rows as stored
  p.ldc = static_cast<int>(N);
  p.stride_first = K * N;
  p.stride_second = M * K;
  p.stride_c = M * N;
  p.batch = static_cast<int>(batch);
  return p;
}

}  // namespace lasgrad::cuda
