// Neural-network kernels: softmax, cross-entropy, layer norm, embedding, sequence average pooling.
// Row-wise kernels parallelise over rows; each row is processed start to end by one thread, so the
// results do not depend on the thread count. Where rows contribute to one shared output (dgamma,
// dbeta, dtable) the work is split by a rule that depends on the shapes only.
#include <cmath>
#include <limits>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_util.h"
#include "engine/cpu/eigen.h"

namespace lasgrad {

using namespace cpu;

// ---- softmax ----

// x, y [R, C] (any leading shape, softmax over the last axis); y may be x.
void CpuBackend::softmax(const Tensor& x, Tensor& y) {
  dispatch_floating("softmax", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t C = x.ndim() ? x.dim(-1) : 1, R = C ? x.numel() / C : 0;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    parallel_for(R, row_grain(C), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        CVec<T> xr(xp + r * C, C);
        Vec<T> yr(yp + r * C, C);
        // Subtracting the row max keeps exp in range for any finite logits; the max term is exp(0) = 1,
        // so the sum is >= 1. A row of only -inf (fully masked) has no max to subtract: zeros.
        const T m = xr.maxCoeff();
        if (m == -std::numeric_limits<T>::infinity()) {
          yr.setZero();
          continue;
        }
        yr = (xr - m).exp();
        yr *= T(1) / yr.sum();
      }
    });
  });
}

// y, dy, dx [R, C]: dx = y * (dy - sum(dy * y)) per row; dx may be y or dy.
void CpuBackend::softmax_grad(const Tensor& y, const Tensor& dy, Tensor& dx) {
  dispatch_floating("softmax_grad", y.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t C = y.ndim() ? y.dim(-1) : 1, R = C ? y.numel() / C : 0;
    const T* yp = y.data<T>();
    const T* gp = dy.data<T>();
    T* dp = dx.data<T>();
    parallel_for(R, row_grain(C), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* yr = yp + r * C;
        const T* gr = gp + r * C;
        const T dot = static_cast<T>(lane_sum(C, [&](int64_t i) { return double(yr[i]) * double(gr[i]); }));
        T* dr = dp + r * C;
        for (int64_t i = 0; i < C; ++i) dr[i] = yr[i] * (gr[i] - dot);
      }
    });
  });
}

// ---- cross-entropy ----

// Throws naming the op, the row and the value for a target outside [0, C) that is not ignore_index.
// Runs before the parallel work: an exception must not leave an OpenMP region.
static void check_targets(const char* op, const int32_t* t, int64_t N, int64_t C, int64_t ignore_index) {
  for (int64_t n = 0; n < N; ++n)
    if (t[n] != ignore_index && (t[n] < 0 || t[n] >= C))
      throw Error(std::string(op) + ": target " + std::to_string(t[n]) + " at row " + std::to_string(n) +
                  " is outside [0, " + std::to_string(C) + ") and is not the ignore index " +
                  std::to_string(ignore_index));
}

// logits [N, C], targets I32 [N] -> loss [N].
void CpuBackend::cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Tensor& loss) {
  dispatch_floating("cross_entropy", logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t N = logits.dim(0), C = logits.dim(1);
    const T* xp = logits.data<T>();
    const int32_t* tp = targets.data<int32_t>();
    T* lp = loss.data<T>();
    check_targets("cross_entropy", tp, N, C, ignore_index);
    parallel_for(N, row_grain(C), [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        CVec<T> xr(xp + n * C, C);
        // logsumexp = m + log(sum exp(x - m)): no overflow. The loss is formed in the shifted frame,
        // log(sum) - (x_t - m), where both terms are small: m + log(sum) - x_t would round at |m|'s scale.
        const T m = xr.maxCoeff();
        const T log_sum = std::log((xr - m).exp().sum());
        lp[n] = tp[n] == ignore_index ? T(0) : log_sum - (xr[tp[n]] - m);
      }
    });
  });
}

// logits, dlogits [N, C], targets [N]: dlogits = scale * (softmax - onehot), zero on ignored rows.
void CpuBackend::cross_entropy_grad(const Tensor& logits, const Tensor& targets, int64_t ignore_index, double scale,
                                    Tensor& dlogits) {
  dispatch_floating("cross_entropy_grad", logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t N = logits.dim(0), C = logits.dim(1);
    const T* xp = logits.data<T>();
    const int32_t* tp = targets.data<int32_t>();
    T* dp = dlogits.data<T>();
    check_targets("cross_entropy_grad", tp, N, C, ignore_index);
    parallel_for(N, row_grain(C), [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        Vec<T> dr(dp + n * C, C);
        if (tp[n] == ignore_index) {
          dr.setZero();
          continue;
        }
        CVec<T> xr(xp + n * C, C);
        dr = (xr - xr.maxCoeff()).exp();
        const T k = static_cast<T>(scale);
        dr *= k / dr.sum();
        dr[tp[n]] -= k;
      }
    });
  });
}

