// EmulatedCudaBackend: each method runs what the CUDA backend's method of the same name runs
// (engine/cuda/*.cu), with the emulator's launch instead of CUDA's and host memory for the device's.
#include "tests/cuda/emulated_backend.h"

#include <cstring>
#include <string>

#include "engine/dispatch.h"
#include "tests/cuda/emulated.h"

#include "engine/cuda/attention_kernels.cuh"
#include "engine/cuda/elementwise_kernels.cuh"
#include "engine/cuda/layout_kernels.cuh"
#include "engine/cuda/nn_kernels.cuh"
#include "engine/cuda/reduce_kernels.cuh"

namespace lasgrad::emulated {

namespace {

namespace ew = cuda::elementwise;
namespace nn = cuda::nn;

const simt::Launch kLaunch{nullptr, 0};  // kernels without dynamic shared memory
const simt::Launch kAttnLaunch{cuda::attn::smem_raw, cuda::attn::kSharedBytes};

// The nn kernels' two-word error flag (engine/cuda/nn.cu): armed to -1, then read back.
struct Flag {
  int word[2] = {-1, -1};
  void check(const char* op, const char* what, const char* where, int64_t bound) const {
    if (word[0] != -1)
      throw Error(std::string(op) + ": " + what + " " + std::to_string(word[1]) + " at " + where + " " +
                  std::to_string(word[0]) + " is outside [0, " + std::to_string(bound) + ")");
  }
};

}  // namespace

void* EmulatedCudaBackend::allocate(size_t bytes) { return cpu_backend().allocate(bytes); }
void EmulatedCudaBackend::deallocate(void* ptr, size_t bytes) { cpu_backend().deallocate(ptr, bytes); }
void EmulatedCudaBackend::copy_to_host(void* host_dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(host_dst, src, bytes);
}
void EmulatedCudaBackend::copy_from_host(void* dst, const void* host_src, size_t bytes) {
  if (bytes) std::memcpy(dst, host_src, bytes);
}
void EmulatedCudaBackend::copy(void* dst, const void* src, size_t bytes) { kLaunch.copy(dst, src, bytes); }

void EmulatedCudaBackend::fill(Tensor& out, double value) { ew::fill(out, value, kLaunch); }
void EmulatedCudaBackend::convert(const Tensor& x, Tensor& out) { ew::convert(x, out, kLaunch); }
void EmulatedCudaBackend::unary(UnaryOp op, const Tensor& x, double scalar, Tensor& out) {
  ew::unary(op, x, scalar, out, kLaunch);
}
void EmulatedCudaBackend::unary_grad(UnaryOp op, const Tensor& x, const Tensor& dy, Tensor& dx) {
  ew::unary_grad(op, x, dy, dx, kLaunch);
}
void EmulatedCudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  ew::binary(op, a, b, out, kLaunch);
}
void EmulatedCudaBackend::masked_fill(const Tensor& x, const Tensor& mask, double value, Tensor& out) {
  ew::masked_fill(x, mask, value, out, kLaunch);
}
void EmulatedCudaBackend::dropout_mask(uint64_t seed, double p, Tensor& out) { ew::dropout_mask(seed, p, out, kLaunch); }
void EmulatedCudaBackend::adam(const AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v) {
  ew::adam(s, p, g, m, v, kLaunch);
}

void EmulatedCudaBackend::sum_to(const Tensor& x, Tensor& out) { cuda::reduce::sum_to(x, out, *this, kLaunch); }

// cuBLAS's strided-batched GEMM with gemm.cu's arguments, computed by its definition.
void EmulatedCudaBackend::matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& out) {
  dispatch_floating("matmul", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t batch = out.dim(0), M = out.dim(1), N = out.dim(2), K = trans_a ? a.dim(1) : a.dim(2);
    if (batch == 0 || M == 0 || N == 0) return;
    if (K == 0) return fill(out, 0.0);
    column_major_gemm(cuda::gemm_plan(batch, M, N, K, trans_a, trans_b), b.data<T>(), a.data<T>(), out.data<T>());
  });
}

void EmulatedCudaBackend::permute(const Tensor& x, const std::vector<int>& perm, Tensor& out) {
  cuda::layout::permute(x, perm, out, kLaunch);
}
void EmulatedCudaBackend::copy_axis(const Tensor& src, int64_t src_start, Tensor& dst, int64_t dst_start, int axis,
                                    int64_t len) {
  cuda::layout::copy_axis(src, src_start, dst, dst_start, axis, len, kLaunch);
}

void EmulatedCudaBackend::softmax(const Tensor& x, Tensor& y) { nn::softmax(x, y, kLaunch); }
void EmulatedCudaBackend::softmax_grad(const Tensor& y, const Tensor& dy, Tensor& dx) {
  nn::softmax_grad(y, dy, dx, kLaunch);
}
void EmulatedCudaBackend::cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                                        Tensor& loss) {
  if (logits.dim(0) == 0) return;
  Flag f;
  nn::cross_entropy(logits, targets, ignore_index, loss, f.word, kLaunch);
  f.check("cross_entropy", "target", "row", logits.dim(1));
}
void EmulatedCudaBackend::cross_entropy_grad(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                                             double scale, Tensor& dlogits) {
  if (logits.dim(0) == 0) return;
  Flag f;
  nn::cross_entropy_grad(logits, targets, ignore_index, scale, dlogits, f.word, kLaunch);
  f.check("cross_entropy_grad", "target", "row", logits.dim(1));
}
void EmulatedCudaBackend::layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& y,
                                     Tensor& mean, Tensor& rstd) {
  nn::layer_norm(x, gamma, beta, eps, y, mean, rstd, kLaunch);
}
void EmulatedCudaBackend::layer_norm_grad(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                          const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  nn::layer_norm_grad(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, *this, kLaunch);
}
void EmulatedCudaBackend::embedding(const Tensor& table, const Tensor& ids, Tensor& out) {
  if (ids.numel() == 0 || table.dim(1) == 0) return;
  Flag f;
  nn::embedding(table, ids, out, f.word, kLaunch);
  f.check("embedding", "id", "position", table.dim(0));
}
void EmulatedCudaBackend::embedding_grad(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  if (ids.numel() == 0 || dtable.dim(1) == 0) return;
  Flag f;
  nn::check_ids(ids, dtable.dim(0), f.word, kLaunch);
  f.check("embedding_grad", "id", "position", dtable.dim(0));
  nn::embedding_grad(ids, dout, dtable, kLaunch);
}
void EmulatedCudaBackend::avg_pool_seq(const Tensor& x, int64_t P, Tensor& out) { nn::avg_pool_seq(x, P, out, kLaunch); }

void EmulatedCudaBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lengths,
                                    const AttentionOptions& p, Tensor& o, Tensor& lse) {
  dispatch_floating("las_attention", q.dtype(), [&](auto tag) {
    cuda::attn::attention_forward<decltype(tag)>(q, k, v, lengths, p, o, lse, kAttnLaunch);
  });
}
void EmulatedCudaBackend::attention_grad(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                                         const Tensor& lse, const Tensor& dout, const Tensor& lengths,
                                         const AttentionOptions& p, Tensor& dq, Tensor& dk, Tensor& dv) {
  dispatch_floating("las_attention", q.dtype(), [&](auto tag) {
    cuda::attn::attention_backward<decltype(tag)>(q, k, v, o, lse, dout, lengths, p, dq, dk, dv, *this, kAttnLaunch);
  });
}

}  // namespace lasgrad::emulated
