// The tensor-core forward of the fused LaS attention, for bfloat16 q, k and smoothed v (precision bf16):
// the same tiling, online softmax and outputs as attn_fwd_kernel (attention_kernels.cuh), with each tile
// product on tensor cores (mma_m16n8k16_bf16, mma.cuh) from bfloat16 operands into float32 sums.
//
// One block per (batch*head, chunk, query tile of 64 rows); 4 warps, each owning 16 query rows. Per key
// tile of 64 keys:
//   S = Q Kᵀ       Q's A fragments stay in registers for the whole block; K's B fragments are read from
//                  shared memory (a key's two adjacent dims are one 32-bit word).
//   S' = S scale exp(-alpha |i - j|), masked: each lane finds its entries' (row, key) from the fragment
//                  layout (c[e] = C[g + 8 (e / 2)][2t + e % 2]); a tile wholly valid for the warp's rows
//                  (interior) skips the mask.
//   online softmax over the row: a row's 16 entries per tile lie with the 4 lanes of a quad (2 shuffles).
//   O += P V       P is rounded to bfloat16 straight from the S accumulators, whose layout is the A
//                  fragment's; V's B fragments are read from shared memory.
// The row sums l add P before its rounding; O divides by l at the end and lse = m + log l, as the float32
// kernel's, so the float32 backward (attention_backward) serves this forward unchanged.
// Shared memory: K and V tiles, [64][DH + 8] bfloat16 each (the 16-byte pad spreads a fragment's rows over
// the banks): 34,816 bytes at DH = 128.
#pragma once
#include <cstdint>

#include "engine/bf16.h"
#include "engine/cuda/attention_kernels.cuh"
#include "engine/cuda/mma.cuh"

