// The tensor-core kernels of the fused LaS attention, for bfloat16 q, k, smoothed v and dO (precision
// bf16): the same tiling, online softmax, outputs and backward passes as attention_kernels.cuh, with each
// tile product on tensor cores (mma_m16n8k16_bf16, mma.cuh) from bfloat16 operands into float32 sums.
//
// Forward: one block per (batch*head, chunk, query tile of 64 rows); 4 warps, each owning 16 query rows.
// Per key tile of 64 keys:
//   S = Q Kᵀ       Q's A fragments stay in registers for the whole block; K's B fragments come from
//                  the shared tile by ldmatrix.
//   S' = S scale exp(-alpha |i - j|), masked: each lane finds its entries' (row, key) from the fragment
//                  layout (c[e] = C[g + 8 (e / 2)][2t + e % 2]); a tile wholly valid for the warp's rows
//                  (interior) skips the mask.
//   online softmax over the row: a row's 16 entries per tile lie with the 4 lanes of a quad (2 shuffles).
//   O += P V       P is rounded to bfloat16 straight from the S accumulators, whose layout is the A
//                  fragment's; V's B fragments come from the shared tile by ldmatrix.trans.
// The row sums l add P before its rounding; O divides by l at the end and lse = m + log l.
// Backward (heads up to 64 wide): dk, dv per key tile and dq per query tile, as the float32 kernels, with
// P and G rounded to bfloat16 before their products; interior tiles skip the mask there too.
// Chunks shorter than a tile (LaS-Chunk with C < 64) are packed: a block takes 64 consecutive positions
// across chunk boundaries, and the mask keeps each pair inside its chunk, so that no tile is mostly empty.
// Tiles stream from global memory by cp.async: the forward and dq double-buffer their K and V tiles (the
// next tile loads while the tensor cores work on this one). Shared memory: tiles [64][DH + 8] bfloat16,
// four in the forward and dq (69,632 bytes at DH = 128), two in dk/dv. The 16-byte pad keeps every
// 8-element row chunk 16-byte aligned, as ldmatrix and cp.async need, and puts the 8 rows of one
// ldmatrix matrix in 8 different bank groups.
#pragma once
#include <cstdint>

#include "engine/bf16.h"
#include "engine/cuda/attention_kernels.cuh"
#include "engine/cuda/mma.cuh"

