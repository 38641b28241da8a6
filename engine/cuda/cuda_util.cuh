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
#define LASGRAD_CUDA_CHECK(call, op)                                                        \
  do {                                                                                      \
    cudaError_t e_ = (call);                                                                \
    if (e_ != cudaSuccess) ::lasgrad::cuda::throw_cuda(e_, #call, op, __FILE__, __LINE__); \
  } while (0)

#define LASGRAD_CUBLAS_CHECK(call, op)                                                                  \
  do {                                                                                                  \
    cublasStatus_t s_ = (call);                                                                         \
    if (s_ != CUBLAS_STATUS_SUCCESS) ::lasgrad::cuda::throw_cublas(s_, #call, op, __FILE__, __LINE__); \
  } while (0)

// After every launch: a bad configuration surfaces here, naming the op and the kernel. With
// LASGRAD_CUDA_SYNC=1 in the environment it also waits for the kernel, so a fault inside it is reported
// by the op that caused it instead of by a later call (slow; for debugging).
void check_launch(const char* op, const char* kernel);
#define LASGRAD_LAUNCH_CHECK(op, kernel) ::lasgrad::cuda::check_launch(op, kernel)

}  // namespace lasgrad::cuda
