// Element-wise ops of the CUDA backend: the kernels and their launch plans are in elementwise_kernels.cuh.
#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/elementwise_kernels.cuh"

namespace lasgrad {

namespace ew = cuda::elementwise;

void CudaBackend::unary(UnaryOp op, const Tensor& x, double scalar, Tensor& out) {
  ew::unary(op, x, scalar, out, cuda::Launch{"unary"});
}

void CudaBackend::unary_grad(UnaryOp op, const Tensor& x, const Tensor& dy, Tensor& dx) {
  ew::unary_grad(op, x, dy, dx, cuda::Launch{"unary_grad"});
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  ew::binary(op, a, b, out, cuda::Launch{"binary"});
}

void CudaBackend::masked_fill(const Tensor& x, const Tensor& mask, double value, Tensor& out) {
  ew::masked_fill(x, mask, value, out, cuda::Launch{"masked_fill"});
}

void CudaBackend::dropout_mask(uint64_t seed, double p, Tensor& out) {
  ew::dropout_mask(seed, p, out, cuda::Launch{"dropout_mask"});
}

void CudaBackend::adam(const AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v) {
  ew::adam(s, p, g, m, v, cuda::Launch{"adam"});
}

void CudaBackend::fill(Tensor& out, double value) { ew::fill(out, value, cuda::Launch{"fill"}); }

void CudaBackend::convert(const Tensor& x, Tensor& out) { ew::convert(x, out, cuda::Launch{"convert"}); }

}  // namespace lasgrad