namespace lasgrad::cuda {
inline namespace LASGRAD_CUDA_ABI {
namespace attn {

constexpr int kTcRows = 64, kTcKeys = 64;  // query rows per block (16 per warp), keys per tile
constexpr int kTcMaxBackwardDh = 64;       // wider heads take the float32 backward (registers)

// What the tensor-core kernels read and write; the geometry as in AttnArgs.
struct TcArgs {
  const bf16 *q, *k, *v, *dout;     // [B, H, L, dh]
  const float *lse_in, *delta;      // [B, H, L]: the backward's
  float *out, *lse, *dq, *dk, *dv;  // [B, H, L, dh], [B, H, L]
  const int32_t* lengths;
  int64_t H, L, dh, C, chunks, tiles;  // packed: one chunk of C = L for the grid, and `pack` the real C
  int64_t pack;                        // the chunk length when chunks are packed (C < kTcRows), else 0
  bool causal;
  float scale;
  float alpha[kMaxHeads];
};

// The chunk that holds position x: [chunk_begin, chunk_end); the block's own chunk unless packed.
__device__ inline int64_t chunk_begin(const TcArgs& a, const Place& p, int64_t x) {
  return a.pack ? x / a.pack * a.pack : p.c0;
}
__device__ inline int64_t chunk_end(const TcArgs& a, const Place& p, int64_t x) {
  return a.pack ? min(a.L, (x / a.pack + 1) * a.pack) : p.cend;
}
__device__ inline bool same_chunk(const TcArgs& a, int64_t i, int64_t j) { return !a.pack || i / a.pack == j / a.pack; }

template <int DH>
constexpr int tc_stride() {
  return DH + 8;
}

// Whether rows of src [L, dh] are whole 16-byte chunks at 16-byte addresses: then the loads below move
// 4 (registers) or 16 (tiles) bytes at a time instead of 2. Uniform over the block.
template <int DH>
__device__ inline bool whole_rows(const bf16* src, int64_t dh) {
  return dh == DH && reinterpret_cast<uintptr_t>(src) % 16 == 0;
}

// Two bfloat16 of one row of src [rows][dh] at (r, c) and (r, c + 1) as one register, zero outside; c
// is even, so with whole rows the pair is one aligned 32-bit word.
__device__ inline uint32_t load_pair(const bf16* src, int64_t r, int64_t rend, int64_t c, int64_t dh, bool whole) {
  if (r >= rend) return 0u;
  if (whole) return *reinterpret_cast<const uint32_t*>(src + r * dh + c);
  const uint32_t lo = c < dh ? src[r * dh + c].bits : 0u, hi = c + 1 < dh ? src[r * dh + c + 1].bits : 0u;
  return lo | hi << 16;
}

// The A fragments of rows `row` (this lane's two: g and g + 8 of the warp's 16) of src [L, dh] over
// DH = 16 KS columns: f[kk][j] = X[g + 8 (j % 2)][16 kk + 2t + 8 (j / 2) .. + 1], zero beyond rend and dh.
template <int KS>
__device__ void load_a_rows(uint32_t (&f)[KS][4], const bf16* src, const int64_t (&row)[2], int64_t rend, int64_t dh,
                            int t) {
  const bool whole = whole_rows<16 * KS>(src, dh);
#pragma unroll
  for (int kk = 0; kk < KS; ++kk)
#pragma unroll
    for (int j = 0; j < 4; ++j) f[kk][j] = load_pair(src, row[j % 2], rend, 16 * kk + 2 * t + 8 * (j / 2), dh, whole);
}

// Issues dst [ROWS][DH + 8] <- rows [r0, r0 + ROWS) of src [L, dh], zero beyond rend and dh: where the
// rows allow it, 16-byte cp.async copies (zero-filled past rend), done once the caller's cp_async_wait
// lets their group complete; else plain 2-byte stores, done at once. The padded stride keeps dst's
// 16-byte chunks aligned.
template <int DH, int ROWS>
__device__ void issue_tile(uint16_t* dst, const bf16* src, int64_t r0, int64_t rend, int64_t dh) {
  if (whole_rows<DH>(src, dh)) {
    constexpr int CH = DH / 8;  // 16-byte chunks per row
    for (int idx = threadIdx.x; idx < ROWS * CH; idx += kAttnThreads) {
      const int r = idx / CH, c = idx % CH;
      const bool in = r0 + r < rend;
      cp_async16(dst + r * tc_stride<DH>() + 8 * c, in ? src + (r0 + r) * dh + 8 * c : src, in ? 16u : 0u);
    }
    return;
  }
  for (int idx = threadIdx.x; idx < ROWS * DH; idx += kAttnThreads) {
    const int r = idx / DH, d = idx % DH;
    dst[r * tc_stride<DH>() + d] = r0 + r < rend && d < dh ? src[(r0 + r) * dh + d].bits : uint16_t{0};
  }
}

__device__ inline uint32_t pack16(uint16_t lo, uint16_t hi) { return uint32_t{lo} | uint32_t{hi} << 16; }

// acc[nb] += A Xᵀ for the warp's 16 rows (A fragments over DH) and rows nb*8 .. nb*8 + 7 of X [.][DH + 8]
// in shared memory: b[j] = Xᵀ[16 kk + 2t + 8j .. + 1][g], two adjacent columns of X's row nb*8 + g, loaded
// by ldmatrix four 8 x 8 matrices at a time (two key blocks, both halves of the 16 columns).
template <int DH, int NB>
__device__ void mma_abt(float (&acc)[NB][4], const uint32_t (&a)[DH / 16][4], const uint16_t* X) {
  const int lane = threadIdx.x % 32, m = lane / 8, r = lane % 8;  // this lane's row address: matrix m, row r
#pragma unroll
  for (int nb = 0; nb < NB; nb += 2)
#pragma unroll
    for (int kk = 0; kk < DH / 16; ++kk) {
      uint32_t f[4];  // (nb, columns 16 kk ..), (nb, 16 kk + 8 ..), (nb + 1, 16 kk ..), (nb + 1, 16 kk + 8 ..)
      ldmatrix_x4<false>(f, X + ((nb + m / 2) * 8 + r) * tc_stride<DH>() + 16 * kk + 8 * (m % 2));
      const uint32_t b0[2] = {f[0], f[1]}, b1[2] = {f[2], f[3]};
      mma_m16n8k16_bf16(acc[nb], a[kk], b0, acc[nb]);
      mma_m16n8k16_bf16(acc[nb + 1], a[kk], b1, acc[nb + 1]);
    }
}

// acc[nd] += P Y over NB * 8 columns of P, the warp's 16 x (NB * 8) accumulator of an earlier product (its
// layout is the A fragment's, two accumulators per 16 columns: P is rounded to bfloat16 here), and the
// rows of Y [NB * 8][DH + 8] in shared memory: b[j] = Y[16 kk + 2t + 8j .. + 1][nd*8 + g], two rows,
// loaded by ldmatrix.trans four 8 x 8 matrices at a time (both halves of the 16 rows, two column blocks).
template <int DH, int NB>
__device__ void mma_ab(float (&acc)[DH / 8][4], const float (&P)[NB][4], const uint16_t* Y) {
  const int lane = threadIdx.x % 32, m = lane / 8, r = lane % 8;
#pragma unroll
  for (int kk = 0; kk < NB / 2; ++kk) {
    const uint32_t pa[4] = {bf16x2(P[2 * kk][0], P[2 * kk][1]), bf16x2(P[2 * kk][2], P[2 * kk][3]),
                            bf16x2(P[2 * kk + 1][0], P[2 * kk + 1][1]), bf16x2(P[2 * kk + 1][2], P[2 * kk + 1][3])};
#pragma unroll
    for (int nd = 0; nd < DH / 8; nd += 2) {
      uint32_t f[4];  // (rows 16 kk .., nd), (16 kk + 8 .., nd), (16 kk .., nd + 1), (16 kk + 8 .., nd + 1)
      ldmatrix_x4<true>(f, Y + (16 * kk + 8 * (m % 2) + r) * tc_stride<DH>() + (nd + m / 2) * 8);
      const uint32_t b0[2] = {f[0], f[1]}, b1[2] = {f[2], f[3]};
      mma_m16n8k16_bf16(acc[nd], pa, b0, acc[nd]);
      mma_m16n8k16_bf16(acc[nd + 1], pa, b1, acc[nd + 1]);
    }
  }
}

// scale exp(-alpha |i - j|) with nalpha = -alpha: the decay of one pair, from its coordinates.
__device__ inline float tc_decay(float scale, float nalpha, int64_t i, int64_t j) {
  return scale * expf(nalpha * static_cast<float>(i > j ? i - j : j - i));
}

// Writes the warp's 16 x DH accumulator (rows `row`, below rend; columns below dh), times mul[row], to
// dst [L, dh].
template <int DH>
__device__ void store_tc_rows(float* dst, const float (&acc)[DH / 8][4], const int64_t (&row)[2], const float (&mul)[2],
                              int64_t rend, int64_t dh, int t) {
#pragma unroll
  for (int nd = 0; nd < DH / 8; ++nd)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int64_t i = row[e / 2], d = nd * 8 + 2 * t + e % 2;
      if (i < rend && d < dh) dst[i * dh + d] = acc[nd][e] * mul[e / 2];
    }
}

// The K and V tiles of one head at keys [j0, j0 + kTcKeys) into buffer `buf` of `tiles` (two buffers, each
// K then V), issued as one cp.async group.
template <int DH>
__device__ void issue_kv(uint16_t* tiles, int buf, const TcArgs& a, int64_t off, int64_t j0, int64_t kend) {
  constexpr int T = kTcKeys * tc_stride<DH>();
  issue_tile<DH, kTcKeys>(tiles + buf * 2 * T, a.k + off, j0, kend, a.dh);
  issue_tile<DH, kTcKeys>(tiles + buf * 2 * T + T, a.v + off, j0, kend, a.dh);  // zero rows: 0 * V must stay finite
  cp_async_commit();
}

// The top of a key tile's iteration in a double-buffered walk (issue_kv started buffer 0 with the first
// tile): once every warp is done with the other buffer, starts the next tile into it, then waits for this
// tile's copies. Returns this tile's K (V follows it).
template <int DH>
__device__ const uint16_t* next_kv(uint16_t* tiles, int buf, const TcArgs& a, int64_t off, int64_t j0, int64_t kend) {
  __syncthreads();  // every warp is done with the other buffer (the previous tile)
  if (j0 + kTcKeys < kend) {
    issue_kv<DH>(tiles, buf ^ 1, a, off, j0 + kTcKeys, kend);  // streams in while this tile is used
    cp_async_wait<1>();
  } else {
    cp_async_wait<0>();
  }
  __syncthreads();  // this tile's copies, by every thread, are done
  return tiles + buf * 2 * kTcKeys * tc_stride<DH>();
}

// ---- forward ----

// q, k, v bfloat16 [B, H, L, dh]; out float [B, H, L, dh], lse float [B, H, L]. Grid: B*H*chunks*tiles
// blocks of 128 threads (tiles of kTcRows rows); shared memory: two buffers of K, V [kTcKeys][DH + 8].
template <int DH>
__global__ void __launch_bounds__(kAttnThreads) attn_fwd_tc_kernel(TcArgs a) {
  constexpr int S = tc_stride<DH>(), NB = kTcKeys / 8, ND = DH / 8, T = kTcKeys * S;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  uint16_t* tiles = reinterpret_cast<uint16_t*>(smem_raw);  // two buffers of K and V tiles: K0 V0 K1 V1
  const Place p = place_of<kTcRows>(a);
  if (p.t0 >= p.cend) return;  // the last chunk is shorter than C (uniform over the block)
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int64_t off = p.bh * a.L * a.dh;
  const int64_t kend = min(p.kvalid, a.causal ? p.t1 : chunk_end(a, p, p.t1 - 1));
  const int64_t w0 = p.t0 + 16 * warp, row[2] = {w0 + g, w0 + g + 8};  // this lane's two rows
  uint32_t qf[DH / 16][4];
  load_a_rows(qf, a.q + off, row, p.t1, a.dh, t);

  const float nalpha = -a.alpha[p.h];
  float o[ND][4] = {}, m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  const int64_t j_first = chunk_begin(a, p, p.t0);
  issue_kv<DH>(tiles, 0, a, off, j_first, kend);
  int buf = 0;
  for (int64_t j0 = j_first; j0 < kend; j0 += kTcKeys, buf ^= 1) {
    const uint16_t* Ks = next_kv<DH>(tiles, buf, a, off, j0, kend);
    if (a.causal && j0 > w0 + 15) continue;  // every key of the tile lies after the warp's rows
    const uint16_t* Vs = Ks + T;

    float s[NB][4] = {};
    mma_abt<DH>(s, qf, Ks);
    const bool interior = !a.pack && j0 + kTcKeys <= kend && (!a.causal || j0 + kTcKeys - 1 <= w0);
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int nb = 0; nb < NB; ++nb)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t i = row[e / 2], j = j0 + nb * 8 + 2 * t + e % 2;
        const bool valid = interior || (j < kend && same_chunk(a, i, j) && (!a.causal || j <= i));
        s[nb][e] = valid ? s[nb][e] * tc_decay(a.scale, nalpha, i, j) : -INFINITY;
        mx[e / 2] = fmaxf(mx[e / 2], s[nb][e]);
      }
    float corr[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      // A row with no valid key so far keeps m = -inf and gets p = 0 (exp(-inf - -inf) would be NaN).
      corr[r] = mx[r] == -INFINITY ? 1.f : expf(m[r] - mx[r]);
      l[r] *= corr[r];
      m[r] = mx[r];
    }
#pragma unroll
    for (int nb = 0; nb < NB; ++nb)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float pe = m[e / 2] == -INFINITY ? 0.f : expf(s[nb][e] - m[e / 2]);
        s[nb][e] = pe;
        l[e / 2] += pe;  // this lane's part of the row sum; the quad's parts are added at the end
      }
#pragma unroll
    for (int nd = 0; nd < ND; ++nd)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[nd][e] *= corr[e / 2];
    mma_ab<DH>(o, s, Vs);  // O += P V, P rounded to bfloat16
  }

  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    inv[r] = l[r] > 0.f ? 1.f / l[r] : 0.f;  // no valid key: a zero row
    if (t == 0 && row[r] < p.t1) a.lse[p.bh * a.L + row[r]] = l[r] > 0.f ? m[r] + logf(l[r]) : INFINITY;
  }
  store_tc_rows<DH>(a.out + off, o, row, inv, p.t1, a.dh, t);
}