namespace lasgrad::cuda {
inline namespace LASGRAD_CUDA_ABI {
namespace attn {

constexpr int kTcRows = 64, kTcKeys = 64;  // query rows per block (16 per warp), keys per tile

// What the tensor-core forward reads and writes; the geometry as in AttnArgs.
struct TcArgs {
  const bf16 *q, *k, *v;  // [B, H, L, dh]
  float *out, *lse;       // [B, H, L, dh], [B, H, L]
  const int32_t* lengths;
  int64_t H, L, dh, C, chunks, tiles;
  bool causal;
  float scale;
  float alpha[kMaxHeads];
};

template <int DH>
constexpr int tc_stride() {
  return DH + 8;
}

template <int DH>
size_t tc_forward_smem() {
  return sizeof(uint16_t) * 2 * kTcKeys * tc_stride<DH>();
}

// Two bfloat16 of one row of src [rows][dh] at (r, c) and (r, c + 1) as one register, zero outside.
__device__ inline uint32_t load_pair(const bf16* src, int64_t r, int64_t rend, int64_t c, int64_t dh) {
  const bool row = r < rend;
  const uint32_t lo = row && c < dh ? src[r * dh + c].bits : 0u, hi = row && c + 1 < dh ? src[r * dh + c + 1].bits : 0u;
  return lo | hi << 16;
}

// dst [kTcKeys][DH + 8] <- rows [r0, r0 + kTcKeys) of src [L, dh], zero beyond rend and dh.
template <int DH>
__device__ void load_tc_rows(uint16_t* dst, const bf16* src, int64_t r0, int64_t rend, int64_t dh) {
  for (int idx = threadIdx.x; idx < kTcKeys * DH; idx += kAttnThreads) {
    const int r = idx / DH, d = idx % DH;
    dst[r * tc_stride<DH>() + d] = r0 + r < rend && d < dh ? src[(r0 + r) * dh + d].bits : uint16_t{0};
  }
}

__device__ inline uint32_t pack16(uint16_t lo, uint16_t hi) { return uint32_t{lo} | uint32_t{hi} << 16; }

// q, k, v bfloat16 [B, H, L, dh]; out float [B, H, L, dh], lse float [B, H, L]. Grid: B*H*chunks*tiles
// blocks of 128 threads (tiles of kTcRows rows); dynamic shared memory: tc_forward_smem<DH>().
template <int DH>
__global__ void __launch_bounds__(kAttnThreads) attn_fwd_tc_kernel(TcArgs a) {
  constexpr int S = tc_stride<DH>(), KS = DH / 16, NB = kTcKeys / 8, ND = DH / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  uint16_t* Ks = reinterpret_cast<uint16_t*>(smem_raw);
  uint16_t* Vs = Ks + kTcKeys * S;
  const Place p = place_of<kTcRows>(a);
  if (p.t0 >= p.cend) return;  // the last chunk is shorter than C (uniform over the block)
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int64_t off = p.bh * a.L * a.dh;
  const int64_t kend = a.causal ? min(p.kvalid, p.t1) : p.kvalid;
  const int64_t w0 = p.t0 + 16 * warp, row[2] = {w0 + g, w0 + g + 8};  // this lane's two rows

  uint32_t qf[KS][4];  // A fragments of Q: a[j] = Q[g + 8 (j % 2)][16 kk + 2t + 8 (j / 2) .. + 1]
#pragma unroll
  for (int kk = 0; kk < KS; ++kk)
#pragma unroll
    for (int j = 0; j < 4; ++j) qf[kk][j] = load_pair(a.q + off, row[j % 2], p.t1, 16 * kk + 2 * t + 8 * (j / 2), a.dh);

  const float nalpha = -a.alpha[p.h];
  float o[ND][4] = {}, m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  for (int64_t j0 = p.c0; j0 < kend; j0 += kTcKeys) {
    __syncthreads();  // the previous tile's K and V are no longer read
    load_tc_rows<DH>(Ks, a.k + off, j0, kend, a.dh);
    load_tc_rows<DH>(Vs, a.v + off, j0, kend, a.dh);  // zero rows: 0 * V must stay finite
    __syncthreads();
    if (a.causal && j0 > w0 + 15) continue;  // every key of the tile lies after the warp's rows

    float s[NB][4] = {};
#pragma unroll
    for (int nb = 0; nb < NB; ++nb)
#pragma unroll
      for (int kk = 0; kk < KS; ++kk) {
        // b[j] = Kᵀ[16 kk + 2t + 8j .. + 1][g]: key nb*8 + g, two adjacent dims.
        const uint16_t* kr = Ks + (nb * 8 + g) * S + 16 * kk + 2 * t;
        const uint32_t b[2] = {pack16(kr[0], kr[1]), pack16(kr[8], kr[9])};
        mma_m16n8k16_bf16(s[nb], qf[kk], b, s[nb]);
      }

    const bool interior = j0 + kTcKeys <= kend && (!a.causal || j0 + kTcKeys - 1 <= w0);
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int nb = 0; nb < NB; ++nb)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t i = row[e / 2], j = j0 + nb * 8 + 2 * t + e % 2;
        const bool valid = interior || (j < kend && (!a.causal || j <= i));
        const float d = static_cast<float>(i > j ? i - j : j - i);
        s[nb][e] = valid ? s[nb][e] * a.scale * expf(nalpha * d) : -INFINITY;
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

        // O += P V over the tile's keys, 16 at a time: P's A fragment from two accumulators of S.
#pragma unroll
    for (int kk = 0; kk < kTcKeys / 16; ++kk) {
      const uint32_t pa[4] = {bf16x2(s[2 * kk][0], s[2 * kk][1]), bf16x2(s[2 * kk][2], s[2 * kk][3]),
                              bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]), bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int nd = 0; nd < ND; ++nd) {
        // b[j] = V[16 kk + 2t + 8j .. + 1][nd*8 + g]: two keys, one dim.
        const uint16_t* vr = Vs + (16 * kk + 2 * t) * S + nd * 8 + g;
        const uint32_t b[2] = {pack16(vr[0], vr[S]), pack16(vr[8 * S], vr[9 * S])};
        mma_m16n8k16_bf16(o[nd], pa, b, o[nd]);
      }
    }
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    if (t == 0 && row[r] < p.t1) a.lse[p.bh * a.L + row[r]] = l[r] > 0.f ? m[r] + logf(l[r]) : INFINITY;
  }
#pragma unroll
  for (int nd = 0; nd < ND; ++nd)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int64_t i = row[e / 2], d = nd * 8 + 2 * t + e % 2;
      if (i < p.t1 && d < a.dh) a.out[off + i * a.dh + d] = l[e / 2] > 0.f ? o[nd][e] / l[e / 2] : 0.f;
    }
}

// The forward of Backend::attention for bfloat16 q, k, v on tensor cores: o and lse float32.
template <class Launch>
void attention_forward_tc(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lengths,
                          const AttentionOptions& p, Tensor& o, Tensor& lse, const Launch& launch) {
  const AttnArgs<float> geo = make_args<float>(q, lengths, p);
  TcArgs a{};
  a.q = q.data<bf16>();
  a.k = k.data<bf16>();
  a.v = v.data<bf16>();
  a.out = o.data<float>();
  a.lse = lse.data<float>();
  a.lengths = geo.lengths;
  a.H = geo.H, a.L = geo.L, a.dh = geo.dh, a.C = geo.C, a.chunks = geo.chunks;
  a.tiles = (a.C + kTcRows - 1) / kTcRows;
  a.causal = geo.causal;
  a.scale = static_cast<float>(geo.scale);
  for (int64_t h = 0; h < a.H; ++h) a.alpha[h] = static_cast<float>(geo.alpha[h]);
  dispatch_head_dim<float>(a.dh, [&](auto dh_c, auto) {
    constexpr int DH = decltype(dh_c)::value;
    launch(attn_fwd_tc_kernel<DH>, "attn_fwd_tc_kernel", grid_of(q.dim(0) * a.H, a.chunks, a.tiles), kAttnThreads,
           tc_forward_smem<DH>(), a);
  });
}

}  // namespace attn
}  // namespace LASGRAD_CUDA_ABI
}  // namespace lasgrad::cuda
