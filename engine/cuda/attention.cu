// The fused LaS attention of the CUDA backend: the kernels and their launch plan are in
// attention_kernels.cuh; this file launches them through cuda::Launch, with scratch from the backend's allocator.
#include "engine/cuda/attention_kernels.cuh"
#include "engine/cuda/cuda_util.cuh"

namespace lasgrad {

void CudaBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lengths,
                            const AttentionOptions& p, Tensor& o, Tensor& lse) {
  dispatch_floating("las_attention", q.dtype(), [&](auto tag) {
    cuda::attn::attention_forward<decltype(tag)>(q, k, v, lengths, p, o, lse, cuda::Launch{"las_attention"});
  });
}

void CudaBackend::attention_grad(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                                 const Tensor& dout, const Tensor& lengths, const AttentionOptions& p, Tensor& dq,
                                 Tensor& dk, Tensor& dv) {
  dispatch_floating("las_attention", q.dtype(), [&](auto tag) {
    cuda::attn::attention_backward<decltype(tag)>(q, k, v, o, lse, dout, lengths, p, dq, dk, dv, *this,
                                                  cuda::Launch{"las_attention"});
  });
}

}  // namespace lasgrad
