// The methods of cuda::Kernels (cuda_kernels.h), for the file that instantiates it:
//   template class cuda::Kernels<CudaBackend>;   (engine/cuda/cuda_backend.cu, by nvcc)
//   template class cuda::Kernels<EmulatedCudaBackend>;   (tests/cuda/emulated_backend.cpp, by the host compiler)
#pragma once
#include <string>

#include "engine/attention.h"
#include "engine/cuda/attention_kernels.cuh"
#include "engine/cuda/attention_tc_kernels.cuh"
#include "engine/cuda/cuda_kernels.h"
#include "engine/cuda/elementwise_kernels.cuh"
#include "engine/cuda/gemm_plan.h"
#include "engine/cuda/layout_kernels.cuh"
#include "engine/cuda/nn_kernels.cuh"
#include "engine/cuda/reduce_kernels.cuh"
#include "engine/dispatch.h"

namespace lasgrad::cuda {

template <class D>
void Kernels<D>::check_flag(int* f, const char* op, const char* what, const char* where, int64_t bound) {
  int w[2];
  self().read_flag(f, w);
  if (w[0] != -1)
    throw Error(std::string(op) + ": " + what + " " + std::to_string(w[1]) + " at " + where + " " +
                std::to_string(w[0]) + " is outside [0, " + std::to_string(bound) + ")");
}

template <class D>
void Kernels<D>::fill(Tensor& out, double value) {
  elementwise::fill(out, value, self().launch("fill"));
}
template <class D>
void Kernels<D>::convert(const Tensor& x, Tensor& out) {
  elementwise::convert(x, out, self().launch("convert"));
}
template <class D>
void Kernels<D>::unary(UnaryOp op, const Tensor& x, double scalar, Tensor& out) {
  elementwise::unary(op, x, scalar, out, self().launch("unary"));
}
template <class D>
void Kernels<D>::unary_grad(UnaryOp op, const Tensor& x, const Tensor& dy, Tensor& dx) {
  elementwise::unary_grad(op, x, dy, dx, self().launch("unary_grad"));
}
template <class D>
void Kernels<D>::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  elementwise::binary(op, a, b, out, self().launch("binary"));
}
template <class D>
void Kernels<D>::masked_fill(const Tensor& x, const Tensor& mask, double value, Tensor& out) {
  elementwise::masked_fill(x, mask, value, out, self().launch("masked_fill"));
}
template <class D>
void Kernels<D>::dropout_mask(uint64_t seed, double p, Tensor& out) {
  elementwise::dropout_mask(seed, p, out, self().launch("dropout_mask"));
}
template <class D>
void Kernels<D>::adam(const AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v) {
  elementwise::adam(s, p, g, m, v, self().launch("adam"));
}

template <class D>
void Kernels<D>::sum_to(const Tensor& x, Tensor& out) {
  reduce::sum_to(x, out, *this, self().launch("sum_to"));
}

// Through gemm_plan's row-major to column-major mapping; out must not alias a or b. bfloat16 a and b
// give a float32 out.
template <class D>
void Kernels<D>::matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& out) {
  const int64_t batch = out.dim(0), M = out.dim(1), N = out.dim(2), K = trans_a ? a.dim(1) : a.dim(2);
  if (batch == 0 || M == 0 || N == 0) return;
  if (K == 0) return fill(out, 0.0);  // an empty sum; cuBLAS is not asked to define it
  const GemmPlan plan = gemm_plan(batch, M, N, K, trans_a, trans_b);
  if (a.dtype() == DType::BF16) return self().gemm(plan, b.data<bf16>(), a.data<bf16>(), out.data<float>());
  dispatch_floating("matmul", out.dtype(), [&](auto tag) {
    self().gemm(plan, b.data<decltype(tag)>(), a.data<decltype(tag)>(), out.data<decltype(tag)>());
  });
}

template <class D>
void Kernels<D>::permute(const Tensor& x, const std::vector<int>& perm, Tensor& out) {
  layout::permute(x, perm, out, self().launch("permute"));
}
template <class D>
void Kernels<D>::copy_axis(const Tensor& src, int64_t src_start, Tensor& dst, int64_t dst_start, int axis,
                           int64_t len) {
  layout::copy_axis(src, src_start, dst, dst_start, axis, len, self().launch("copy_axis"));
}

