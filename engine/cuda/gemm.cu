// matmul's GEMM: cuBLAS, strided batched (one call for every batch size), with the arguments of
// gemm_plan.h (the row-major to column-major mapping).
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

// cuBLAS's strided-batched GEMM with a GemmPlan's arguments (cuda::Kernels::matmul made the plan and
// handles the empty sizes).
template <class T>
void CudaBackend::gemm(const GemmPlan& p, const T* first, const T* second, T* out) {
  auto h = static_cast<cublasHandle_t>(cublas_handle());
  const T one = 1, zero = 0;
  auto op = [](bool t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; };
  LASGRAD_CUBLAS_CHECK(
      gemm_batched(h, op(p.trans_first), op(p.trans_second), p.m, p.n, p.k, &one, first, p.ld_first, p.stride_first,
                   second, p.ld_second, p.stride_second, &zero, out, p.ldc, p.stride_c, p.batch),
      "matmul");
}
template void CudaBackend::gemm<float>(const GemmPlan&, const float*, const float*, float*);
template void CudaBackend::gemm<double>(const GemmPlan&, const double*, const double*, double*);

}  // namespace lasgrad
