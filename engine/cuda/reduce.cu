// sum_to of the CUDA backend: the kernels and their launch plan are in reduce_kernels.cuh; scratch
// buffers come from the backend's caching allocator.
#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/reduce_kernels.cuh"

namespace lasgrad {

void CudaBackend::sum_to(const Tensor& x, Tensor& out) { cuda::reduce::sum_to(x, out, *this, cuda::Launch{"sum_to"}); }

}  // namespace lasgrad
