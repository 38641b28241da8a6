// sum_to: the sum of x over the axes where out has size 1 (the backward of broadcasting, sum and mean).
//
// As on the CPU, the axes are coalesced into alternating kept/reduced runs and reduced one run at a
// time, innermost first, each step viewing its input as [A, R, B] and writing [A, B]. Sums accumulate
// in double. No atomics: a long R is cut into fixed slices whose partials go to a buffer that the next
// step reduces, so the result depends only on the shapes (deterministic run to run).
//
// Kernels and launch plan live in this header, free of CUDA headers, so that the same code runs on the GPU
// (reduce.cu) and on the CPU emulator of the thread model in the tests (test_cuda_emulated.cpp).
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/cuda/elementwise_kernels.cuh"
#include "engine/cuda/kernel_common.cuh"
#include "engine/dispatch.h"
#include "engine/layout_plan.h"
#include "engine/tensor.h"

namespace lasgrad::cuda {
inline namespace LASGRAD_CUDA_ABI {
namespace reduce {

constexpr int64_t kSlice = 4096;          // rows of R summed by one block (row case)
constexpr int64_t kColThreads = 1 << 17;  // column case: aim for this many threads (a full H100 is ~270K)

// Row case (B == 1): x [A, R] -> out [A, S], S = ceil(R / kSlice): out[a, s] = sum of x[a, s*kSlice ..].
// One block of kThreads per (a, s) (grid.x = A * S); threads stride the slice (coalesced), then a block sum.
template <class In, class Out>
__global__ void sum_rows_kernel(const In* x, int64_t R, int64_t S, Out* out) {
  __shared__ double scratch[32];
  const int64_t a = blockIdx.x / S, s = blockIdx.x % S;
  const int64_t r0 = s * kSlice, r1 = min(R, r0 + kSlice);
  const In* row = x + a * R;
  double acc = 0;
  for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x) acc += static_cast<double>(row[r]);
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = static_cast<Out>(acc);
}

// Column case (B > 1): x [A, R, B] -> out [A, S, B]: out[a, s, b] = sum over the rows r of slice s
// (`slice` rows each) of x[a, r, b]. A thread per (a, s, b), consecutive threads on consecutive b
// (coalesced); grid-stride over A*S*B.
template <class In, class Out>
__global__ void sum_cols_kernel(const In* x, int64_t A, int64_t R, int64_t B, int64_t S, int64_t slice, Out* out) {
  const int64_t n = A * S * B;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i % B, s = i / B % S, a = i / (B * S);
    const int64_t r0 = s * slice, r1 = min(R, r0 + slice);
    const In* col = x + a * R * B + b;
    double acc = 0;
    for (int64_t r = r0; r < r1; ++r) acc += static_cast<double>(col[r * B]);
    out[i] = static_cast<Out>(acc);
  }
}

// ---- launch plan ----
// `launch(kernel, name, grid, block, smem_bytes, args...)` runs a kernel, `launch.copy(dst, src, bytes)`
// copies device memory; `mem.allocate(bytes)` and `mem.deallocate(ptr, bytes)` give the scratch buffers
// (the backend's caching allocator on the GPU), through Scratch (kernel_common.cuh).

// One launch of the [A, R, B] -> [A, S, B] slice reduction, `slice` rows per slice.
template <class In, class Out, class Launch>
void launch_slices(const In* x, int64_t A, int64_t R, int64_t B, int64_t S, int64_t slice, Out* out,
                   const Launch& launch) {
  if (B == 1)
    launch(sum_rows_kernel<In, Out>, "sum_rows_kernel", Extent{A * S}, Extent{kThreads}, size_t{0}, x, R, S, out);
  else
    launch(sum_cols_kernel<In, Out>, "sum_cols_kernel", Extent{blocks_for(A * S * B)}, Extent{kThreads}, size_t{0}, x,
           A, R, B, S, slice, out);
}

// out [A, B] = sum over R of x [A, R, B]: slices into a double buffer until one slice is left. Row sums
// take kSlice rows per block. Column sums cut R into as many slices as keep about kColThreads threads
// busy: a bias gradient [100000, 256] -> [256] gets ~512 slices of ~200 rows, not 256 threads each
// walking 100000 rows. Both depend on the shapes only.
template <class In, class Out, class Mem, class Launch>
void reduce_mid(const In* x, int64_t A, int64_t R, int64_t B, Out* out, Mem& mem, const Launch& launch) {
  int64_t slice = kSlice;
  if (B > 1) {
    const int64_t want = std::max<int64_t>(1, std::min<int64_t>(R, kColThreads / std::max<int64_t>(1, A * B)));
    slice = R <= 512 ? R : std::max<int64_t>(16, (R + want - 1) / want);  // short columns: one pass
  }
  const int64_t S = (R + slice - 1) / slice;
  if (S <= 1) return launch_slices(x, A, R, B, int64_t{1}, R, out, launch);
  if (B == 1 && A * S > (int64_t{1} << 31) - 1)
    throw Error("sum_to: the cuda kernel's grid cannot hold " + std::to_string(A * S) + " row slices");
  Scratch<double, Mem> part(mem, A * S * B);
  launch_slices(x, A, R, B, S, slice, part.p, launch);
  reduce_mid(static_cast<const double*>(part.p), A, S, B, out, mem, launch);
}

// out = x summed over the axes where out has size 1 (same rank).
template <class Mem, class Launch>
void sum_to(const Tensor& x, Tensor& out, Mem& mem, const Launch& launch) {
  dispatch_floating("sum_to", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    if (out.numel() == 0) return;
    if (x.numel() == 0) return elementwise::fill(out, 0.0, launch);
    const std::vector<ReduceStep> steps = plan_sum_to(x.shape(), out.shape());
    if (steps.empty()) return launch.copy(op, xp, x.nbytes());
    // Intermediate results between steps are double buffers.
    std::unique_ptr<Scratch<double, Mem>> cur;
    for (size_t s = 0; s < steps.size(); ++s) {
      const auto [A, R, B] = steps[s];
      const bool first = s == 0, last = s + 1 == steps.size();
      std::unique_ptr<Scratch<double, Mem>> next;
      if (!last) next = std::make_unique<Scratch<double, Mem>>(mem, A * B);
      if (first && last) reduce_mid(xp, A, R, B, op, mem, launch);
      else if (first) reduce_mid(xp, A, R, B, next->p, mem, launch);
      else if (last) reduce_mid(static_cast<const double*>(cur->p), A, R, B, op, mem, launch);
      else reduce_mid(static_cast<const double*>(cur->p), A, R, B, next->p, mem, launch);
      cur = std::move(next);
    }
  });
}

}  // namespace reduce
}  // namespace LASGRAD_CUDA_ABI
}  // namespace lasgrad::cuda
