// The CUDA backend's kernels on the CPU emulator of CUDA's thread model (simt_emulator.h), as a
// Backend over host memory: under a CudaStandIn (engine/backend.h) every op on a Device::CUDA tensor
// runs the same device code as on a GPU, in any build, so the op-case table (tests/engine/op_cases.h)
// runs on it as on a GPU. Not emulated: matmul, which is cuBLAS's on a GPU, runs the CPU's GEMM here
// (test_gemm_plan checks the cuBLAS arguments instead).
//
//   EmulatedCudaBackend emulated;
//   CudaStandIn stand_in(emulated);
//   Tensor y = gelu(x.to(Device::CUDA));   // the CUDA gelu kernel, emulated
#pragma once
#include "engine/backend.h"

namespace lasgrad::emulated {

class EmulatedCudaBackend final : public Backend {
 public:
  const char* name() const override { return "cuda (emulated)"; }
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  void copy_to_host(void* host_dst, const void* src, size_t bytes) override;
  void copy_from_host(void* dst, const void* host_src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void fill(Tensor& out, double value) override;
  void convert(const Tensor& x, Tensor& out) override;
  void unary(UnaryOp op, const Tensor& x, double scalar, Tensor& out) override;
  void unary_grad(UnaryOp op, const Tensor& x, const Tensor& dy, Tensor& dx) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override;
  void masked_fill(const Tensor& x, const Tensor& mask, double value, Tensor& out) override;
  void sum_to(const Tensor& x, Tensor& out) override;
  void matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& out) override;
  void permute(const Tensor& x, const std::vector<int>& perm, Tensor& out) override;
  void copy_axis(const Tensor& src, int64_t src_start, Tensor& dst, int64_t dst_start, int axis, int64_t len) override;
  void softmax(const Tensor& x, Tensor& y) override;
  void softmax_grad(const Tensor& y, const Tensor& dy, Tensor& dx) override;
  void cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Tensor& loss) override;
  void cross_entropy_grad(const Tensor& logits, const Tensor& targets, int64_t ignore_index, double scale,
                          Tensor& dlogits) override;
  void layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& y, Tensor& mean,
                  Tensor& rstd) override;
  void layer_norm_grad(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                       Tensor& dx, Tensor& dgamma, Tensor& dbeta) override;
  void embedding(const Tensor& table, const Tensor& ids, Tensor& out) override;
  void embedding_grad(const Tensor& ids, const Tensor& dout, Tensor& dtable) override;
  void dropout_mask(uint64_t seed, double p, Tensor& out) override;
  void adam(const AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v) override;
  void avg_pool_seq(const Tensor& x, int64_t P, Tensor& out) override;
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lengths, const AttentionOptions& p,
                 Tensor& o, Tensor& lse) override;
  void attention_grad(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                      const Tensor& dout, const Tensor& lengths, const AttentionOptions& p, Tensor& dq, Tensor& dk,
                      Tensor& dv) override;
};

}  // namespace lasgrad::emulated