// ---- backward ----
// As attn_dkdv_kernel and attn_dq_kernel, with P = exp(S' - lse) recomputed per tile, and P and
// G = P (dP - delta) scale exp(-alpha |i - j|) rounded to bfloat16 before their products.

// dk, dv float [B, H, L, dh]. One block per tile of kTcRows keys (16 per warp: here the fragments' rows are
// keys); it walks query tiles of kTcKeys. Shared: lse, delta [kTcKeys] float; Q, dO [kTcKeys][DH + 8].
template <int DH>
__global__ void __launch_bounds__(kAttnThreads) attn_dkdv_tc_kernel(TcArgs a) {
  constexpr int S = tc_stride<DH>(), NB = kTcKeys / 8, ND = DH / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  float* lse_s = reinterpret_cast<float*>(smem_raw);
  float* del_s = lse_s + kTcKeys;
  uint16_t* Qs = reinterpret_cast<uint16_t*>(del_s + kTcKeys);
  uint16_t* dOs = Qs + kTcKeys * S;
  const Place p = place_of<kTcRows>(a);
  if (p.t0 >= p.cend) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int64_t off = p.bh * a.L * a.dh, loff = p.bh * a.L;
  const int64_t kend = min(p.t1, p.kvalid);  // keys of this tile that exist; the rest get zero gradients
  const int64_t w0 = p.t0 + 16 * warp, key[2] = {w0 + g, w0 + g + 8};
  const float nalpha = -a.alpha[p.h];
  float dk[ND][4] = {}, dv[ND][4] = {};
  if (p.t0 < kend) {  // uniform over the block
    uint32_t kf[DH / 16][4], vf[DH / 16][4];
    load_a_rows(kf, a.k + off, key, kend, a.dh, t);
    load_a_rows(vf, a.v + off, key, kend, a.dh, t);
    // Causal: queries before the first key see none of these keys.
    const int64_t qend = chunk_end(a, p, p.t1 - 1);
    for (int64_t i0 = a.causal ? p.t0 : chunk_begin(a, p, p.t0); i0 < qend; i0 += kTcKeys) {
      __syncthreads();
      issue_tile<DH, kTcKeys>(Qs, a.q + off, i0, qend, a.dh);
      issue_tile<DH, kTcKeys>(dOs, a.dout + off, i0, qend, a.dh);
      cp_async_commit();
      for (int n = threadIdx.x; n < kTcKeys; n += kAttnThreads) {
        const bool in = i0 + n < qend;
        lse_s[n] = in ? a.lse_in[loff + i0 + n] : INFINITY;
        del_s[n] = in ? a.delta[loff + i0 + n] : 0.f;
      }
      cp_async_wait<0>();
      __syncthreads();
      if (a.causal && i0 + kTcKeys - 1 < w0) continue;  // every query of the tile lies before the warp's keys
      float s[NB][4] = {}, dp[NB][4] = {};              // Sᵀ and dPᵀ: rows keys, columns queries
      mma_abt<DH>(s, kf, Qs);
      mma_abt<DH>(dp, vf, dOs);
      // Interior: every pair of the warp's keys and the tile's queries is valid (so is every query's lse).
      const bool interior = !a.pack && w0 + 15 < kend && i0 + kTcKeys <= qend && (!a.causal || w0 + 15 <= i0);
#pragma unroll
      for (int nb = 0; nb < NB; ++nb)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int n = nb * 8 + 2 * t + e % 2;
          const int64_t j = key[e / 2], i = i0 + n;
          // lse = +inf marks a query without valid keys (and the rows past the chunk): no weight.
          const bool valid = interior || (j < kend && i < qend && same_chunk(a, i, j) && (!a.causal || j <= i) &&
                                          lse_s[n] != INFINITY);
          const float dec = tc_decay(a.scale, nalpha, i, j), pr = valid ? expf(s[nb][e] * dec - lse_s[n]) : 0.f;
          s[nb][e] = pr;
          dp[nb][e] = pr * (dp[nb][e] - del_s[n]) * dec;
        }
      mma_ab<DH>(dv, s, dOs);  // dV += Pᵀ dO
      mma_ab<DH>(dk, dp, Qs);  // dK += Gᵀ Q
    }
  }
  const float one[2] = {1.f, 1.f};
  store_tc_rows<DH>(a.dk + off, dk, key, one, p.t1, a.dh, t);
  store_tc_rows<DH>(a.dv + off, dv, key, one, p.t1, a.dh, t);
}