// ---- layer norm ----

// x, y [R, D], gamma, beta [D] -> y, mean [R], rstd [R] (biased variance, as PyTorch). One thread
// per row: its statistics come from the row while it sits in L1 (mean, then the centred sum of
// squares, which unlike E[x^2] - mean^2 does not cancel), so memory sees one read of x and one write of y.
void CpuBackend::layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& y,
                            Tensor& mean, Tensor& rstd) {
  dispatch_floating("layer_norm", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t D = x.dim(-1), R = D ? x.numel() / D : 0;
    const T* xp = x.data<T>();
    const T* gp = gamma.data<T>();
    const T* bp = beta.data<T>();
    T* yp = y.data<T>();
    T* mp = mean.data<T>();
    T* rp = rstd.data<T>();
    parallel_for(R, row_grain(D), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = xp + r * D;
        const double mu = lane_sum(D, [&](int64_t i) { return double(xr[i]); }) / D;
        const double var = lane_sum(D,
                                    [&](int64_t i) {
                                      double c = xr[i] - mu;
                                      return c * c;
                                    }) /
                           D;
        const T m = static_cast<T>(mu), rs = static_cast<T>(1.0 / std::sqrt(var + eps));
        mp[r] = m;
        rp[r] = rs;
        T* yr = yp + r * D;
        for (int64_t i = 0; i < D; ++i) yr[i] = (xr[i] - m) * rs * gp[i] + bp[i];
      }
    });
  });
}

constexpr int64_t kLnBlocks = 64;  // row blocks whose dgamma/dbeta partials are merged in order

// x, dy, dx [R, D], gamma, dgamma, dbeta [D], mean, rstd [R]. With xh = (x - mean) * rstd and
// g = dy * gamma: dx = rstd * (g - mean(g) - xh * mean(g * xh)); dgamma = sum_r dy * xh; dbeta = sum_r dy.
// The rows are cut into at most kLnBlocks fixed blocks (a function of R only); a block computes its dx
// rows and its dgamma/dbeta partials in one pass, and the partials are then added in block order.
void CpuBackend::layer_norm_grad(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                 const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  dispatch_floating("layer_norm_grad", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t D = x.dim(-1), R = D ? x.numel() / D : 0;
    const T* xp = x.data<T>();
    const T* gp = gamma.data<T>();
    const T* mp = mean.data<T>();
    const T* rp = rstd.data<T>();
    const T* dyp = dy.data<T>();
    T* dxp = dx.data<T>();
    const int64_t nblk = std::min(R, kLnBlocks), rows = nblk ? (R + nblk - 1) / nblk : 0;
    std::vector<double> part(static_cast<size_t>(2 * nblk * D));  // per block: dgamma[D], dbeta[D]
    parallel_for(nblk, row_grain(rows * D), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        double* pg = part.data() + 2 * b * D;
        double* pb = pg + D;
        std::fill(pg, pg + 2 * D, 0.0);
        for (int64_t r = b * rows; r < std::min(R, (b + 1) * rows); ++r) {
          const T* xr = xp + r * D;
          const T* gr = dyp + r * D;
          const T m = mp[r], rs = rp[r];
          const double mg = lane_sum(D, [&](int64_t i) { return double(gr[i]) * gp[i]; }) / D;
          const double mgx = lane_sum(D, [&](int64_t i) { return double(gr[i]) * gp[i] * ((xr[i] - m) * rs); }) / D;
          const T c1 = static_cast<T>(mg), c2 = static_cast<T>(mgx);
          T* dr = dxp + r * D;
          for (int64_t i = 0; i < D; ++i) {
            const T xh = (xr[i] - m) * rs, g = gr[i];
            pg[i] += double(g) * xh;
            pb[i] += double(g);
            dr[i] = rs * (g * gp[i] - c1 - xh * c2);
          }
        }
      }
    });
    T* dg = dgamma.data<T>();
    T* db = dbeta.data<T>();
    parallel_for(D, row_grain(nblk), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        double sg = 0, sb = 0;
        for (int64_t b = 0; b < nblk; ++b) sg += part[2 * b * D + i], sb += part[(2 * b + 1) * D + i];
        dg[i] = static_cast<T>(sg);
        db[i] = static_cast<T>(sb);
      }
    });
  });
}

