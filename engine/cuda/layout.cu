// Data movement of the CUDA backend: the kernels and their launch plans are in layout_kernels.cuh.
#include "engine/cuda/cuda_util.cuh"
#include "engine/cuda/layout_kernels.cuh"

namespace lasgrad {

void CudaBackend::permute(const Tensor& x, const std::vector<int>& perm, Tensor& out) {
  cuda::layout::permute(x, perm, out, cuda::Launch{"permute"});
}

void CudaBackend::copy_axis(const Tensor& src, int64_t src_start, Tensor& dst, int64_t dst_start, int axis,
                            int64_t len) {
  cuda::layout::copy_axis(src, src_start, dst, dst_start, axis, len, cuda::Launch{"copy_axis"});
}

}  // namespace lasgrad
