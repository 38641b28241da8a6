// The neural-network kernels of the GPU backend: softmax, cross-entropy, layer norm, embedding, sequence
// average pooling. Row-wise kernels run one block per row (row_threads(len) threads, grid = rows);
// statistics are reduced in the block. Inputs the op layer cannot validate without reading device
// memory (targets, ids) are checked in the kernel: the first bad entry is recorded in a two-word error
// flag (row or position, value), which the caller arms before and reads back after the launch.
//
// Kernels and launch plans live in this header, free of CUDA headers, so that the same code runs on
// the GPU (nn.cu) and on the CPU emulator of the thread model in the tests (test_cuda_emulated.cpp).
// Each plan mirrors the CudaBackend method of its name minus what needs the CUDA runtime (arming and
// reading the flag, scratch memory); `launch(kernel, name, grid, block, smem_bytes, args...)` runs a kernel.
#pragma once
#include <cstdint>
#include <string>

#include "engine/cuda/kernel_common.cuh"
#include "engine/dispatch.h"
#include "engine/tensor.h"

namespace lasgrad::cuda {
inline namespace LASGRAD_CUDA_ABI {
namespace nn {

// ---- softmax ----

// x, y [R, C], grid R, block row_threads(C): y = softmax of each row; a row of only -inf gives zeros.
template <class T>
__global__ void softmax_kernel(const T* x, T* y, int64_t C) {
  __shared__ T scratch[32];
  const T* xr = x + blockIdx.x * C;
  T* yr = y + blockIdx.x * C;
  T m = neg_inf<T>();
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) m = fmax(m, xr[i]);
  m = block_max(m, scratch);
  if (m == neg_inf<T>()) {
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) yr[i] = T(0);
    return;
  }
  T s = 0;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) s += dexp(xr[i] - m);
  const T inv = T(1) / block_sum(s, scratch);
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) yr[i] = dexp(xr[i] - m) * inv;
}

// y, dy, dx [R, C], grid R: dx = y * (dy - sum(dy * y)); dx may alias y or dy (each entry is read
// before its own write, and the row dot is complete before any write).
template <class T>
__global__ void softmax_grad_kernel(const T* y, const T* dy, T* dx, int64_t C) {
  __shared__ double scratch[32];
  const int64_t off = blockIdx.x * C;
  double d = 0;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) d += double(y[off + i]) * double(dy[off + i]);
  const T dot = static_cast<T>(block_sum(d, scratch));
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) dx[off + i] = y[off + i] * (dy[off + i] - dot);
}

// ---- cross-entropy ----

// Records (row, target) of a bad target in flag[0..1] (the first one to win the CAS).
__device__ void report_bad(int* flag, int64_t row, int32_t value) {
  if (atomicCAS(flag, -1, static_cast<int>(row)) == -1) flag[1] = value;
}

// The row's max m and sum of exp(x - m), reduced over the block (every thread gets both).
template <class T>
__device__ void row_max_sum(const T* xr, int64_t C, T* scratch, T& m, T& s) {
  m = neg_inf<T>();
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) m = fmax(m, xr[i]);
  m = block_max(m, scratch);
  s = 0;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) s += dexp(xr[i] - m);
  s = block_sum(s, scratch);
}

// logits [N, C], targets [N] -> loss [N]; grid N, block row_threads(C).
template <class T>
__global__ void cross_entropy_kernel(const T* x, const int32_t* t, int64_t C, int64_t ignore, T* loss, int* flag) {
  __shared__ T scratch[32];
  const int64_t n = blockIdx.x;
  const T* xr = x + n * C;
  const int32_t tn = t[n];
  const bool ignored = tn == ignore;
  if (!ignored && (tn < 0 || tn >= C)) {
    if (threadIdx.x == 0) report_bad(flag, n, tn);
    return;
  }
  T m, s;
  row_max_sum(xr, C, scratch, m, s);
  // The loss in the shifted frame, log(sum) - (x_t - m): both terms are small.
  if (threadIdx.x == 0) loss[n] = ignored ? T(0) : dlog(s) - (xr[tn] - m);
}

