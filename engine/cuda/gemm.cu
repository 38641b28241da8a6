// matmul's GEMM: cuBLAS, strided batched (one call for every batch size), with the arguments of
// gemm_plan.h (the row-major to column-major mapping); float32, float64, and bfloat16 operands into a
// float32 result (cublasGemmStridedBatchedEx, float32 compute, on tensor cores).
#include "engine/bf16.h"
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

// bfloat16 operands, float32 result and accumulation: tensor cores.
cublasStatus_t gemm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const float* alpha, const bf16* a, int lda, long long sa, const bf16* b, int ldb,
                            long long sb, const float* beta, float* c, int ldc, long long sc, int batch) {
  return cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, alpha, a, CUDA_R_16BF, lda, sa, b, CUDA_R_16BF, ldb, sb, beta,
                                    c, CUDA_R_32F, ldc, sc, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

}  // namespace

// cuBLAS's strided-batched GEMM with a GemmPlan's arguments (cuda::Kernels::matmul made the plan and
// handles the empty sizes).
template <class In, class Out>
void CudaBackend::gemm(const GemmPlan& p, const In* first, const In* second, Out* out) {
  auto h = static_cast<cublasHandle_t>(cublas_handle());
  const Out one = 1, zero = 0;
  auto op = [](bool t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; };
  LASGRAD_CUBLAS_CHECK(
      gemm_batched(h, op(p.trans_first), op(p.trans_second), p.m, p.n, p.k, &one, first, p.ld_first, p.stride_first,
                   second, p.ld_second, p.stride_second, &zero, out, p.ldc, p.stride_c, p.batch),
      "matmul");
}
template void CudaBackend::gemm(const GemmPlan&, const float*, const float*, float*);
template void CudaBackend::gemm(const GemmPlan&, const double*, const double*, double*);
template void CudaBackend::gemm(const GemmPlan&, const bf16*, const bf16*, float*);

}  // namespace lasgrad
