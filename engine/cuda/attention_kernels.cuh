// The fused LaS attention kernels of the GPU backend: flash-attention tiling in shared memory (online
// softmax, only the row logsumexp saved, never an L x L matrix), with the multiplicative decay applied
// to each logits tile on the fly. The smoothing is already folded into V (spec §2) by the op layer, so these kernels
// see V~.
//
// Three kernels and a helper, all with 128 threads per block seen as 16 row groups x 8 column groups
// (thread t: rg = t / 8, cg = t % 8; the 8 threads of a row group are consecutive lanes of one warp, so
// a row's reductions are three shuffles). A thread owns rows rg*TR .. rg*TR+TR-1 of its tile, logits
// columns cg, cg+8, .. and output columns cg, cg+8, .. (strided, so that the 8 column groups read 8
// different shared-memory banks and write consecutive global addresses).
//   attn_fwd_kernel:  one block per (batch*head, chunk, query tile of BR rows); loops over key tiles.
//   attn_dkdv_kernel: one block per (batch*head, chunk, key tile of BR keys); loops over query tiles and
//                     accumulates dk, dv in registers (FlashAttention-2's outer loop over keys).
//   attn_dq_kernel:   one block per (batch*head, chunk, query tile); loops over key tiles for dq.
// Splitting dq from dk/dv recomputes the logits once more but needs no atomics: every output row has
// one owner, and the results do not depend on scheduling.
//
// Shared memory rows are padded by one element (stride DH + 1, BC + 1) so that the row groups of a warp
// reading one column hit different banks. Tile sizes: 64 x 64 for float with dh <= 64, 32 x 32 for float
// dh <= 128 and for double (which needs twice the bytes per element); dh is rounded up to the kernel's DH
// (16, 32, 64 or 128 for float, 64 or 128 for double) with zero padding, so the model width / 8 heads of
// the bench model (dh = 16) does no padded work. Larger dh or more than kMaxHeads heads are refused with an Error.
//
// The kernels and their launch plan (tile sizes, grids, shared memory) live in this header, free of CUDA
// headers, so that the same code runs on the GPU (attention.cu, through cuda::Launch) and on the CPU
// emulator of the thread model in the tests (tests/cuda/test_cuda_emulated.cpp), which checks it
// against the CPU backend on every build, GPU or not.
#pragma once
#include <cstdint>
#include <string>
#include <type_traits>

#include "engine/attention.h"
#include "engine/bf16.h"
#include "engine/backend.h"
#include "engine/cuda/kernel_common.cuh"
#include "engine/tensor.h"