// logits, dlogits [N, C], targets [N]; grid N, block row_threads(C): dlogits = scale * (softmax - onehot),
// 0 on ignored rows. The softmax is recomputed from the row (see backend.h).
template <class T>
__global__ void cross_entropy_grad_kernel(const T* x, const int32_t* t, int64_t C, int64_t ignore, T k, T* dx,
                                          int* flag) {
  __shared__ T scratch[32];
  const int64_t n = blockIdx.x;
  const int32_t tn = t[n];
  T* dr = dx + n * C;
  if (tn == ignore) {
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) dr[i] = T(0);
    return;
  }
  if (tn < 0 || tn >= C) {
    if (threadIdx.x == 0) report_bad(flag, n, tn);
    return;
  }
  const T* xr = x + n * C;
  T m, s;
  row_max_sum(xr, C, scratch, m, s);
  const T ks = k / s;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) dr[i] = dexp(xr[i] - m) * ks - (i == tn ? k : T(0));
}

// ---- layer norm ----

// x, y [R, D], gamma, beta [D] -> y, mean, rstd [R]; grid R, block row_threads(D). Two passes in double
// (mean, then the centred sum of squares, which does not cancel like E[x^2] - mean^2).
template <class T>
__global__ void layer_norm_kernel(const T* x, const T* g, const T* b, double eps, int64_t D, T* y, T* mean, T* rstd) {
  __shared__ double scratch[32];
  const T* xr = x + blockIdx.x * D;
  double s = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) s += double(xr[i]);
  const double mu = block_sum(s, scratch) / D;
  double v = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    const double c = double(xr[i]) - mu;
    v += c * c;
  }
  const double var = block_sum(v, scratch) / D;
  const T m = static_cast<T>(mu), rs = static_cast<T>(1.0 / sqrt(var + eps));
  if (threadIdx.x == 0) mean[blockIdx.x] = m, rstd[blockIdx.x] = rs;
  T* yr = y + blockIdx.x * D;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) yr[i] = (xr[i] - m) * rs * g[i] + b[i];
}

// dx [R, D]; grid R: dx = rstd * (g - mean(g) - xh * mean(g * xh)), g = dy * gamma, xh = (x - mean) * rstd.
template <class T>
__global__ void layer_norm_dx_kernel(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy, int64_t D,
                                     T* dx) {
  __shared__ double scratch[32];
  const int64_t off = blockIdx.x * D;
  const T m = mean[blockIdx.x], rs = rstd[blockIdx.x];
  double sg = 0, sgx = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    const double gi = double(dy[off + i]) * gamma[i];
    sg += gi;
    sgx += gi * ((x[off + i] - m) * rs);
  }
  const T c1 = static_cast<T>(block_sum(sg, scratch) / D), c2 = static_cast<T>(block_sum(sgx, scratch) / D);
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    const T xh = (x[off + i] - m) * rs;
    dx[off + i] = rs * (dy[off + i] * gamma[i] - c1 - xh * c2);
  }
}

constexpr int64_t kLnRows = 256;  // rows per partial of dgamma/dbeta

// part [S, 2, D] (double): part[s, 0, d] = sum over rows of slice s of dy * xh, part[s, 1, d] = of dy.
// A thread per (s, d), consecutive threads on consecutive d (coalesced); grid-stride over S * D.
template <class T>
__global__ void layer_norm_dgb_partial_kernel(const T* x, const T* mean, const T* rstd, const T* dy, int64_t R,
                                              int64_t D, int64_t S, double* part) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < S * D; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t d = i % D, s = i / D, r1 = min(R, (s + 1) * kLnRows);
    double pg = 0, pb = 0;
    for (int64_t r = s * kLnRows; r < r1; ++r) {
      const T g = dy[r * D + d];
      pg += double(g) * ((x[r * D + d] - mean[r]) * rstd[r]);
      pb += double(g);
    }
    part[(2 * s) * D + d] = pg;
    part[(2 * s + 1) * D + d] = pb;
  }
}