template <class D>
void Kernels<D>::softmax(const Tensor& x, Tensor& y) {
  nn::softmax(x, y, self().launch("softmax"));
}
template <class D>
void Kernels<D>::softmax_grad(const Tensor& y, const Tensor& dy, Tensor& dx) {
  nn::softmax_grad(y, dy, dx, self().launch("softmax_grad"));
}
template <class D>
void Kernels<D>::cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Tensor& loss) {
  if (logits.dim(0) == 0) return;
  int* f = self().armed_flag("cross_entropy");
  nn::cross_entropy(logits, targets, ignore_index, loss, f, self().launch("cross_entropy"));
  check_flag(f, "cross_entropy", "target", "row", logits.dim(1));
}
template <class D>
void Kernels<D>::cross_entropy_grad(const Tensor& logits, const Tensor& targets, int64_t ignore_index, double scale,
                                    Tensor& dlogits) {
  if (logits.dim(0) == 0) return;
  int* f = self().armed_flag("cross_entropy_grad");
  nn::cross_entropy_grad(logits, targets, ignore_index, scale, dlogits, f, self().launch("cross_entropy_grad"));
  check_flag(f, "cross_entropy_grad", "target", "row", logits.dim(1));
}
template <class D>
void Kernels<D>::layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& y,
                            Tensor& mean, Tensor& rstd) {
  nn::layer_norm(x, gamma, beta, eps, y, mean, rstd, self().launch("layer_norm"));
}
template <class D>
void Kernels<D>::layer_norm_grad(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                 const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  nn::layer_norm_grad(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, *this, self().launch("layer_norm_grad"));
}
template <class D>
void Kernels<D>::embedding(const Tensor& table, const Tensor& ids, Tensor& out) {
  if (ids.numel() == 0 || table.dim(1) == 0) return;
  int* f = self().armed_flag("embedding");
  nn::embedding(table, ids, out, f, self().launch("embedding"));
  check_flag(f, "embedding", "id", "position", table.dim(0));
}
template <class D>
void Kernels<D>::embedding_grad(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  if (ids.numel() == 0 || dtable.dim(1) == 0) return;
  int* f = self().armed_flag("embedding_grad");
  nn::check_ids(ids, dtable.dim(0), f, self().launch("embedding_grad"));
  check_flag(f, "embedding_grad", "id", "position", dtable.dim(0));
  nn::embedding_grad(ids, dout, dtable, self().launch("embedding_grad"));
}
template <class D>
void Kernels<D>::avg_pool_seq(const Tensor& x, int64_t P, Tensor& out) {
  nn::avg_pool_seq(x, P, out, self().launch("avg_pool_seq"));
}

// bfloat16 q, k, v (and dout): the tensor-core kernels; a backward wider than they serve runs the float32
// kernels on the exact values, widened first, rounding P and G as the tensor-core kernels do.
template <class D>
void Kernels<D>::attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lengths,
                           const AttentionOptions& p, Tensor& o, Tensor& lse) {
  if (q.dtype() == DType::BF16)
    return attn::attention_forward_tc(q, k, v, lengths, p, o, lse, self().attention_launch("las_attention"));
  dispatch_floating("las_attention", q.dtype(), [&](auto tag) {
    attn::attention_forward<decltype(tag)>(q, k, v, lengths, p, o, lse, self().attention_launch("las_attention"));
  });
}
template <class D>
void Kernels<D>::attention_grad(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                                const Tensor& dout, const Tensor& lengths, const AttentionOptions& p, Tensor& dq,
                                Tensor& dk, Tensor& dv) {
  if (q.dtype() == DType::BF16 && q.dim(3) <= attn::kTcMaxBackwardDh)
    return attn::attention_backward_tc(q, k, v, o, lse, dout, lengths, p, dq, dk, dv, *this,
                                       self().attention_launch("las_attention"));
  if (q.dtype() == DType::BF16)
    return attention_grad(q.to(DType::F32), k.to(DType::F32), v.to(DType::F32), o, lse, dout.to(DType::F32), lengths, p,
                          dq, dk, dv);
  dispatch_floating("las_attention", q.dtype(), [&](auto tag) {
    attn::attention_backward<decltype(tag)>(q, k, v, o, lse, dout, lengths, p, dq, dk, dv, *this,
                                            self().attention_launch("las_attention"));
  });
}

}  // namespace lasgrad::cuda