// ---- embedding ----

// table [V, D], ids I32 [N], out [N, D].
void CpuBackend::embedding(const Tensor& table, const Tensor& ids, Tensor& out) {
  const int64_t V = table.dim(0), D = table.dim(1), N = ids.numel();
  const int32_t* ip = ids.data<int32_t>();
  for (int64_t n = 0; n < N; ++n)
    if (ip[n] < 0 || ip[n] >= V)
      throw Error("embedding: id " + std::to_string(ip[n]) + " at position " + std::to_string(n) +
                  " is outside the table's [0, " + std::to_string(V) + ")");
  const size_t row = static_cast<size_t>(D) * dtype_size(table.dtype());
  const char* tp = static_cast<const char*>(table.raw());
  char* op = static_cast<char*>(out.raw());
  if (row == 0) return;
  parallel_for(N, row_grain(D), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) std::memcpy(op + n * row, tp + ip[n] * row, row);
  });
}

// ids I32 [N], dout [N, D], dtable [V, D] (zeroed by the caller): dtable[ids[n]] += dout[n].
// Threads own column blocks of D, so no two write the same entry, and every entry adds its rows in
// order n = 0, 1, ..: race-free and the same sums for any thread count, however skewed the ids.
void CpuBackend::embedding_grad(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  dispatch_floating("embedding_grad", dtable.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t V = dtable.dim(0), D = dtable.dim(1), N = ids.numel();
    const int32_t* ip = ids.data<int32_t>();
    const T* gp = dout.data<T>();
    T* tp = dtable.data<T>();
    for (int64_t n = 0; n < N; ++n)
      if (ip[n] < 0 || ip[n] >= V)
        throw Error("embedding_grad: id " + std::to_string(ip[n]) + " at position " + std::to_string(n) +
                    " is outside the table's [0, " + std::to_string(V) + ")");
    constexpr int64_t kCols = 16;  // a 64-byte line of floats: blocks never share a cache line's writes
    const int64_t nblk = (D + kCols - 1) / kCols;
    parallel_for(nblk, row_grain(N * kCols), [&](int64_t c0, int64_t c1) {
      const int64_t lo = c0 * kCols, hi = std::min(D, c1 * kCols);
      for (int64_t n = 0; n < N; ++n) {
        T* dst = tp + ip[n] * D;
        const T* src = gp + n * D;
        for (int64_t d = lo; d < hi; ++d) dst[d] += src[d];
      }
    });
  });
}

// ---- sequence average pooling ----

// x, out [B, L, D]: out[b, l] = (1/P) sum_{j = l - P/2}^{l + P/2} x[b, j] over j in [0, L) (zero padding).
// A running window sum (add the entering row, subtract the leaving one) costs O(B L D) for any P. Work
// items are (b, block of kPoolCols columns) with a double accumulator per column. out must not alias x.
void CpuBackend::avg_pool_seq(const Tensor& x, int64_t P, Tensor& out) {
  dispatch_floating("avg_pool_seq", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    constexpr int64_t kPoolCols = 256;
    const int64_t B = x.dim(0), L = x.dim(1), D = x.dim(2), h = P / 2;
    const int64_t nc = (D + kPoolCols - 1) / kPoolCols;
    const double inv = 1.0 / static_cast<double>(P);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    parallel_for(B * nc, row_grain(L * std::min(D, kPoolCols)), [&](int64_t i0, int64_t i1) {
      double acc[kPoolCols];
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t b = i / nc, d0 = i % nc * kPoolCols, w = std::min(kPoolCols, D - d0);
        const T* xb = xp + b * L * D + d0;
        T* ob = op + b * L * D + d0;
        std::fill(acc, acc + w, 0.0);
        for (int64_t j = 0; j < std::min(h, L); ++j)  // the window of l = 0 without its right end
          for (int64_t d = 0; d < w; ++d) acc[d] += xb[j * D + d];
        for (int64_t l = 0; l < L; ++l) {
          if (l + h < L)
            for (int64_t d = 0; d < w; ++d) acc[d] += xb[(l + h) * D + d];
          for (int64_t d = 0; d < w; ++d) ob[l * D + d] = static_cast<T>(acc[d] * inv);
          if (l - h >= 0)
            for (int64_t d = 0; d < w; ++d) acc[d] -= xb[(l - h) * D + d];
        }
      }
    });
  });
}

}  // namespace lasgrad
