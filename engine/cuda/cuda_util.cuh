// Helpers shared by the CUDA kernels: error checks that throw lasgrad::Error; the
// launch geometry, device-side math and reductions are in kernel_common.cuh. Internal to engine/cuda.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/kernel_common.cuh"
#include "engine/dispatch.h"
#include "engine/tensor.h"

namespace lasgrad::cuda {

[[noreturn]] void throw_cuda(cudaError_t e, const char* call, const char* op, const char* file, int line);
[[noreturn]] void throw_cublas(cublasStatus_t s, const char* call, const char* op, const char* file, int line);

// LASGRAD_CUDA_CHECK(cudaMemcpy(...), "copy_to_host"): throws Error("copy_to_host: cudaMemcpy(...) failed:
// <CUDA's message>") naming the op and the call.
#define LASGRAD_CUDA_CHECK(call, op)                                                       \
  do {                                                                                     \
    cudaError_t e_ = (call);                                                               \
    if (e_ != cudaSuccess) ::lasgrad::cuda::throw_cuda(e_, #call, op, __FILE__, __LINE__); \
  } while (0)

#define LASGRAD_CUBLAS_CHECK(call, op)                                                                 \
  do {                                                                                                 \
    cublasStatus_t s_ = (call);                                                                        \
    if (s_ != CUBLAS_STATUS_SUCCESS) ::lasgrad::cuda::throw_cublas(s_, #call, op, __FILE__, __LINE__); \
  } while (0)

// After every launch: a bad configuration surfaces here, naming the op and the kernel. With
// LASGRAD_CUDA_SYNC=1 in the environment it also waits for the kernel, so a fault inside it is reported
// by the op that caused it instead of by a later call (slow; for debugging).
void check_launch(const char* op, const char* kernel);
#define LASGRAD_LAUNCH_CHECK(op, kernel) ::lasgrad::cuda::check_launch(op, kernel)

// The launcher of the kernels' launch plans (the *_kernels.cuh headers, which the tests also run on a
// CPU emulator): launch(kernel, name, grid, block, smem_bytes, args...) runs `kernel` with <<<>>>, raising
// its dynamic shared-memory limit first when it asks for any (the default stops at 48 KiB; a cheap
// host-side call, made every time rather than cached), then checks the launch, naming `op` and the
// kernel; launch.copy(dst, src, bytes) copies device memory, queued like a kernel.
struct Launch {
  const char* op;
  template <class... P, class... A>
  void operator()(void (*kernel)(P...), const char* name, Extent grid, Extent block, size_t smem,
                  const A&... args) const {
    if (smem > 0)
      LASGRAD_CUDA_CHECK(
          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)), op);
    const dim3 g(static_cast<unsigned>(grid.x), static_cast<unsigned>(grid.y), static_cast<unsigned>(grid.z));
    const dim3 b(static_cast<unsigned>(block.x), static_cast<unsigned>(block.y), static_cast<unsigned>(block.z));
    kernel<<<g, b, smem>>>(args...);
    check_launch(op, name);
  }
  void copy(void* dst, const void* src, size_t bytes) const {
    if (bytes && dst != src) LASGRAD_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0), op);
  }
};

}  // namespace lasgrad::cuda