// dq float [B, H, L, dh]. One block per tile of kTcRows queries; it walks key tiles of kTcKeys. Shared:
// two buffers of K, V [kTcKeys][DH + 8].
template <int DH>
__global__ void __launch_bounds__(kAttnThreads) attn_dq_tc_kernel(TcArgs a) {
  constexpr int S = tc_stride<DH>(), NB = kTcKeys / 8, ND = DH / 8, T = kTcKeys * S;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  uint16_t* tiles = reinterpret_cast<uint16_t*>(smem_raw);  // two buffers of K and V tiles, as the forward's
  const Place p = place_of<kTcRows>(a);
  if (p.t0 >= p.cend) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int64_t off = p.bh * a.L * a.dh, loff = p.bh * a.L;
  const int64_t kend = min(p.kvalid, a.causal ? p.t1 : chunk_end(a, p, p.t1 - 1));
  const int64_t w0 = p.t0 + 16 * warp, row[2] = {w0 + g, w0 + g + 8};
  uint32_t qf[DH / 16][4], df[DH / 16][4];
  load_a_rows(qf, a.q + off, row, p.t1, a.dh, t);
  load_a_rows(df, a.dout + off, row, p.t1, a.dh, t);
  float ls[2], del[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    ls[r] = row[r] < p.t1 ? a.lse_in[loff + row[r]] : INFINITY;
    del[r] = row[r] < p.t1 ? a.delta[loff + row[r]] : 0.f;
  }
  const float nalpha = -a.alpha[p.h];
  float dq[ND][4] = {};
  const int64_t j_first = chunk_begin(a, p, p.t0);
  issue_kv<DH>(tiles, 0, a, off, j_first, kend);
  int buf = 0;
  for (int64_t j0 = j_first; j0 < kend; j0 += kTcKeys, buf ^= 1) {
    const uint16_t* Ks = next_kv<DH>(tiles, buf, a, off, j0, kend);
    if (a.causal && j0 > w0 + 15) continue;
    const uint16_t* Vs = Ks + T;
    float s[NB][4] = {}, dp[NB][4] = {};
    mma_abt<DH>(s, qf, Ks);
    mma_abt<DH>(dp, df, Vs);
    // Interior as in the forward; a row past the tile has lse = +inf there, and so P = 0 all the same.
    const bool interior = !a.pack && j0 + kTcKeys <= kend && (!a.causal || j0 + kTcKeys - 1 <= w0);
#pragma unroll
    for (int nb = 0; nb < NB; ++nb)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t i = row[e / 2], j = j0 + nb * 8 + 2 * t + e % 2;
        const bool valid =
            interior || (i < p.t1 && j < kend && same_chunk(a, i, j) && (!a.causal || j <= i) && ls[e / 2] != INFINITY);
        const float dec = tc_decay(a.scale, nalpha, i, j), pr = valid ? expf(s[nb][e] * dec - ls[e / 2]) : 0.f;
        s[nb][e] = pr * (dp[nb][e] - del[e / 2]) * dec;
      }
    mma_ab<DH>(dq, s, Ks);  // dQ += G K
  }
  const float one[2] = {1.f, 1.f};
  store_tc_rows<DH>(a.dq + off, dq, row, one, p.t1, a.dh, t);
}

