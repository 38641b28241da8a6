// Helpers shared by the CUDA kernels: error checks that throw lasgrad::Error, launch geometry, typed
// math wrappers, and warp/block reductions. Internal to engine/cuda.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/cuda/cuda_backend.h"
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

constexpr int kThreads = 256;  // threads per block of the element-wise and row kernels

// Blocks for n elements at kThreads each, capped: the element-wise kernels loop grid-stride, so a
// capped grid still covers n, and a huge n does not overflow the grid's x limit.
inline unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > (1 << 20) ? (1 << 20) : b));
}

// Typed math: the float overloads call the single-precision functions (expf, ...), never the double ones.
__device__ inline float dexp(float x) { return expf(x); }
__device__ inline double dexp(double x) { return exp(x); }
__device__ inline float dlog(float x) { return logf(x); }
__device__ inline double dlog(double x) { return log(x); }
__device__ inline float dsqrt(float x) { return sqrtf(x); }
__device__ inline double dsqrt(double x) { return sqrt(x); }
__device__ inline float dtanh(float x) { return tanhf(x); }
__device__ inline double dtanh(double x) { return tanh(x); }
__device__ inline float derf(float x) { return erff(x); }
__device__ inline double derf(double x) { return erf(x); }

template <class T>
__device__ inline T neg_inf() {
  return -static_cast<T>(INFINITY);
}

template <class T>
__device__ inline T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <class T>
__device__ inline T warp_max(T v) {
  for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// The sum (max) of v over the block, returned to every thread. blockDim.x must be a multiple of 32 and
// at most 1024; `scratch` holds 32 entries. Every thread of the block must call it (it synchronises).
template <class T>
__device__ T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : T(0);
  return warp_sum(v);
}
template <class T>
__device__ T block_max(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : neg_inf<T>();
  return warp_max(v);
}

// Threads for a kernel with one block per row of `len` entries: enough to cover short rows, at most kThreads.
inline int row_threads(int64_t len) {
  int t = 32;
  while (t < kThreads && t < len) t *= 2;
  return t;
}

}  // namespace lasgrad::cuda
