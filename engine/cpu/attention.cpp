// Fused LaS attention on the CPU: flash-attention tiling (online softmax, only the row logsumexp
// saved) with the multiplicative decay applied to each logits tile on the fly. The element-wise work
// (max, exp, sums) runs through Eigen's vectorised arrays. The tile products are register-blocked
// micro-kernels for float at head widths 16, 32 and 64 (the vector width of the build: 4, 8 or 16
// floats), and Eigen GEMMs on row-major maps otherwise: Eigen's GEMM packs both operands on every call
// and its register block is built for deep products, not for a depth of 16 (docs/benchmarks.md has the
// steps before and after).
//
// Work split: the forward runs (batch, head, chunk, query tile) items on OpenMP threads; the backward
// runs (batch, head, chunk) items, each looping key tiles outside and query tiles inside (FlashAttention-2),
// so every item owns its dq, dk, dv rows: no atomics, and the result never depends on the thread count.
// Memory: per thread a few tiles of Br x Bc and B x dh entries, whatever L is.
#include <omp.h>

#include "engine/cpu/eigen.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "engine/attention.h"
#include "engine/bf16.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_util.h"

namespace lasgrad {

using namespace cpu;

namespace {

constexpr int64_t kBr = 64;  // query rows per tile
constexpr int64_t kBc = 64;  // key columns per tile

template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MatMap = Eigen::Map<Mat<T>>;
template <class T>
using CMatMap = Eigen::Map<const Mat<T>>;
template <class T>
using Row = Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>;
template <class T>
using CRow = Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>;

// ---- Tile products. Tiles are [rows <= kBr] x [cols <= kBc], stored with row stride kBc. ----

// kAccRegs: accumulator registers per block, enough independent FMA chains to cover the FMA latency
// on two pipes, leaving registers for the loaded operands (16 vector registers, 32 with AVX-512).
#if defined(__AVX512F__)
constexpr int kLanes = 16;
constexpr int kAccRegs = 24;
#elif defined(__AVX__)
constexpr int kLanes = 8;
constexpr int kAccRegs = 12;
#else
constexpr int kLanes = 4;
constexpr int kAccRegs = 12;
#endif
using vfloat = float __attribute__((vector_size(kLanes * sizeof(float))));

inline vfloat vload(const float* p) {
  vfloat v;
  std::memcpy(&v, p, sizeof v);  // an unaligned vector load
  return v;
}
inline void vstore(float* p, vfloat v) { std::memcpy(p, &v, sizeof v); }
inline vfloat vbroadcast(float x) { return x - vfloat{}; }  // x - 0 is exact, so no add is emitted (0 + x is not: -0)

// Whether the float micro-kernels serve head width dh (else the Eigen products).
template <class T>
bool micro_kernel(int64_t dh) {
  return std::is_same_v<T, float> && (dh == 16 || dh == 32 || dh == 64);
}

// bt [DH, kBc] = b [cols, DH] transposed, zero past cols: the packed right operand of qk_tile.
// (qk_tile reads the columns up to cols rounded up to its block, so every one it reads is written.)
template <int DH>
void pack_transposed(const float* b, int64_t cols, float* bt) {
  for (int d = 0; d < DH; ++d) {
    for (int64_t j = 0; j < cols; ++j) bt[d * kBc + j] = b[j * DH + d];
    for (int64_t j = cols; j < kBc; ++j) bt[d * kBc + j] = 0;
  }
}

constexpr int kQkCols = 4;  // vectors of columns per qk block (divides kBc / kLanes)

// s [rows, kBc] = a [rows, DH] bt [DH, kBc], times decay[j - i] per element when Decay (decay points
// at t = j0 - i0 of the tile's first row). RB rows by CB vectors of kLanes columns per block; only the
// blocks that hold one of the first cols columns are computed (a chunk shorter than a tile).
template <int DH, bool Decay, int RB>
void qk_rows(const float* a, int64_t r0, const float* bt, int64_t cols, const float* decay, float* s) {
  constexpr int NV = kBc / kLanes, CB = kQkCols;
  static_assert(NV % CB == 0);
  for (int v0 = 0; v0 * kLanes < cols; v0 += CB) {
    vfloat acc[RB][CB] = {};
    for (int d = 0; d < DH; ++d) {
      vfloat bv[CB];
#pragma GCC unroll 16
      for (int c = 0; c < CB; ++c) bv[c] = vload(bt + d * kBc + (v0 + c) * kLanes);
#pragma GCC unroll 16
      for (int i = 0; i < RB; ++i) {
        const vfloat x = vbroadcast(a[(r0 + i) * DH + d]);
#pragma GCC unroll 16
        for (int c = 0; c < CB; ++c) acc[i][c] += x * bv[c];
      }
    }
#pragma GCC unroll 16
    for (int i = 0; i < RB; ++i)
#pragma GCC unroll 16
      for (int c = 0; c < CB; ++c) {
        const int64_t col = (v0 + c) * kLanes;
        vstore(s + (r0 + i) * kBc + col, Decay ? acc[i][c] * vload(decay - (r0 + i) + col) : acc[i][c]);
      }
  }
}

template <int DH, bool Decay>
void qk_tile(const float* a, int64_t rows, const float* bt, int64_t cols, const float* decay, float* s) {
  constexpr int RB = kAccRegs / kQkCols;
  int64_t r = 0;
  for (; r + RB <= rows; r += RB) qk_rows<DH, Decay, RB>(a, r, bt, cols, decay, s);
  for (; r < rows; ++r) qk_rows<DH, Decay, 1>(a, r, bt, cols, decay, s);
}

// acc [n, DH] += sum over k < depth of w(i, k) b [k, DH], RB rows of acc per block, where w(i, k) is
// p[i * kBc + k] (Trans = false: acc += P B) or p[k * kBc + i] (Trans = true: acc += P^T B).
template <int DH, bool Trans, int RB>
void acc_rows(const float* p, const float* b, int64_t depth, int64_t i0, float* acc) {
  constexpr int DV = DH / kLanes;
  vfloat o[RB][DV];
#pragma GCC unroll 16
  for (int i = 0; i < RB; ++i)
#pragma GCC unroll 16
    for (int c = 0; c < DV; ++c) o[i][c] = vload(acc + (i0 + i) * DH + c * kLanes);
  for (int64_t k = 0; k < depth; ++k) {
    vfloat bv[DV];
#pragma GCC unroll 16
    for (int c = 0; c < DV; ++c) bv[c] = vload(b + k * DH + c * kLanes);
#pragma GCC unroll 16
    for (int i = 0; i < RB; ++i) {
      const vfloat x = vbroadcast(Trans ? p[k * kBc + i0 + i] : p[(i0 + i) * kBc + k]);
#pragma GCC unroll 16
      for (int c = 0; c < DV; ++c) o[i][c] += x * bv[c];
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < RB; ++i)
#pragma GCC unroll 16
    for (int c = 0; c < DV; ++c) vstore(acc + (i0 + i) * DH + c * kLanes, o[i][c]);
}

template <int DH, bool Trans>
void acc_tile(const float* p, const float* b, int64_t n, int64_t depth, float* acc) {
  constexpr int RB = std::max(1, kAccRegs / (DH / kLanes));
  int64_t i = 0;
  for (; i + RB <= n; i += RB) acc_rows<DH, Trans, RB>(p, b, depth, i, acc);
  for (; i < n; ++i) acc_rows<DH, Trans, 1>(p, b, depth, i, acc);
}

// Calls f(std::integral_constant<int, DH>{}) for dh in {16, 32, 64}.
template <class F>
void with_width(int64_t dh, const F& f) {
  if (dh == 16) f(std::integral_constant<int, 16>{});
  else if (dh == 32) f(std::integral_constant<int, 32>{});
  else f(std::integral_constant<int, 64>{});
}

// The three products of a tile, through the micro-kernels where they serve, else Eigen:
//   logits:  s [rows, cols] = a [rows, dh] b [cols, dh]^T (* decay), with b packed into bt by the caller
//   acc:     acc [rows, dh] += p [rows, cols] b [cols, dh]
//   acc_t:   acc [cols, dh] += p [rows, cols]^T b [rows, dh]
template <class T>
struct TileOps {
  int64_t dh;
  bool micro = micro_kernel<T>(dh);
  using Strided = Eigen::Map<Mat<T>, 0, Eigen::OuterStride<>>;
  using CStrided = Eigen::Map<const Mat<T>, 0, Eigen::OuterStride<>>;

  // The right operand of logits(): bt [dh, kBc] packed for the micro-kernel; unused by Eigen's path.
  void pack(const T* b, int64_t cols, T* bt) const {
    if constexpr (std::is_same_v<T, float>)
      if (micro) with_width(dh, [&](auto w) { pack_transposed<decltype(w)::value>(b, cols, bt); });
  }
  void logits(const T* a, int64_t rows, const T* b, const T* bt, int64_t cols, const T* decay, T* s) const {
    if constexpr (std::is_same_v<T, float>)
      if (micro) {
        with_width(dh, [&](auto w) {
          if (decay) qk_tile<decltype(w)::value, true>(a, rows, bt, cols, decay, s);
          else qk_tile<decltype(w)::value, false>(a, rows, bt, cols, nullptr, s);
        });
        return;
      }
    Strided S(s, rows, cols, Eigen::OuterStride<>(kBc));
    S.noalias() = CMatMap<T>(a, rows, dh) * CMatMap<T>(b, cols, dh).transpose();
    if (decay)
      for (int64_t r = 0; r < rows; ++r) Row<T>(s + r * kBc, cols) *= CRow<T>(decay - r, cols);
  }
  void acc(const T* p, int64_t rows, int64_t cols, const T* b, T* acc) const {
    if constexpr (std::is_same_v<T, float>)
      if (micro) return with_width(dh, [&](auto w) { acc_tile<decltype(w)::value, false>(p, b, rows, cols, acc); });
    MatMap<T>(acc, rows, dh).noalias() += CStrided(p, rows, cols, Eigen::OuterStride<>(kBc)) * CMatMap<T>(b, cols, dh);
  }
  void acc_t(const T* p, int64_t rows, int64_t cols, const T* b, T* acc) const {
    if constexpr (std::is_same_v<T, float>)
      if (micro) return with_width(dh, [&](auto w) { acc_tile<decltype(w)::value, true>(p, b, cols, rows, acc); });
    MatMap<T>(acc, cols, dh).noalias() +=
        CStrided(p, rows, cols, Eigen::OuterStride<>(kBc)).transpose() * CMatMap<T>(b, rows, dh);
  }
};

// One (batch, head) slice and the geometry every tile needs.
template <class T>
struct Head {
  const T *q, *k, *v;  // [L, dh]
  int64_t L, dh, C;    // C: chunk length
  int64_t len;         // keys at positions >= len are padding
  bool causal;
  const T* decay;  // decay[t] = scale * exp(-alpha |t|) for t = j - i in [-(C-1), C-1] (centred pointer)

  // Keys [c0, kend) can be valid for some query in [i0, i1) of the chunk [c0, cend).
  int64_t key_end(int64_t cend, int64_t i1) const {
    int64_t e = std::min(cend, len);
    return causal ? std::min(e, i1) : e;
  }
  // Valid keys of query i among [j0, j1): the first n of them.
  int64_t valid(int64_t i, int64_t j0, int64_t j1) const {
    return std::max<int64_t>(0, (causal ? std::min(j1, i + 1) : j1) - j0);
  }
  // S [i1-i0, j1-j0] (row stride kBc) = (q_i . k_j) * decay[j - i]: the decayed, scaled logits of one
  // tile; kt holds k's rows [j0, j1) packed by ops.pack.
  void logits(const TileOps<T>& ops, int64_t i0, int64_t i1, int64_t j0, int64_t j1, const T* kt, T* S) const {
    ops.logits(q + i0 * dh, i1 - i0, k + j0 * dh, kt, j1 - j0, decay + (j0 - i0), S);
  }
};

// Per head h: the decay table over t in [-(C-1), C-1], scale folded in, then kBc zeros, which the
// micro-kernels read past a tile's last key (table_span(C) entries per head, the centre at C - 1). O(C)
// memory per head. Factors below 1e-30 are flushed to 0: in float they would be denormals, which x86
// multiplies through slow microcode (3x slower LaS steps), and they change a logit by less than 1e-30 |s|.
int64_t table_span(int64_t C) { return 2 * C - 1 + kBc; }

template <class T>
std::vector<T> decay_tables(const AttentionOptions& p, int64_t C, int64_t dh) {
  const int64_t H = static_cast<int64_t>(p.alpha.size()), n = table_span(C);
  const double scale = logit_scale(dh);
  std::vector<T> tab(static_cast<size_t>(H * n), T(0));
  for (int64_t h = 0; h < H; ++h)
    for (int64_t t = -(C - 1); t <= C - 1; ++t) {
      const double e = std::exp(-p.alpha[h] * static_cast<double>(std::abs(t)));
      tab[h * n + t + C - 1] = static_cast<T>(e < 1e-30 ? 0.0 : scale * e);
    }
  return tab;
}

int64_t valid_length(const Tensor& lengths, int64_t b, int64_t L) {
  return lengths.defined() ? std::clamp<int64_t>(lengths.data<int32_t>()[b], 0, L) : L;
}

// Slice bh = b H + h of q, k, v [B, H, L, dh] with its valid length and its head's decay table row.
template <class T>
Head<T> head_at(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lengths, bool causal, int64_t C,
                const std::vector<T>& tab, int64_t bh) {
  const int64_t H = q.dim(1), L = q.dim(2), dh = q.dim(3), off = bh * L * dh;
  return {q.data<T>() + off,
          k.data<T>() + off,
          v.data<T>() + off,
          L,
          dh,
          C,
          valid_length(lengths, bh / H, L),
          causal,
          tab.data() + (bh % H) * table_span(C) + C - 1};
}

// The first n entries of a tile row rounded to bfloat16 (precision bf16: the probabilities P and the
// gradient terms G enter their products as bfloat16, as on the GPU's tensor cores).
template <class T>
void round_bf16(T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<T>(bf16_round(static_cast<float>(x[i])));
}

}  // namespace

// q, k, v [B, H, L, dh]; o [B, H, L, dh]; lse [B, H, L]. bfloat16 q, k, v (o, lse float32) are widened
// to float32 first, exactly, and with p.bf16 each tile's P is rounded to bfloat16 before P V (its row sum
// l is not): the rounding points of the tensor-core kernels, computed in float32, the precision's reference.
void CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lengths,
                           const AttentionOptions& p, Tensor& o, Tensor& lse) {
  if (q.dtype() == DType::BF16)
    return attention(q.to(DType::F32), k.to(DType::F32), v.to(DType::F32), lengths, p, o, lse);
  dispatch_floating("las_attention", q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t B = q.dim(0), H = q.dim(1), L = q.dim(2), dh = q.dim(3), C = chunk_length(p, L);
    const int64_t chunks = (L + C - 1) / C, tiles = (C + kBr - 1) / kBr, items = B * H * chunks * tiles;
    const std::vector<T> tab = decay_tables<T>(p, C, dh);
    T *op = o.data<T>(), *lp = lse.data<T>();
    const T inf = std::numeric_limits<T>::infinity();
    const TileOps<T> ops{dh};
#pragma omp parallel
    {
      Scratch<T> S(kBr * kBc), Kt(dh * kBc), O(kBr * dh), m(kBr), l(kBr);
#pragma omp for schedule(dynamic)
      for (int64_t item = 0; item < items; ++item) {
        const int64_t t = item % tiles, c = item / tiles % chunks, bh = item / (tiles * chunks);
        const int64_t c0 = c * C, cend = std::min(L, c0 + C), i0 = c0 + t * kBr;
        if (i0 >= cend) continue;  // the last chunk is shorter than C
        const int64_t i1 = std::min(i0 + kBr, cend), rows = i1 - i0;
        const int64_t off = bh * L * dh;
        const Head<T> hd = head_at(q, k, v, lengths, p.causal, C, tab, bh);
        MatMap<T> acc(O.data(), rows, dh);
        acc.setZero();
        std::fill(m.begin(), m.end(), -inf);
        std::fill(l.begin(), l.end(), T(0));
        const int64_t kend = hd.key_end(cend, i1);
        for (int64_t j0 = c0; j0 < kend; j0 += kBc) {
          const int64_t j1 = std::min(j0 + kBc, kend), cols = j1 - j0;
          ops.pack(hd.k + j0 * dh, cols, Kt.data());
          hd.logits(ops, i0, i1, j0, j1, Kt.data(), S.data());
          // Online softmax: rescale what was accumulated when the row maximum grows.
          for (int64_t r = 0; r < rows; ++r) {
            Row<T> s(S.data() + r * kBc, cols);
            const int64_t n = hd.valid(i0 + r, j0, j1);
            if (n == 0) {
              s.setZero();
              continue;
            }
            const T mx = std::max(m[r], s.head(n).maxCoeff());
            const T corr = std::exp(m[r] - mx);  // 0 on the row's first valid tile (m = -inf)
            s.head(n) = (s.head(n) - mx).exp();
            s.tail(cols - n).setZero();
            l[r] = l[r] * corr + s.head(n).sum();
            if (p.bf16) round_bf16(s.data(), n);
            acc.row(r) *= corr;
            m[r] = mx;
          }
          ops.acc(S.data(), rows, cols, hd.v + j0 * dh, O.data());
        }
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = i0 + r;
          MatMap<T> out(op + off + i * dh, 1, dh);
          if (l[r] > 0) {
            out = acc.row(r) / l[r];
            lp[bh * L + i] = m[r] + std::log(l[r]);
          } else {  // no valid key: zeros, and an lse that zeroes every recomputed probability
            out.setZero();
            lp[bh * L + i] = inf;
          }
        }
      }
    }
  });
}