// ---- launch plan ----

// The arguments of one call, the geometry from make_args (pointers are set by the caller).
inline TcArgs make_tc_args(const Tensor& q, const Tensor& lengths, const AttentionOptions& p) {
  const AttnArgs<float> geo = make_args<float>(q, lengths, p);
  TcArgs a{};
  a.lengths = geo.lengths;
  a.H = geo.H, a.L = geo.L, a.dh = geo.dh, a.C = geo.C, a.chunks = geo.chunks;
  if (a.C < kTcRows && a.chunks > 1) a.pack = a.C, a.C = a.L, a.chunks = 1;  // several chunks per block
  a.tiles = (a.C + kTcRows - 1) / kTcRows;
  a.causal = geo.causal;
  a.scale = static_cast<float>(geo.scale);
  for (int64_t h = 0; h < a.H; ++h) a.alpha[h] = static_cast<float>(geo.alpha[h]);
  return a;
}

template <int DH>
size_t tc_tiles_smem(int tiles) {  // bfloat16 tiles of kTcKeys rows
  return sizeof(uint16_t) * tiles * kTcKeys * tc_stride<DH>();
}

// The forward of Backend::attention for bfloat16 q, k, v on tensor cores: o and lse float32.
template <class Launch>
void attention_forward_tc(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lengths,
                          const AttentionOptions& p, Tensor& o, Tensor& lse, const Launch& launch) {
  TcArgs a = make_tc_args(q, lengths, p);
  a.q = q.data<bf16>();
  a.k = k.data<bf16>();
  a.v = v.data<bf16>();
  a.out = o.data<float>();
  a.lse = lse.data<float>();
  dispatch_head_dim<float>(a.dh, [&](auto dh_c, auto) {
    constexpr int DH = decltype(dh_c)::value;
    launch(attn_fwd_tc_kernel<DH>, "attn_fwd_tc_kernel", grid_of(q.dim(0) * a.H, a.chunks, a.tiles), kAttnThreads,
           tc_tiles_smem<DH>(4), a);
  });
}

