// Data movement kernels of the GPU backend: permute (a tiled transpose, or a general gather) and
// copy_axis (slice/concat). Both move raw elements of the dtype's size, so one instantiation serves
// float and int32, another double. The axis grouping comes from plan_permute, shared with the CPU.
//
// Kernels and launch plans live in this header, free of CUDA headers, so that the same code runs on the
// GPU (layout.cu) and on the CPU emulator of the thread model in the tests (test_cuda_emulated.cpp).
// `launch(kernel, name, grid, block, smem_bytes, args...)` runs a kernel; `launch.copy(dst, src, bytes)`
// copies device memory.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/cuda/kernel_common.cuh"
#include "engine/dispatch.h"
#include "engine/layout_plan.h"
#include "engine/tensor.h"

namespace lasgrad::cuda {
inline namespace LASGRAD_CUDA_ABI {
namespace layout {

constexpr int kTile = 32;  // transpose tile: 32 x 32 elements
constexpr int kRowsPerPass = 8;

// x [batch, R, C] -> out [batch, C, R]. Block (32, 8) per 32 x 32 tile, grid (ceil(C/32), ceil(R/32),
// batch): reads rows of x and writes rows of out through a shared tile, both coalesced; the +1 column
// of padding puts the tile's column reads on 32 different banks.
template <class E>
__global__ void transpose_kernel(const E* x, E* out, int64_t R, int64_t C) {
  __shared__ E tile[kTile][kTile + 1];
  const int64_t b = blockIdx.z, c0 = int64_t(blockIdx.x) * kTile, r0 = int64_t(blockIdx.y) * kTile;
  const E* xb = x + b * R * C;
  E* ob = out + b * R * C;
  for (int i = threadIdx.y; i < kTile; i += kRowsPerPass) {
    const int64_t r = r0 + i, c = c0 + threadIdx.x;
    if (r < R && c < C) tile[i][threadIdx.x] = xb[r * C + c];
  }
  __syncthreads();
  for (int i = threadIdx.y; i < kTile; i += kRowsPerPass) {
    const int64_t c = c0 + i, r = r0 + threadIdx.x;
    if (r < R && c < C) ob[c * R + r] = tile[threadIdx.x][i];
  }
}

constexpr int kMaxDims = 8;
struct Strides {
  int ndim;
  int64_t dims[kMaxDims];     // output extents (coalesced groups)
  int64_t strides[kMaxDims];  // x's element stride of each output axis
  int64_t n;
};

// out [s.n] written in order; x gathered with s.strides. Grid-stride, one element per thread.
template <class E>
__global__ void permute_kernel(const E* x, E* out, Strides s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < s.n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rem = i, off = 0;
    for (int k = s.ndim - 1; k >= 0; --k) {
      off += rem % s.dims[k] * s.strides[k];
      rem /= s.dims[k];
    }
    out[i] = x[off];
  }
}

// src viewed [outer, sa, inner], dst [outer, da, inner]: dst[o, ds + l, i] = src[o, ss + l, i] for l < len.
// Grid-stride over outer * len * inner elements.
template <class E>
__global__ void copy_axis_kernel(const E* src, int64_t ss, int64_t sa, E* dst, int64_t ds, int64_t da, int64_t len,
                                 int64_t inner, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t in = i % inner, l = i / inner % len, o = i / (inner * len);
    dst[(o * da + ds + l) * inner + in] = src[(o * sa + ss + l) * inner + in];
  }
}

// ---- launch plans ----

// out.shape[i] = x.shape[perm[i]]; any dtype. Coalesced by plan_permute, as on the CPU.
template <class Launch>
void permute(const Tensor& x, const std::vector<int>& perm, Tensor& out, const Launch& launch) {
  if (x.numel() == 0) return;
  const PermutePlan plan = plan_permute(x.shape(), perm);
  const int g = plan.groups();
  const std::vector<int>& xorder = plan.xorder;
  const std::vector<int64_t>& gdim = plan.dims;
  if (g <= 1) return launch.copy(out.raw(), x.raw(), x.nbytes());
  if (g > kMaxDims)
    throw Error("permute: the cuda kernel moves at most " + std::to_string(kMaxDims) + " separate axis groups, " +
                shape_str(x.shape()) + " needs " + std::to_string(g));
  dispatch_size(x.dtype(), [&](auto tag) {
    using E = decltype(tag);
    const E* xp = static_cast<const E*>(x.raw());
    E* op = static_cast<E*>(out.raw());
    // [R, C] -> [C, R] and [B, R, C] -> [B, C, R]: the tiled transpose.
    int64_t batch = 0, R = 0, C = 0;
    if (g == 2 && xorder[0] == 1) batch = 1, R = gdim[1], C = gdim[0];
    if (g == 3 && xorder[0] == 0 && xorder[1] == 2) batch = gdim[0], R = gdim[2], C = gdim[1];
    if (batch > 0 && batch <= 65535 && (R + kTile - 1) / kTile <= 65535) {
      launch(transpose_kernel<E>, "transpose_kernel", Extent{(C + kTile - 1) / kTile, (R + kTile - 1) / kTile, batch},
             Extent{kTile, kRowsPerPass}, size_t{0}, xp, op, R, C);
      return;
    }
    Strides st{g, {}, {}, x.numel()};
    for (int i = 0; i < g; ++i) st.dims[i] = gdim[i], st.strides[i] = plan.strides[i];
    launch(permute_kernel<E>, "permute_kernel", Extent{blocks_for(st.n)}, Extent{kThreads}, size_t{0}, xp, op, st);
  });
}

// dst[.., dst_start + l, ..] = src[.., src_start + l, ..] along `axis` for l < len.
template <class Launch>
void copy_axis(const Tensor& src, int64_t src_start, Tensor& dst, int64_t dst_start, int axis, int64_t len,
               const Launch& launch) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= src.shape()[i];
  for (int i = axis + 1; i < src.ndim(); ++i) inner *= src.shape()[i];
  const int64_t sa = src.shape()[axis], da = dst.shape()[axis], n = outer * len * inner;
  if (n == 0) return;
  const size_t es = dtype_size(src.dtype());
  if (outer == 1)  // one contiguous block
    return launch.copy(static_cast<char*>(dst.raw()) + dst_start * inner * es,
                       static_cast<const char*>(src.raw()) + src_start * inner * es,
                       static_cast<size_t>(len * inner) * es);
  dispatch_size(src.dtype(), [&](auto tag) {
    using E = decltype(tag);
    launch(copy_axis_kernel<E>, "copy_axis_kernel", Extent{blocks_for(n)}, Extent{kThreads}, size_t{0},
           static_cast<const E*>(src.raw()), src_start, sa, static_cast<E*>(dst.raw()), dst_start, da, len, inner, n);
  });
}

}  // namespace layout
}  // namespace LASGRAD_CUDA_ABI
}  // namespace lasgrad::cuda