// The FlashAttention-2 backward with the decay: with P = exp(S' - lse) recomputed per tile,
//   dv_j = sum_i P_ij do_i;   dP_ij = do_i . v_j;   G_ij = P_ij (dP_ij - D_i) * decay(j - i)
//   dq_i = sum_j G_ij k_j;    dk_j = sum_i G_ij q_i;  where D_i = do_i . o_i = sum_j P_ij dP_ij.
// (dS' = P (dP - D) is the softmax backward; dS = dS' * E is the decay's; the scale sits in the decay.)
void CpuBackend::attention_grad(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                                const Tensor& dout, const Tensor& lengths, const AttentionOptions& p, Tensor& dq,
                                Tensor& dk, Tensor& dv) {
  if (q.dtype() == DType::BF16)  // widened as in the forward; dout is bfloat16 too; P and G rounded below
    return attention_grad(q.to(DType::F32), k.to(DType::F32), v.to(DType::F32), o, lse, dout.to(DType::F32), lengths, p,
                          dq, dk, dv);
  dispatch_floating("las_attention", q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t B = q.dim(0), H = q.dim(1), L = q.dim(2), dh = q.dim(3), C = chunk_length(p, L);
    const int64_t chunks = (L + C - 1) / C, items = B * H * chunks;
    const std::vector<T> tab = decay_tables<T>(p, C, dh);
    const T *opp = o.data<T>(), *lp = lse.data<T>(), *gp = dout.data<T>();
    T *dqp = dq.data<T>(), *dkp = dk.data<T>(), *dvp = dv.data<T>();
    const TileOps<T> ops{dh};
#pragma omp parallel
    {
      Scratch<T> P(kBr * kBc), dP(kBr * kBc), dK(kBc * dh), dV(kBc * dh), Kt(dh * kBc), Vt(dh * kBc), D(C);
#pragma omp for schedule(dynamic)
      for (int64_t item = 0; item < items; ++item) {
        const int64_t c = item % chunks, bh = item / chunks;
        const int64_t c0 = c * C, cend = std::min(L, c0 + C), off = bh * L * dh;
        const Head<T> hd = head_at(q, k, v, lengths, p.causal, C, tab, bh);
        const T* g = gp + off;
        const T* lrow = lp + bh * L;
        T *gq = dqp + off, *gk = dkp + off, *gv = dvp + off;
        for (int64_t i = c0; i < cend; ++i)
          D[i - c0] = (CRow<T>(g + i * dh, dh) * CRow<T>(opp + off + i * dh, dh)).sum();
        MatMap<T>(gq + c0 * dh, cend - c0, dh).setZero();
        MatMap<T>(gk + c0 * dh, cend - c0, dh).setZero();  // padded keys keep zero gradients
        MatMap<T>(gv + c0 * dh, cend - c0, dh).setZero();
        const int64_t kend = hd.key_end(cend, cend);
        for (int64_t j0 = c0; j0 < kend; j0 += kBc) {
          const int64_t j1 = std::min(j0 + kBc, kend), cols = j1 - j0;
          MatMap<T> dk_acc(dK.data(), cols, dh), dv_acc(dV.data(), cols, dh);
          dk_acc.setZero();
          dv_acc.setZero();
          const T *kj = hd.k + j0 * dh, *vj = hd.v + j0 * dh;
          ops.pack(kj, cols, Kt.data());
          ops.pack(vj, cols, Vt.data());
          // Causal: query tiles that end before j0 see none of these keys.
          for (int64_t i0 = p.causal ? c0 + (j0 - c0) / kBr * kBr : c0; i0 < cend; i0 += kBr) {
            const int64_t i1 = std::min(i0 + kBr, cend), rows = i1 - i0;
            hd.logits(ops, i0, i1, j0, j1, Kt.data(), P.data());
            for (int64_t r = 0; r < rows; ++r) {
              Row<T> s(P.data() + r * kBc, cols);
              const int64_t n = std::isinf(lrow[i0 + r]) ? 0 : hd.valid(i0 + r, j0, j1);  // inf: no valid key
              s.head(n) = (s.head(n) - lrow[i0 + r]).exp();
              s.tail(cols - n).setZero();
            }
            const T *gi = g + i0 * dh, *qi = hd.q + i0 * dh;
            ops.logits(gi, rows, vj, Vt.data(), cols, nullptr, dP.data());  // dP = do v^T
            for (int64_t r = 0; r < rows; ++r)
              Row<T>(dP.data() + r * kBc, cols) = CRow<T>(P.data() + r * kBc, cols) *
                                                  (CRow<T>(dP.data() + r * kBc, cols) - D[i0 + r - c0]) *
                                                  CRow<T>(hd.decay + (j0 - (i0 + r)), cols);
            if (p.bf16)  // G from the unrounded P, then both rounded for their products
              for (int64_t r = 0; r < rows; ++r) {
                round_bf16(P.data() + r * kBc, cols);
                round_bf16(dP.data() + r * kBc, cols);
              }
            ops.acc_t(P.data(), rows, cols, gi, dV.data());
            ops.acc(dP.data(), rows, cols, kj, gq + i0 * dh);
            ops.acc_t(dP.data(), rows, cols, qi, dK.data());
          }
          MatMap<T>(gk + j0 * dh, cols, dh) = dk_acc;
          MatMap<T>(gv + j0 * dh, cols, dh) = dv_acc;
        }
      }
    }
  });
}

}  // namespace lasgrad
