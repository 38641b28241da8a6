// The neural-network ops of the CUDA backend: the kernels and their launch plans are in nn_kernels.cuh;
// this file arms and reads back the error flag and owns the scratch memory.
#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/nn_kernels.cuh"

namespace lasgrad {

using namespace cuda;

// Resets the two-word error flag to "none" (-1) before a checking kernel.
static int* armed_flag(CudaBackend& be, const char* op) {
  int* f = be.error_flag();
  LASGRAD_CUDA_CHECK(cudaMemsetAsync(f, 0xff, 2 * sizeof(int), 0), op);
  return f;
}

// Reads the flag back; throws what the kernel recorded. `what` is "target" or "id".
static void check_flag(int* f, const char* op, const char* what, const char* where, int64_t bound) {
  int h[2];
  LASGRAD_CUDA_CHECK(cudaMemcpy(h, f, sizeof h, cudaMemcpyDeviceToHost), op);
  if (h[0] != -1)
    throw Error(std::string(op) + ": " + what + " " + std::to_string(h[1]) + " at " + where + " " +
                std::to_string(h[0]) + " is outside [0, " + std::to_string(bound) + ")");
}

void CudaBackend::softmax(const Tensor& x, Tensor& y) { nn::softmax(x, y, Launch{"softmax"}); }

void CudaBackend::softmax_grad(const Tensor& y, const Tensor& dy, Tensor& dx) {
  nn::softmax_grad(y, dy, dx, Launch{"softmax_grad"});
}

void CudaBackend::cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Tensor& loss) {
  if (logits.dim(0) == 0) return;
  int* f = armed_flag(*this, "cross_entropy");
  nn::cross_entropy(logits, targets, ignore_index, loss, f, Launch{"cross_entropy"});
  check_flag(f, "cross_entropy", "target", "row", logits.dim(1));
}

void CudaBackend::cross_entropy_grad(const Tensor& logits, const Tensor& targets, int64_t ignore_index, double scale,
                                     Tensor& dlogits) {
  if (logits.dim(0) == 0) return;
  int* f = armed_flag(*this, "cross_entropy_grad");
  nn::cross_entropy_grad(logits, targets, ignore_index, scale, dlogits, f, Launch{"cross_entropy_grad"});
  check_flag(f, "cross_entropy_grad", "target", "row", logits.dim(1));
}

void CudaBackend::layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& y,
                             Tensor& mean, Tensor& rstd) {
  nn::layer_norm(x, gamma, beta, eps, y, mean, rstd, Launch{"layer_norm"});
}

void CudaBackend::layer_norm_grad(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                  const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  nn::layer_norm_grad(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, *this, Launch{"layer_norm_grad"});
}

void CudaBackend::embedding(const Tensor& table, const Tensor& ids, Tensor& out) {
  if (ids.numel() == 0 || table.dim(1) == 0) return;
  int* f = armed_flag(*this, "embedding");
  nn::embedding(table, ids, out, f, Launch{"embedding"});
  check_flag(f, "embedding", "id", "position", table.dim(0));
}

void CudaBackend::embedding_grad(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  if (ids.numel() == 0 || dtable.dim(1) == 0) return;
  int* f = armed_flag(*this, "embedding_grad");
  nn::check_ids(ids, dtable.dim(0), f, Launch{"embedding_grad"});
  check_flag(f, "embedding_grad", "id", "position", dtable.dim(0));
  nn::embedding_grad(ids, dout, dtable, Launch{"embedding_grad"});
}

void CudaBackend::avg_pool_seq(const Tensor& x, int64_t P, Tensor& out) {
  nn::avg_pool_seq(x, P, out, Launch{"avg_pool_seq"});
}

}  // namespace lasgrad
