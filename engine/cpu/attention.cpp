// Fused LaS attention on the CPU: flash-attention tiling (online softmax, only the row logsumexp
// saved) with the multiplicative decay applied to each logits tile on the fly. Tiles are Eigen GEMMs
// on row-major maps; the element-wise work (decay, exp) runs through Eigen's vectorised arrays.
//
// Work split: the forward runs (batch, head, chunk, query tile) items on OpenMP threads; the backward
// runs (batch, head, chunk) items, each looping key tiles outside and query tiles inside (FlashAttention-2),
// so every item owns its dq, dk, dv rows: no atomics, and the result never depends on the thread count.
// Memory: per thread a few tiles of Br x Bc and B x dh entries, whatever L is.
#include <omp.h>

#include "engine/cpu/eigen.h"
#include <cmath>
#include <limits>
#include <vector>

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

// One (batch, head) slice and the geometry every tile needs.
template <class T>
struct Head {
  const T *q, *k, *v;  // [L, dh]
  int64_t L, dh, C;    // C: chunk length
  int64_t len;         // keys at positions >= len are padding
  bool causal;
  const T* decay;      // decay[t] = scale * exp(-alpha |t|) for t = j - i in [-(C-1), C-1] (centred pointer)

  // Keys [c0, kend) can be valid for some query in [i0, i1) of the chunk [c0, cend).
  int64_t key_end(int64_t cend, int64_t i1) const {
    int64_t e = std::min(cend, len);
    return causal ? std::min(e, i1) : e;
  }
  // Valid keys of query i among [j0, j1): the first n of them.
  int64_t valid(int64_t i, int64_t j0, int64_t j1) const {
    return std::max<int64_t>(0, (causal ? std::min(j1, i + 1) : j1) - j0);
  }
  // S [i1-i0, j1-j0] = (q_i . k_j) * decay[j - i]: the decayed, scaled logits of one tile.
  void logits(int64_t i0, int64_t i1, int64_t j0, int64_t j1, T* S) const {
    const int64_t rows = i1 - i0, cols = j1 - j0;
    MatMap<T> s(S, rows, cols);
    s.noalias() = CMatMap<T>(q + i0 * dh, rows, dh) * CMatMap<T>(k + j0 * dh, cols, dh).transpose();
    for (int64_t r = 0; r < rows; ++r) Row<T>(S + r * cols, cols) *= CRow<T>(decay + (j0 - (i0 + r)), cols);
  }
};

// Per head h: the decay table over t in [-(C-1), C-1], scale folded in. O(C) memory per head.
// Factors below 1e-30 are flushed to 0: in float they would be denormals, which x86 multiplies through
// slow microcode (3x slower LaS steps), and they change a logit by less than 1e-30 |s|.
template <class T>
std::vector<T> decay_tables(const Backend::AttentionParams& p, int64_t C) {
  const int64_t H = static_cast<int64_t>(p.alpha.size()), n = 2 * C - 1;
  std::vector<T> tab(static_cast<size_t>(H * n));
  for (int64_t h = 0; h < H; ++h)
    for (int64_t t = -(C - 1); t <= C - 1; ++t) {
      const double e = std::exp(-p.alpha[h] * static_cast<double>(std::abs(t)));
      tab[h * n + t + C - 1] = static_cast<T>(e < 1e-30 ? 0.0 : p.scale * e);
    }
  return tab;
}

int64_t valid_length(const Tensor& lengths, int64_t b, int64_t L) {
  return lengths.defined() ? std::clamp<int64_t>(lengths.data<int32_t>()[b], 0, L) : L;
}

}  // namespace

