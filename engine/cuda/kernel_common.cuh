// What the CUDA kernels share: launch geometry, typed math wrappers, warp and block reductions. It
// includes no CUDA header: the includer provides __device__, threadIdx, __shfl_xor_sync, __syncthreads,
// either nvcc (through cuda_util.cuh) or the CPU emulator of the thread model that runs kernels in the
// tests without a GPU (tests/cuda/simt_emulator.h).
#pragma once
#include <math.h>

#include <cstddef>
#include <cstdint>

// This code is compiled twice: by nvcc for the GPU, and as host C++ for the emulator in the tests. The
// inline namespace LASGRAD_CUDA_ABI ("device"; the emulator names it "emulator") keeps the two copies'
// symbols apart, so that a test linking both never gets one in place of the other.
#ifndef LASGRAD_CUDA_ABI
#define LASGRAD_CUDA_ABI device
#endif

namespace lasgrad::cuda {
inline namespace LASGRAD_CUDA_ABI {

// The grid or block extents of a launch plan (nvcc's dim3, minus the CUDA header); y and z default to 1.
struct Extent {
  int64_t x, y, z;
  constexpr Extent(int64_t x_, int64_t y_ = 1, int64_t z_ = 1) : x(x_), y(y_), z(z_) {}
};

constexpr int kThreads = 256;  // threads per block of the element-wise and row kernels

// Blocks for n elements at kThreads each, capped: the element-wise kernels loop grid-stride, so a
// capped grid still covers n, and a huge n does not overflow the grid's x limit.
inline unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > (1 << 20) ? (1 << 20) : b));
}

// A scratch buffer of n elements of E from `mem` (`mem.allocate(bytes)`, `mem.deallocate(ptr, bytes)`:
// the backend, whose caching allocator serves it on the GPU), returned when it goes out of scope. That
// may be before the queued kernels that use it have run: later users of the block queue behind them.
template <class E, class Mem>
struct Scratch {
  Mem& mem;
  size_t bytes;
  E* p;
  Scratch(Mem& m, int64_t n)
      : mem(m), bytes(static_cast<size_t>(n) * sizeof(E)), p(static_cast<E*>(m.allocate(bytes))) {}
  ~Scratch() { mem.deallocate(p, bytes); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

// Threads for a kernel with one block per row of `len` entries: enough to cover short rows, at most kThreads.
inline int row_threads(int64_t len) {
  int t = 32;
  while (t < kThreads && t < len) t *= 2;
  return t;
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

}  // namespace LASGRAD_CUDA_ABI
}  // namespace lasgrad::cuda