// dgamma, dbeta [D] = the partials added in slice order; a thread per d.
template <class T>
__global__ void layer_norm_dgb_final_kernel(const double* part, int64_t D, int64_t S, T* dg, T* db) {
  for (int64_t d = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; d < D; d += int64_t(gridDim.x) * blockDim.x) {
    double sg = 0, sb = 0;
    for (int64_t s = 0; s < S; ++s) sg += part[(2 * s) * D + d], sb += part[(2 * s + 1) * D + d];
    dg[d] = static_cast<T>(sg);
    db[d] = static_cast<T>(sb);
  }
}

// ---- embedding ----

// table [V, D], ids [N], out [N, D]; a thread per output entry, grid-stride. A bad id is reported.
template <class E>
__global__ void embedding_kernel(const E* table, const int32_t* ids, int64_t V, int64_t D, int64_t N, E* out,
                                 int* flag) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < N * D; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / D, id = ids[n];
    if (id < 0 || id >= V) {
      if (i % D == 0) report_bad(flag, n, static_cast<int32_t>(id));
      continue;
    }
    out[i] = table[id * D + i % D];
  }
}

// ids [N]: records the first id outside [0, V) in the flag. Grid-stride.
__global__ void check_ids_kernel(const int32_t* ids, int64_t V, int64_t N, int* flag) {
  for (int64_t n = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; n < N; n += int64_t(gridDim.x) * blockDim.x)
    if (ids[n] < 0 || ids[n] >= V) report_bad(flag, n, ids[n]);
}

// dtable[v, d] += sum over n with ids[n] == v of dout[n, d], added in the order n = 0, 1, .. in T: the
// CPU kernel's sums, bit for bit, and deterministic (the backend contract). A thread per (v, d),
// consecutive threads on consecutive d (coalesced dout reads; ids[n] is the same address for the whole
// warp). It scans all N ids, O(V N D) work: cheap for the small vocabularies of this project's tasks;
// kDetEmbedWork bounds it, and above that embedding_grad_atomic_kernel takes over.
template <class T>
__global__ void embedding_grad_kernel(const int32_t* ids, const T* dout, int64_t V, int64_t D, int64_t N, T* dtable) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < V * D; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t v = i / D, d = i % D;
    T acc = dtable[i];
    for (int64_t n = 0; n < N; ++n)
      if (ids[n] == v) acc += dout[n * D + d];
    dtable[i] = acc;
  }
}
constexpr int64_t kDetEmbedWork = int64_t{1} << 33;  // V * N * D; ~10 ms on an H100 (estimated, not measured)

// Large vocabularies: dtable[ids[n]] += dout[n] with atomicAdd, a thread per dout entry. Rows sharing an
// id add in an order the hardware picks, so float sums may differ in the last bits from run to run: the
// one exception to the backend's determinism, taken only above kDetEmbedWork.
template <class T>
__global__ void embedding_grad_atomic_kernel(const int32_t* ids, const T* dout, int64_t V, int64_t D, int64_t N,
                                             T* dtable) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < N * D; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t id = ids[i / D];
    if (id >= 0 && id < V) atomicAdd(dtable + id * D + i % D, dout[i]);
  }
}

// ---- sequence average pooling ----

// x, out [B, L, D]: out[b, l, d] = (1/P) sum over j in [l - P/2, l + P/2] ∩ [0, L) of x[b, j, d].
// A thread per output entry (grid-stride), summing its window in double: P is small (3..9), and this
// keeps every entry independent (no running sum to serialise along L). out must not alias x.
template <class T>
__global__ void avg_pool_seq_kernel(const T* x, int64_t L, int64_t D, int64_t P, int64_t n, T* out) {
  const int64_t h = P / 2;
  const double inv = 1.0 / static_cast<double>(P);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t d = i % D, l = i / D % L, b = i / (D * L);
    const T* xb = x + b * L * D + d;
    double acc = 0;
    for (int64_t j = max(int64_t{0}, l - h); j <= min(L - 1, l + h); ++j) acc += double(xb[j * D]);
    out[i] = static_cast<T>(acc * inv);
  }
}

