// matmul: batched GEMM through cuBLAS (strided batched, one call for every batch size), with the
// arguments of gemm_plan.h (the row-major to column-major mapping).
#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/gemm_plan.h"

namespace lasgrad {

using namespace cuda;

namespace {

cublasStatus_t gemm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const float* alpha, const float* a, int lda, long long sa, const float* b, int ldb,
                            long long sb, const float* beta, float* c, int ldc, long long sc, int batch) {
  return cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}
cublasStatus_t gemm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const double* alpha, const double* a, int lda, long long sa, const double* b, int ldb,
                            long long sb, const double* beta, double* c, int ldc, long long sc, int batch) {
  return cublasDgemmStridedBatched(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}

}  // namespace

// a [batch, M, K] or [batch, K, M], b [batch, K, N] or [batch, N, K], out [batch, M, N]; out must not
// alias a or b.
void CudaBackend::matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& out) {
  dispatch_floating("matmul", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t batch = out.dim(0), M = out.dim(1), N = out.dim(2), K = trans_a ? a.dim(1) : a.dim(2);
    if (batch == 0 || M == 0 || N == 0) return;
    if (K == 0) return fill(out, 0.0);  // an empty sum; cuBLAS is not asked to define it
    const GemmPlan p = gemm_plan(batch, M, N, K, trans_a, trans_b);
    auto h = static_cast<cublasHandle_t>(cublas_handle());
    const T one = 1, zero = 0;
    auto op = [](bool t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; };
    LASGRAD_CUBLAS_CHECK(gemm_batched(h, op(p.trans_first), op(p.trans_second), p.m, p.n, p.k, &one, b.data<T>(),
                                      p.ld_first, p.stride_first, a.data<T>(), p.ld_second, p.stride_second, &zero,
                                      out.data<T>(), p.ldc, p.stride_c, p.batch),
                         "matmul");
  });
}

}  // namespace lasgrad