// q, k, v [B, H, L, dh]; o [B, H, L, dh]; lse [B, H, L].
void CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lengths,
                           const AttentionParams& p, Tensor& o, Tensor& lse) {
  dispatch_floating("las_attention", q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t B = q.dim(0), H = q.dim(1), L = q.dim(2), dh = q.dim(3), C = p.chunk;
    const int64_t chunks = (L + C - 1) / C, tiles = (C + kBr - 1) / kBr, items = B * H * chunks * tiles;
    const std::vector<T> tab = decay_tables<T>(p, C);
    const T *qp = q.data<T>(), *kp = k.data<T>(), *vp = v.data<T>();
    T *op = o.data<T>(), *lp = lse.data<T>();
    const T inf = std::numeric_limits<T>::infinity();
#pragma omp parallel
    {
      Scratch<T> S(kBr * kBc), O(kBr * dh), m(kBr), l(kBr);
#pragma omp for schedule(dynamic)
      for (int64_t item = 0; item < items; ++item) {
        const int64_t t = item % tiles, c = item / tiles % chunks, bh = item / (tiles * chunks), b = bh / H;
        const int64_t c0 = c * C, cend = std::min(L, c0 + C), i0 = c0 + t * kBr;
        if (i0 >= cend) continue;  // the last chunk is shorter than C
        const int64_t i1 = std::min(i0 + kBr, cend), rows = i1 - i0;
        const int64_t off = bh * L * dh;
        Head<T> hd{qp + off, kp + off, vp + off, L, dh, C, valid_length(lengths, b, L), p.causal,
                   tab.data() + (bh % H) * (2 * C - 1) + C - 1};
        MatMap<T> acc(O.data(), rows, dh);
        acc.setZero();
        std::fill(m.begin(), m.end(), -inf);
        std::fill(l.begin(), l.end(), T(0));
        const int64_t kend = hd.key_end(cend, i1);
        for (int64_t j0 = c0; j0 < kend; j0 += kBc) {
          const int64_t j1 = std::min(j0 + kBc, kend), cols = j1 - j0;
          hd.logits(i0, i1, j0, j1, S.data());
          // Online softmax: rescale what was accumulated when the row maximum grows.
          for (int64_t r = 0; r < rows; ++r) {
            Row<T> s(S.data() + r * cols, cols);
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
            acc.row(r) *= corr;
            m[r] = mx;
          }
          acc.noalias() += CMatMap<T>(S.data(), rows, cols) * CMatMap<T>(hd.v + j0 * dh, cols, dh);
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
void CpuBackend::attention_grad(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                                const Tensor& lse, const Tensor& dout, const Tensor& lengths,
                                const AttentionParams& p, Tensor& dq, Tensor& dk, Tensor& dv) {
  dispatch_floating("las_attention", q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t B = q.dim(0), H = q.dim(1), L = q.dim(2), dh = q.dim(3), C = p.chunk;
    const int64_t chunks = (L + C - 1) / C, items = B * H * chunks;
    const std::vector<T> tab = decay_tables<T>(p, C);
    const T *qp = q.data<T>(), *kp = k.data<T>(), *vp = v.data<T>(), *opp = o.data<T>(), *lp = lse.data<T>(),
            *gp = dout.data<T>();
    T *dqp = dq.data<T>(), *dkp = dk.data<T>(), *dvp = dv.data<T>();
#pragma omp parallel
    {
      Scratch<T> P(kBr * kBc), dP(kBr * kBc), dK(kBc * dh), dV(kBc * dh), D(C);
#pragma omp for schedule(dynamic)
      for (int64_t item = 0; item < items; ++item) {
        const int64_t c = item % chunks, bh = item / chunks, b = bh / H;
        const int64_t c0 = c * C, cend = std::min(L, c0 + C), off = bh * L * dh;
        Head<T> hd{qp + off, kp + off, vp + off, L, dh, C, valid_length(lengths, b, L), p.causal,
                   tab.data() + (bh % H) * (2 * C - 1) + C - 1};
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
          CMatMap<T> kj(hd.k + j0 * dh, cols, dh), vj(hd.v + j0 * dh, cols, dh);
          // Causal: query tiles that end before j0 see none of these keys.
          for (int64_t i0 = p.causal ? c0 + (j0 - c0) / kBr * kBr : c0; i0 < cend; i0 += kBr) {
            const int64_t i1 = std::min(i0 + kBr, cend), rows = i1 - i0;
            hd.logits(i0, i1, j0, j1, P.data());
            for (int64_t r = 0; r < rows; ++r) {
              Row<T> s(P.data() + r * cols, cols);
              const int64_t n = std::isinf(lrow[i0 + r]) ? 0 : hd.valid(i0 + r, j0, j1);  // inf: no valid key
              s.head(n) = (s.head(n) - lrow[i0 + r]).exp();
              s.tail(cols - n).setZero();
            }
            CMatMap<T> pm(P.data(), rows, cols), gi(g + i0 * dh, rows, dh), qi(hd.q + i0 * dh, rows, dh);
            dv_acc.noalias() += pm.transpose() * gi;
            MatMap<T> ds(dP.data(), rows, cols);
            ds.noalias() = gi * vj.transpose();
            for (int64_t r = 0; r < rows; ++r)
              Row<T>(dP.data() + r * cols, cols) = CRow<T>(P.data() + r * cols, cols) *
                                                   (CRow<T>(dP.data() + r * cols, cols) - D[i0 + r - c0]) *
                                                   CRow<T>(hd.decay + (j0 - (i0 + r)), cols);
            MatMap<T>(gq + i0 * dh, rows, dh).noalias() += ds * kj;
            dk_acc.noalias() += ds.transpose() * qi;
          }
          MatMap<T>(gk + j0 * dh, cols, dh) = dk_acc;
          MatMap<T>(gv + j0 * dh, cols, dh) = dv_acc;
        }
      }
    }
  });
}

}  // namespace lasgrad