// ---- launch plans ----

inline int64_t rows_of(const Tensor& x, int64_t len) { return len ? x.numel() / len : 0; }

// One block per row: refused beyond a cuda grid's x limit.
inline int64_t row_grid(const char* op, int64_t rows) {
  if (rows > (int64_t{1} << 31) - 1)
    throw Error(std::string(op) + ": too many rows for one cuda grid: " + std::to_string(rows));
  return rows;
}

template <class Launch>
void softmax(const Tensor& x, Tensor& y, const Launch& launch) {
  dispatch_floating("softmax", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t C = x.ndim() ? x.dim(-1) : 1, R = rows_of(x, C);
    if (R == 0) return;
    launch(softmax_kernel<T>, "softmax_kernel", row_grid("softmax", R), row_threads(C), size_t{0}, x.data<T>(),
           y.data<T>(), C);
  });
}

template <class Launch>
void softmax_grad(const Tensor& y, const Tensor& dy, Tensor& dx, const Launch& launch) {
  dispatch_floating("softmax_grad", y.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t C = y.ndim() ? y.dim(-1) : 1, R = rows_of(y, C);
    if (R == 0) return;
    launch(softmax_grad_kernel<T>, "softmax_grad_kernel", row_grid("softmax_grad", R), row_threads(C), size_t{0},
           y.data<T>(), dy.data<T>(), dx.data<T>(), C);
  });
}

// `flag`: the armed error flag (both words -1).
template <class Launch>
void cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Tensor& loss, int* flag,
                   const Launch& launch) {
  dispatch_floating("cross_entropy", logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t N = logits.dim(0), C = logits.dim(1);
    if (N == 0) return;
    launch(cross_entropy_kernel<T>, "cross_entropy_kernel", row_grid("cross_entropy", N), row_threads(C), size_t{0},
           logits.data<T>(), targets.data<int32_t>(), C, ignore_index, loss.data<T>(), flag);
  });
}

template <class Launch>
void cross_entropy_grad(const Tensor& logits, const Tensor& targets, int64_t ignore_index, double scale,
                        Tensor& dlogits, int* flag, const Launch& launch) {
  dispatch_floating("cross_entropy_grad", logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t N = logits.dim(0), C = logits.dim(1);
    if (N == 0) return;
    launch(cross_entropy_grad_kernel<T>, "cross_entropy_grad_kernel", row_grid("cross_entropy_grad", N), row_threads(C),
           size_t{0}, logits.data<T>(), targets.data<int32_t>(), C, ignore_index, static_cast<T>(scale),
           dlogits.data<T>(), flag);
  });
}

template <class Launch>
void layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& y, Tensor& mean,
                Tensor& rstd, const Launch& launch) {
  dispatch_floating("layer_norm", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t D = x.dim(-1), R = rows_of(x, D);
    if (R == 0) return;
    launch(layer_norm_kernel<T>, "layer_norm_kernel", row_grid("layer_norm", R), row_threads(D), size_t{0}, x.data<T>(),
           gamma.data<T>(), beta.data<T>(), eps, D, y.data<T>(), mean.data<T>(), rstd.data<T>());
  });
}

