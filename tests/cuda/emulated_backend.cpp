// EmulatedCudaBackend: the device that cuda::Kernels (the CUDA backend's kernel methods) runs on here:
// the emulator's launch instead of CUDA's, host memory for the device's, and the GEMM by its definition.
#include "tests/cuda/emulated_backend.h"

#include <cstring>

#include "tests/cuda/emulated.h"  // before the kernels: it defines CUDA's keywords for the host

#include "engine/cuda/cuda_kernels.cuh"

namespace lasgrad::emulated {

// The emulator's launch, with room for the attention kernels' shared memory where they need it.
struct EmulatedCudaBackend::Launch : simt::Launch {};

EmulatedCudaBackend::Launch EmulatedCudaBackend::launch(const char*) const { return {{nullptr, 0}}; }
EmulatedCudaBackend::Launch EmulatedCudaBackend::attention_launch(const char*) const {
  return {{cuda::attn::smem_raw, cuda::attn::kSharedBytes}};
}

int* EmulatedCudaBackend::armed_flag(const char*) {
  flag_[0] = flag_[1] = -1;
  return flag_;
}

// cuBLAS's strided-batched GEMM with gemm.cu's arguments, computed by its definition.
template <class In, class Out>
void EmulatedCudaBackend::gemm(const cuda::GemmPlan& plan, const In* first, const In* second, Out* out) const {
  column_major_gemm(plan, first, second, out);
}

void* EmulatedCudaBackend::allocate(size_t bytes) { return cpu_backend().allocate(bytes); }
void EmulatedCudaBackend::deallocate(void* ptr, size_t bytes) { cpu_backend().deallocate(ptr, bytes); }
void EmulatedCudaBackend::copy_to_host(void* host_dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(host_dst, src, bytes);
}
void EmulatedCudaBackend::copy_from_host(void* dst, const void* host_src, size_t bytes) {
  if (bytes) std::memcpy(dst, host_src, bytes);
}
void EmulatedCudaBackend::copy(void* dst, const void* src, size_t bytes) { launch("copy").copy(dst, src, bytes); }

}  // namespace lasgrad::emulated

namespace lasgrad::cuda {
template class Kernels<emulated::EmulatedCudaBackend>;
}  // namespace lasgrad::cuda
