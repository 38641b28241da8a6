// matmul: batched GEMM through cuBLAS (strided batched, one call for every batch size).
//
// cuBLAS is column-major. A row-major [M, N] matrix is, in the same memory, the column-major [N, M]
// matrix C^T, so C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T: the operands swap places, each
// keeps its own transpose flag, and every leading dimension is the row length as stored.
#include <climits>

#include "engine/cuda/cuda_util.cuh"

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
    for (int64_t d : {batch, M, N, K})
      if (d > INT_MAX)
        throw Error("matmul: the cuda backend's cuBLAS calls take int sizes, got " + shape_str(a.shape()) + " @ " +
                    shape_str(b.shape()));
    auto h = static_cast<cublasHandle_t>(cublas_handle());
    const T one = 1, zero = 0;
    const int lda = static_cast<int>(trans_a ? M : K), ldb = static_cast<int>(trans_b ? K : N);
    LASGRAD_CUBLAS_CHECK(gemm_batched(h, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                      static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), &one,
                                      b.data<T>(), ldb, K * N, a.data<T>(), lda, M * K, &zero, out.data<T>(),
                                      static_cast<int>(N), M * N, static_cast<int>(batch)),
                         "matmul");
  });
}

}  // namespace lasgrad