// dx [R, D], and dgamma, dbeta [D] summed over the rows (zeros when R = 0); the partial sums [S, 2, D]
// go to double scratch from `mem`.
template <class Mem, class Launch>
void layer_norm_grad(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                     Tensor& dx, Tensor& dgamma, Tensor& dbeta, Mem& mem, const Launch& launch) {
  dispatch_floating("layer_norm_grad", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t D = x.dim(-1), R = rows_of(x, D), S = (R + kLnRows - 1) / kLnRows;
    if (D == 0) return;
    Scratch<double, Mem> part(mem, 2 * S * D);
    if (R > 0) {
      launch(layer_norm_dx_kernel<T>, "layer_norm_dx_kernel", row_grid("layer_norm_grad", R), row_threads(D), size_t{0},
             x.data<T>(), gamma.data<T>(), mean.data<T>(), rstd.data<T>(), dy.data<T>(), D, dx.data<T>());
      launch(layer_norm_dgb_partial_kernel<T>, "layer_norm_dgb_partial_kernel", int64_t{blocks_for(S * D)}, kThreads,
             size_t{0}, x.data<T>(), mean.data<T>(), rstd.data<T>(), dy.data<T>(), R, D, S, part.p);
    }
    launch(layer_norm_dgb_final_kernel<T>, "layer_norm_dgb_final_kernel", int64_t{blocks_for(D)}, kThreads, size_t{0},
           static_cast<const double*>(part.p), D, S, dgamma.data<T>(), dbeta.data<T>());  // S = 0: zeros
  });
}

// Copies rows of any dtype (the bits moved as they are).
template <class Launch>
void embedding(const Tensor& table, const Tensor& ids, Tensor& out, int* flag, const Launch& launch) {
  const int64_t V = table.dim(0), D = table.dim(1), N = ids.numel();
  if (N == 0 || D == 0) return;
  dispatch_size(table.dtype(), [&](auto tag) {
    using E = decltype(tag);
    launch(embedding_kernel<E>, "embedding_kernel", int64_t{blocks_for(N * D)}, kThreads, size_t{0},
           static_cast<const E*>(table.raw()), ids.data<int32_t>(), V, D, N, static_cast<E*>(out.raw()), flag);
  });
}

// The first step of embedding_grad: the ids are checked (into the armed flag) before anything is added.
template <class Launch>
void check_ids(const Tensor& ids, int64_t V, int* flag, const Launch& launch) {
  const int64_t N = ids.numel();
  if (N == 0) return;
  launch(check_ids_kernel, "check_ids_kernel", int64_t{blocks_for(N)}, kThreads, size_t{0}, ids.data<int32_t>(), V, N,
         flag);
}

// The second step, once the ids are known to be valid.
template <class Launch>
void embedding_grad(const Tensor& ids, const Tensor& dout, Tensor& dtable, const Launch& launch) {
  dispatch_floating("embedding_grad", dtable.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t V = dtable.dim(0), D = dtable.dim(1), N = ids.numel();
    if (N == 0 || D == 0) return;
    if (static_cast<double>(V) * static_cast<double>(N) * static_cast<double>(D) <= static_cast<double>(kDetEmbedWork))
      launch(embedding_grad_kernel<T>, "embedding_grad_kernel", int64_t{blocks_for(V * D)}, kThreads, size_t{0},
             ids.data<int32_t>(), dout.data<T>(), V, D, N, dtable.data<T>());
    else
      launch(embedding_grad_atomic_kernel<T>, "embedding_grad_atomic_kernel", int64_t{blocks_for(N * D)}, kThreads,
             size_t{0}, ids.data<int32_t>(), dout.data<T>(), V, D, N, dtable.data<T>());
  });
}

template <class Launch>
void avg_pool_seq(const Tensor& x, int64_t P, Tensor& out, const Launch& launch) {
  dispatch_floating("avg_pool_seq", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t L = x.dim(1), D = x.dim(2), n = x.numel();
    if (n == 0) return;
    launch(avg_pool_seq_kernel<T>, "avg_pool_seq_kernel", int64_t{blocks_for(n)}, kThreads, size_t{0}, x.data<T>(), L,
           D, P, n, out.data<T>());
  });
}

}  // namespace nn
}  // namespace LASGRAD_CUDA_ABI
}  // namespace lasgrad::cuda