namespace lasgrad::cuda {
inline namespace LASGRAD_CUDA_ABI {
namespace attn {

constexpr int kAttnThreads = 128;
constexpr int kMaxHeads = 64;

// Everything a block needs; passed by value (the alpha table is 512 bytes of kernel parameters).
template <class T>
struct AttnArgs {
  const T *q, *k, *v, *o, *dout, *lse_in, *delta;  // [B, H, L, dh] / [B, H, L]; unused ones null
  T *out, *lse, *dq, *dk, *dv;
  const int32_t* lengths;              // [B] or null (every key valid)
  int64_t H, L, dh, C, chunks, tiles;  // C: chunk length; tiles: row tiles per chunk
  bool causal;
  bool bf16;  // the backward of bfloat16 operands widened to float32: P and G rounded, as the CPU's
  double scale;
  double alpha[kMaxHeads];
};

// x, or x rounded to bfloat16 where the precision asks for it (AttnArgs::bf16).
template <class T>
__device__ T maybe_bf16(T x, bool round) {
  return round ? static_cast<T>(bf16_round(static_cast<float>(x))) : x;
}

// Where a block sits: head slice, chunk [c0, cend), its tile [t0, t1), and the keys that exist (< kvalid).
struct Place {
  int64_t bh, h, c0, cend, t0, t1, kvalid;
};

// A: AttnArgs, or any arguments with its geometry (H, L, C, chunks, tiles, lengths).
template <int TILE, class A>
__device__ Place place_of(const A& a) {
  Place p;
  const int64_t item = blockIdx.x, t = item % a.tiles, c = item / a.tiles % a.chunks;
  p.bh = item / (a.tiles * a.chunks);
  p.h = p.bh % a.H;
  p.c0 = c * a.C;
  p.cend = min(a.L, p.c0 + a.C);
  p.t0 = p.c0 + t * TILE;
  p.t1 = min(p.t0 + TILE, p.cend);
  int64_t len = a.lengths ? a.lengths[p.bh / a.H] : a.L;
  len = len < 0 ? 0 : (len > a.L ? a.L : len);
  p.kvalid = min(p.cend, len);
  return p;
}

// dst [ROWS][DH+1] <- rows [r0, r0 + ROWS) of src [L, dh] (one head), zero beyond rend and beyond dh.
template <class T, int ROWS, int DH>
__device__ void load_rows(T* dst, const T* src, int64_t r0, int64_t rend, int64_t dh) {
  for (int idx = threadIdx.x; idx < ROWS * DH; idx += kAttnThreads) {
    const int r = idx / DH, d = idx % DH;
    dst[r * (DH + 1) + d] = (r0 + r < rend && d < dh) ? src[(r0 + r) * dh + d] : T(0);
  }
}

// dec[u] = scale * exp(-alpha |delta0 + u - (NR - 1)|) for u in [0, NR + NC - 1): the decay of every
// (row, column) pair of a tile, indexed by column - row + NR - 1. Computed in double like the CPU table,
// and like it flushed to 0 below 1e-30 (a float denormal otherwise; it changes a logit by < 1e-30 |s|).
template <class T, int NR, int NC>
__device__ void load_decay(T* dec, int64_t delta0, double alpha, double scale) {
  for (int u = threadIdx.x; u < NR + NC - 1; u += kAttnThreads) {
    const double e = exp(-alpha * fabs(static_cast<double>(delta0 + u - (NR - 1))));
    dec[u] = static_cast<T>(e < 1e-30 ? 0.0 : scale * e);
  }
}

// acc[i][c] += X[rg*TR + i] . Y[cg + 8c] over DH: the "A Bᵀ" tile product on padded shared rows.
template <class T, int DH, int TR, int TC>
__device__ void tile_abt(T (&acc)[TR][TC], const T* X, const T* Y, int rg, int cg) {
#pragma unroll 4
  for (int d = 0; d < DH; ++d) {
    T x[TR], y[TC];
#pragma unroll
    for (int i = 0; i < TR; ++i) x[i] = X[(rg * TR + i) * (DH + 1) + d];
#pragma unroll
    for (int c = 0; c < TC; ++c) y[c] = Y[(cg + 8 * c) * (DH + 1) + d];
#pragma unroll
    for (int i = 0; i < TR; ++i)
#pragma unroll
      for (int c = 0; c < TC; ++c) acc[i][c] += x[i] * y[c];
  }
}

// acc[i][e] += sum over n < NC of P[rg*TR + i][n] * Z[n][cg + 8e]: the "A B" product, P [.][NC+1], Z [NC][DH+1].
template <class T, int DH, int NC, int TR, int TD>
__device__ void tile_ab(T (&acc)[TR][TD], const T* P, const T* Z, int rg, int cg) {
#pragma unroll 4
  for (int n = 0; n < NC; ++n) {
    T p[TR];
#pragma unroll
    for (int i = 0; i < TR; ++i) p[i] = P[(rg * TR + i) * (NC + 1) + n];
#pragma unroll
    for (int e = 0; e < TD; ++e) {
      const T z = Z[n * (DH + 1) + cg + 8 * e];
#pragma unroll
      for (int i = 0; i < TR; ++i) acc[i][e] += p[i] * z;
    }
  }
}

// Reductions over the 8 lanes of a row group.
template <class T>
__device__ T group_max(T v) {
  for (int o = 4; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
template <class T>
__device__ T group_sum(T v) {
  for (int o = 4; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Writes rows [r0, rend) of the tile accumulator (scaled per row by mul[i]) to dst [L, dh].
template <class T, int TR, int TD>
__device__ void store_rows(T* dst, const T (&acc)[TR][TD], const T (&mul)[TR], int64_t r0, int64_t rend, int64_t dh,
                           int rg, int cg) {
#pragma unroll
  for (int i = 0; i < TR; ++i) {
    const int64_t r = r0 + rg * TR + i;
    if (r >= rend) continue;
#pragma unroll
    for (int e = 0; e < TD; ++e) {
      const int d = cg + 8 * e;
      if (d < dh) dst[r * dh + d] = acc[i][e] * mul[i];
    }
  }
}

// ---- forward ----

// q, k, v, out [B, H, L, dh], lse [B, H, L]. Grid: B*H*chunks*tiles blocks of 128 threads, tiles of BR
// query rows; dynamic shared memory: Q [BR][DH+1], K, V [BC][DH+1], P [BR][BC+1], decay [BR+BC-1].
template <class T, int DH, int BR, int BC>
__global__ void __launch_bounds__(kAttnThreads) attn_fwd_kernel(AttnArgs<T> a) {
  constexpr int TR = BR / 16, TC = BC / 8, TD = DH / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* Qs = reinterpret_cast<T*>(smem_raw);
  T* Ks = Qs + BR * (DH + 1);
  T* Vs = Ks + BC * (DH + 1);
  T* Ps = Vs + BC * (DH + 1);
  T* dec = Ps + BR * (BC + 1);
  const Place p = place_of<BR>(a);
  if (p.t0 >= p.cend) return;  // the last chunk is shorter than C: no rows here (uniform over the block)
  const int rg = threadIdx.x / 8, cg = threadIdx.x % 8;
  const int64_t off = p.bh * a.L * a.dh;
  const int64_t kend = a.causal ? min(p.kvalid, p.t1) : p.kvalid;
  load_rows<T, BR, DH>(Qs, a.q + off, p.t0, p.t1, a.dh);

  T acc[TR][TD] = {}, m[TR], l[TR];
#pragma unroll
  for (int i = 0; i < TR; ++i) m[i] = neg_inf<T>(), l[i] = T(0);
  for (int64_t j0 = p.c0; j0 < kend; j0 += BC) {
    __syncthreads();  // the previous tile's K, V, P and decay are no longer read
    load_rows<T, BC, DH>(Ks, a.k + off, j0, kend, a.dh);
    load_rows<T, BC, DH>(Vs, a.v + off, j0, kend, a.dh);  // zero rows: 0 * V must stay finite
    load_decay<T, BR, BC>(dec, j0 - p.t0, a.alpha[p.h], a.scale);
    __syncthreads();
    T s[TR][TC] = {};
    tile_abt<T, DH, TR, TC>(s, Qs, Ks, rg, cg);
#pragma unroll
    for (int i = 0; i < TR; ++i) {
      const int r = rg * TR + i;
      const int64_t qi = p.t0 + r;
      T mx = m[i];
#pragma unroll
      for (int c = 0; c < TC; ++c) {
        const int col = cg + 8 * c;
        const int64_t kj = j0 + col;
        const bool valid = qi < p.t1 && kj < kend && (!a.causal || kj <= qi);
        s[i][c] = valid ? s[i][c] * dec[col - r + BR - 1] : neg_inf<T>();
        mx = fmax(mx, s[i][c]);
      }
      mx = group_max(mx);
      // Online softmax: rescale what was accumulated when the row maximum grows. A row with no valid
      // key so far keeps m = -inf and gets p = 0 (exp(-inf - x) would be NaN for x = -inf).
      const bool any = mx != neg_inf<T>();
      const T corr = any ? dexp(m[i] - mx) : T(1);
      T sum = 0;
#pragma unroll
      for (int c = 0; c < TC; ++c) {
        const T e = any ? dexp(s[i][c] - mx) : T(0);
        sum += e;
        Ps[r * (BC + 1) + cg + 8 * c] = e;
      }
      l[i] = l[i] * corr + group_sum(sum);
      m[i] = mx;
#pragma unroll
      for (int e = 0; e < TD; ++e) acc[i][e] *= corr;
    }
    __syncthreads();
    tile_ab<T, DH, BC, TR, TD>(acc, Ps, Vs, rg, cg);
  }
  T inv[TR];
#pragma unroll
  for (int i = 0; i < TR; ++i) {
    inv[i] = l[i] > T(0) ? T(1) / l[i] : T(0);  // no valid key: a zero row
    const int64_t qi = p.t0 + rg * TR + i;
    if (cg == 0 && qi < p.t1) a.lse[p.bh * a.L + qi] = l[i] > T(0) ? m[i] + dlog(l[i]) : static_cast<T>(INFINITY);
  }
  store_rows<T, TR, TD>(a.out + off, acc, inv, p.t0, p.t1, a.dh, rg, cg);
}

// ---- backward ----

// delta [B*H*L] = rowwise dout . o over dh. One warp per row, grid-stride over rows. G: dout's type (T,
// or bf16 for the tensor-core backward).
template <class T, class G = T>
__global__ void attn_delta_kernel(const G* dout, const T* o, int64_t rows, int64_t dh, T* delta) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
    T s = 0;
    for (int64_t d = lane; d < dh; d += 32) s += static_cast<T>(dout[r * dh + d]) * o[r * dh + d];
    s = warp_sum(s);
    if (lane == 0) delta[r] = s;
  }
}

// With P = exp(S' - lse) recomputed per tile (S' the decayed, scaled logits):
//   dv_j = sum_i P_ij do_i;  dP_ij = do_i . v_j;  G_ij = P_ij (dP_ij - delta_i) * decay(j - i)
//   dk_j = sum_i G_ij q_i;   dq_i = sum_j G_ij k_j.
// dk, dv [B, H, L, dh]. Grid: B*H*chunks*tiles blocks, tiles of NK keys; the block walks query tiles of
// NQ rows. Shared: K, V [NK][DH+1], Q, dO [NQ][DH+1], Pᵀ, Gᵀ [NK][NQ+1], decay [NK+NQ-1], lse, delta [NQ].
// Here the tile's rows are keys and its columns queries, so the decay index is column - row swapped.
template <class T, int DH, int NK, int NQ>
__global__ void __launch_bounds__(kAttnThreads) attn_dkdv_kernel(AttnArgs<T> a) {
  constexpr int TR = NK / 16, TC = NQ / 8, TD = DH / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* Ks = reinterpret_cast<T*>(smem_raw);
  T* Vs = Ks + NK * (DH + 1);
  T* Qs = Vs + NK * (DH + 1);
  T* dOs = Qs + NQ * (DH + 1);
  T* Pt = dOs + NQ * (DH + 1);
  T* Gt = Pt + NK * (NQ + 1);
  T* dec = Gt + NK * (NQ + 1);
  T* lse_s = dec + NK + NQ - 1;
  T* del_s = lse_s + NQ;
  const Place p = place_of<NK>(a);
  if (p.t0 >= p.cend) return;
  const int rg = threadIdx.x / 8, cg = threadIdx.x % 8;
  const int64_t off = p.bh * a.L * a.dh, loff = p.bh * a.L;
  const int64_t kend = min(p.t1, p.kvalid);  // keys of this tile that exist; the rest get zero gradients
  T dk[TR][TD] = {}, dv[TR][TD] = {};
  if (p.t0 < kend) {
    load_rows<T, NK, DH>(Ks, a.k + off, p.t0, kend, a.dh);
    load_rows<T, NK, DH>(Vs, a.v + off, p.t0, kend, a.dh);
    // Causal: queries before the first key see none of these keys.
    for (int64_t i0 = a.causal ? p.t0 : p.c0; i0 < p.cend; i0 += NQ) {
      __syncthreads();
      load_rows<T, NQ, DH>(Qs, a.q + off, i0, p.cend, a.dh);
      load_rows<T, NQ, DH>(dOs, a.dout + off, i0, p.cend, a.dh);
      for (int n = threadIdx.x; n < NQ; n += kAttnThreads) {
        const bool in = i0 + n < p.cend;
        lse_s[n] = in ? a.lse_in[loff + i0 + n] : static_cast<T>(INFINITY);
        del_s[n] = in ? a.delta[loff + i0 + n] : T(0);
      }
      // decay(j - i) for key row r, query column n: j - i = (t0 - i0) + (r - n), index r - n + NQ - 1.
      load_decay<T, NQ, NK>(dec, p.t0 - i0, a.alpha[p.h], a.scale);
      __syncthreads();
      T s[TR][TC] = {}, dp[TR][TC] = {};
      tile_abt<T, DH, TR, TC>(s, Ks, Qs, rg, cg);
      tile_abt<T, DH, TR, TC>(dp, Vs, dOs, rg, cg);
#pragma unroll
      for (int i = 0; i < TR; ++i) {
        const int r = rg * TR + i;
        const int64_t kj = p.t0 + r;
#pragma unroll
        for (int c = 0; c < TC; ++c) {
          const int n = cg + 8 * c;
          const int64_t qi = i0 + n;
          const T ls = lse_s[n], e = dec[r - n + NQ - 1];
          // lse = +inf marks a query without valid keys (and the rows past the chunk): no weight.
          const bool valid = kj < kend && qi < p.cend && (!a.causal || kj <= qi) && ls != static_cast<T>(INFINITY);
          const T pr = valid ? dexp(s[i][c] * e - ls) : T(0);
          Pt[r * (NQ + 1) + n] = maybe_bf16(pr, a.bf16);
          Gt[r * (NQ + 1) + n] = maybe_bf16(pr * (dp[i][c] - del_s[n]) * e, a.bf16);
        }
      }
      __syncthreads();
      tile_ab<T, DH, NQ, TR, TD>(dv, Pt, dOs, rg, cg);
      tile_ab<T, DH, NQ, TR, TD>(dk, Gt, Qs, rg, cg);
    }
  }
  T one[TR];
#pragma unroll
  for (int i = 0; i < TR; ++i) one[i] = T(1);
  store_rows<T, TR, TD>(a.dk + off, dk, one, p.t0, p.t1, a.dh, rg, cg);
  store_rows<T, TR, TD>(a.dv + off, dv, one, p.t0, p.t1, a.dh, rg, cg);
}

// dq [B, H, L, dh]. Grid: B*H*chunks*tiles blocks, tiles of NQ queries; the block walks key tiles of NK.
// Shared: Q, dO [NQ][DH+1], K, V [NK][DH+1], G [NQ][NK+1], decay [NQ+NK-1].
template <class T, int DH, int NQ, int NK>
__global__ void __launch_bounds__(kAttnThreads) attn_dq_kernel(AttnArgs<T> a) {
  constexpr int TR = NQ / 16, TC = NK / 8, TD = DH / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* Qs = reinterpret_cast<T*>(smem_raw);
  T* dOs = Qs + NQ * (DH + 1);
  T* Ks = dOs + NQ * (DH + 1);
  T* Vs = Ks + NK * (DH + 1);
  T* Gs = Vs + NK * (DH + 1);
  T* dec = Gs + NQ * (NK + 1);
  const Place p = place_of<NQ>(a);
  if (p.t0 >= p.cend) return;
  const int rg = threadIdx.x / 8, cg = threadIdx.x % 8;
  const int64_t off = p.bh * a.L * a.dh, loff = p.bh * a.L;
  const int64_t kend = a.causal ? min(p.kvalid, p.t1) : p.kvalid;
  load_rows<T, NQ, DH>(Qs, a.q + off, p.t0, p.t1, a.dh);
  load_rows<T, NQ, DH>(dOs, a.dout + off, p.t0, p.t1, a.dh);
  T ls[TR], del[TR];
#pragma unroll
  for (int i = 0; i < TR; ++i) {
    const int64_t qi = p.t0 + rg * TR + i;
    ls[i] = qi < p.t1 ? a.lse_in[loff + qi] : static_cast<T>(INFINITY);
    del[i] = qi < p.t1 ? a.delta[loff + qi] : T(0);
  }
  T dq[TR][TD] = {};
  for (int64_t j0 = p.c0; j0 < kend; j0 += NK) {
    __syncthreads();
    load_rows<T, NK, DH>(Ks, a.k + off, j0, kend, a.dh);
    load_rows<T, NK, DH>(Vs, a.v + off, j0, kend, a.dh);
    load_decay<T, NQ, NK>(dec, j0 - p.t0, a.alpha[p.h], a.scale);
    __syncthreads();
    T s[TR][TC] = {}, dp[TR][TC] = {};
    tile_abt<T, DH, TR, TC>(s, Qs, Ks, rg, cg);
    tile_abt<T, DH, TR, TC>(dp, dOs, Vs, rg, cg);
#pragma unroll
    for (int i = 0; i < TR; ++i) {
      const int r = rg * TR + i;
      const int64_t qi = p.t0 + r;
#pragma unroll
      for (int c = 0; c < TC; ++c) {
        const int col = cg + 8 * c;
        const int64_t kj = j0 + col;
        const T e = dec[col - r + NQ - 1];
        const bool valid = qi < p.t1 && kj < kend && (!a.causal || kj <= qi) && ls[i] != static_cast<T>(INFINITY);
        const T pr = valid ? dexp(s[i][c] * e - ls[i]) : T(0);
        Gs[r * (NK + 1) + col] = maybe_bf16(pr * (dp[i][c] - del[i]) * e, a.bf16);
      }
    }
    __syncthreads();
    tile_ab<T, DH, NK, TR, TD>(dq, Gs, Ks, rg, cg);
  }
  T one[TR];
#pragma unroll
  for (int i = 0; i < TR; ++i) one[i] = T(1);
  store_rows<T, TR, TD>(a.dq + off, dq, one, p.t0, p.t1, a.dh, rg, cg);
}

// ---- launch plan ----
// `launch(kernel, name, grid, block, smem_bytes, args...)` runs `kernel` over `grid` blocks of `block`
// threads with `smem_bytes` of dynamic shared memory (cuda::Launch on the GPU, simt::Launch in the tests).

template <class T, int DH, int BR, int BC>
size_t forward_smem() {
  return sizeof(T) * ((BR + 2 * BC) * (DH + 1) + BR * (BC + 1) + BR + BC - 1);
}
template <class T, int DH, int NK, int NQ>
size_t dkdv_smem() {
  return sizeof(T) * (2 * (NK + NQ) * (DH + 1) + 2 * NK * (NQ + 1) + NK + NQ - 1 + 2 * NQ);
}
template <class T, int DH, int NQ, int NK>
size_t dq_smem() {
  return sizeof(T) * (2 * (NQ + NK) * (DH + 1) + NQ * (NK + 1) + NQ + NK - 1);
}

// Calls f(DH, BR) for the instantiation that serves dh (tiles are BR x BR).
template <class T, class F>
void dispatch_head_dim(int64_t dh, const F& f) {
  if constexpr (sizeof(T) == 4) {
    if (dh <= 16) return f(std::integral_constant<int, 16>{}, std::integral_constant<int, 64>{});
    if (dh <= 32) return f(std::integral_constant<int, 32>{}, std::integral_constant<int, 64>{});
    if (dh <= 64) return f(std::integral_constant<int, 64>{}, std::integral_constant<int, 64>{});
  } else {
    if (dh <= 64) return f(std::integral_constant<int, 64>{}, std::integral_constant<int, 32>{});
  }
  if (dh <= 128) return f(std::integral_constant<int, 128>{}, std::integral_constant<int, 32>{});
  throw Error("las_attention: the cuda kernel supports head widths up to 128, got " + std::to_string(dh));
}

// The arguments shared by every kernel of one call, built from the op's options here and only here
// (pointers are set by the caller).
template <class T>
AttnArgs<T> make_args(const Tensor& q, const Tensor& lengths, const AttentionOptions& p) {
  AttnArgs<T> a{};
  a.H = q.dim(1);
  a.L = q.dim(2);
  a.dh = q.dim(3);
  a.C = chunk_length(p, a.L);
  a.chunks = (a.L + a.C - 1) / a.C;
  a.causal = p.causal;
  a.bf16 = p.bf16;
  a.scale = logit_scale(a.dh);
  if (a.H > kMaxHeads)
    throw Error("las_attention: the cuda kernel supports up to " + std::to_string(kMaxHeads) + " heads, got " +
                std::to_string(a.H));
  for (int64_t h = 0; h < a.H; ++h) a.alpha[h] = p.alpha[h];
  a.lengths = lengths.defined() ? lengths.data<int32_t>() : nullptr;
  return a;
}

// Blocks of one kernel: (batch * head, chunk, tile), refused beyond a cuda grid's x limit.
inline int64_t grid_of(int64_t batch_heads, int64_t chunks, int64_t tiles) {
  const int64_t blocks = batch_heads * chunks * tiles;
  if (blocks > (int64_t{1} << 31) - 1) throw Error("las_attention: too many tiles for one cuda grid");
  return blocks;
}

// The forward of Backend::attention: o [B, H, L, dh] and lse [B, H, L] from q, k, v on the kernel's device.
template <class T, class Launch>
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lengths,
                       const AttentionOptions& p, Tensor& o, Tensor& lse, const Launch& launch) {
  AttnArgs<T> a = make_args<T>(q, lengths, p);
  a.q = q.data<T>();
  a.k = k.data<T>();
  a.v = v.data<T>();
  a.out = o.data<T>();
  a.lse = lse.data<T>();
  dispatch_head_dim<T>(a.dh, [&](auto dh_c, auto tile_c) {
    constexpr int DH = decltype(dh_c)::value, BR = decltype(tile_c)::value;
    a.tiles = (a.C + BR - 1) / BR;
    launch(attn_fwd_kernel<T, DH, BR, BR>, "attn_fwd_kernel", grid_of(q.dim(0) * a.H, a.chunks, a.tiles), kAttnThreads,
           forward_smem<T, DH, BR, BR>(), a);
  });
}

// The backward of Backend::attention_grad: dq, dk, dv [B, H, L, dh] (written, not accumulated). The row
// terms delta [B, H, L] go to scratch from `mem`.
template <class T, class Mem, class Launch>
void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                        const Tensor& dout, const Tensor& lengths, const AttentionOptions& p, Tensor& dq, Tensor& dk,
                        Tensor& dv, Mem& mem, const Launch& launch) {
  AttnArgs<T> a = make_args<T>(q, lengths, p);
  const int64_t BH = q.dim(0) * a.H, rows = BH * a.L;
  Scratch<T, Mem> delta(mem, rows);
  launch(attn_delta_kernel<T>, "attn_delta_kernel", int64_t{blocks_for(rows * 32)}, kThreads, size_t{0}, dout.data<T>(),
         o.data<T>(), rows, a.dh, delta.p);
  a.q = q.data<T>();
  a.k = k.data<T>();
  a.v = v.data<T>();
  a.o = o.data<T>();
  a.dout = dout.data<T>();
  a.lse_in = lse.data<T>();
  a.delta = delta.p;
  a.dq = dq.data<T>();
  a.dk = dk.data<T>();
  a.dv = dv.data<T>();
  dispatch_head_dim<T>(a.dh, [&](auto dh_c, auto tile_c) {
    constexpr int DH = decltype(dh_c)::value, BR = decltype(tile_c)::value;
    a.tiles = (a.C + BR - 1) / BR;
    const int64_t grid = grid_of(BH, a.chunks, a.tiles);
    launch(attn_dkdv_kernel<T, DH, BR, BR>, "attn_dkdv_kernel", grid, kAttnThreads, dkdv_smem<T, DH, BR, BR>(), a);
    launch(attn_dq_kernel<T, DH, BR, BR>, "attn_dq_kernel", grid, kAttnThreads, dq_smem<T, DH, BR, BR>(), a);
  });
}

}  // namespace attn
}  // namespace LASGRAD_CUDA_ABI
}  // namespace lasgrad::cuda