// The backward of Backend::attention_grad for bfloat16 q, k, v and dout, head widths up to
// kTcMaxBackwardDh (the caller widens wider ones to the float32 kernels): dq, dk, dv float32, written.
// The row terms delta [B, H, L] go to scratch from `mem`.
template <class Mem, class Launch>
void attention_backward_tc(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                           const Tensor& dout, const Tensor& lengths, const AttentionOptions& p, Tensor& dq, Tensor& dk,
                           Tensor& dv, Mem& mem, const Launch& launch) {
  TcArgs a = make_tc_args(q, lengths, p);
  const int64_t BH = q.dim(0) * a.H, rows = BH * a.L;
  Scratch<float, Mem> delta(mem, rows);
  launch(attn_delta_kernel<float, bf16>, "attn_delta_kernel", int64_t{blocks_for(rows * 32)}, kThreads, size_t{0},
         dout.data<bf16>(), o.data<float>(), rows, a.dh, delta.p);
  a.q = q.data<bf16>();
  a.k = k.data<bf16>();
  a.v = v.data<bf16>();
  a.dout = dout.data<bf16>();
  a.lse_in = lse.data<float>();
  a.delta = delta.p;
  a.dq = dq.data<float>();
  a.dk = dk.data<float>();
  a.dv = dv.data<float>();
  const int64_t grid = grid_of(BH, a.chunks, a.tiles);
  dispatch_head_dim<float>(a.dh, [&](auto dh_c, auto) {
    constexpr int DH = decltype(dh_c)::value;
    if constexpr (DH <= kTcMaxBackwardDh) {
      launch(attn_dkdv_tc_kernel<DH>, "attn_dkdv_tc_kernel", grid, kAttnThreads,
             2 * kTcKeys * sizeof(float) + tc_tiles_smem<DH>(2), a);
      launch(attn_dq_tc_kernel<DH>, "attn_dq_tc_kernel", grid, kAttnThreads, tc_tiles_smem<DH>(4), a);
    } else {
      throw Error("las_attention: the tensor-core backward serves head widths up to " +
                  std::to_string(kTcMaxBackwardDh) + ", got " + std::to_string(a.dh));
    }
  });
}

}  // namespace attn
}  // namespace LASGRAD_CUDA_ABI
}  // namespace lasgrad::cuda
