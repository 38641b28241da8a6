// sum_to: the sum of x over the axes where out has size 1 (the backward of broadcasting, and sum/mean).
//
// Determinism: every sum is accumulated in double in an order fixed by the shapes alone (lane_sum
// lanes, fixed-size blocks merged in index order), and threads only ever own whole blocks or whole
// outputs, so the result is bitwise the same for any thread count.
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_util.h"
#include "engine/layout_plan.h"

namespace lasgrad {

using namespace cpu;

constexpr int64_t kSumBlock = 1 << 14;  // elements per partial sum of a long row
constexpr int64_t kMinRows = 64;        // rows per partial of a column sum
constexpr int64_t kColBlock = 4096;     // columns per work item of a column sum

// One reduction step: x viewed as [A, R, B], out[a, b] = sum_r x[a, r, b].
template <class In, class Out>
static void reduce_mid(const In* x, int64_t A, int64_t R, int64_t B, Out* out) {
  if (B == 1) {
    // Row sums. A long row is cut into fixed blocks of kSumBlock so that even a full reduction
    // (A == 1) runs in parallel; the block partials are then added in order.
    const int64_t nblk = (R + kSumBlock - 1) / kSumBlock;
    std::vector<double> part(static_cast<size_t>(A * nblk));
    parallel_for(A * nblk, row_grain(std::min(R, kSumBlock)), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        int64_t a = i / nblk, r0 = (i % nblk) * kSumBlock, n = std::min(kSumBlock, R - r0);
        const In* row = x + a * R + r0;
        part[i] = lane_sum(n, [row](int64_t j) { return static_cast<double>(row[j]); });
      }
    });
    parallel_for(A, row_grain(nblk), [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a) {
        double s = 0;
        for (int64_t k = 0; k < nblk; ++k) s += part[a * nblk + k];
        out[a] = static_cast<Out>(s);
      }
    });
    return;
  }
  // Column sums (e.g. a bias gradient [N, D] -> [D]). Work items are (a, block of rows, block of
  // columns); each adds its rows into a double partial (vectorised across columns), and the partials
  // of the row blocks are added in order. Row blocks hold >= kMinRows rows and ~kSumBlock elements.
  const int64_t rows = std::max(kMinRows, kSumBlock / B);
  const int64_t nrb = (R + rows - 1) / rows, ncb = (B + kColBlock - 1) / kColBlock;
  std::vector<double> part(static_cast<size_t>(A * nrb * B));
  parallel_for(A * nrb * ncb, row_grain(std::min(R, rows) * std::min(B, kColBlock)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      int64_t cb = i % ncb, rb = (i / ncb) % nrb, a = i / (ncb * nrb);
      int64_t c0 = cb * kColBlock, nc = std::min(kColBlock, B - c0);
      int64_t r0 = rb * rows, r1 = std::min(R, r0 + rows);
      double* acc = part.data() + (a * nrb + rb) * B + c0;
      std::fill(acc, acc + nc, 0.0);
      for (int64_t r = r0; r < r1; ++r) {
        const In* row = x + (a * R + r) * B + c0;
        for (int64_t c = 0; c < nc; ++c) acc[c] += static_cast<double>(row[c]);
      }
    }
  });
  parallel_for(A * B, kGrain / std::max<int64_t>(nrb, 1), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      int64_t a = i / B, c = i % B;
      double s = 0;
      for (int64_t k = 0; k < nrb; ++k) s += part[(a * nrb + k) * B + c];
      out[i] = static_cast<Out>(s);
    }
  });
}

// x [..], out: same rank, out[i] == x[i] or out[i] == 1.
void CpuBackend::sum_to(const Tensor& x, Tensor& out) {
  dispatch_floating("sum_to", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    if (out.numel() == 0) return;
    if (x.numel() == 0) return fill(out, 0.0);
    const std::vector<ReduceStep> steps = plan_sum_to(x.shape(), out.shape());
    if (steps.empty()) return parallel_memcpy(op, xp, x.nbytes());
    // Steps between the first and the last read and write double buffers.
    std::vector<double> cur, next;
    for (size_t s = 0; s < steps.size(); ++s) {
      const auto [A, R, B] = steps[s];
      const bool first = s == 0, last = s + 1 == steps.size();
      if (!last) next.resize(static_cast<size_t>(A * B));
      if (first && last) reduce_mid(xp, A, R, B, op);
      else if (first) reduce_mid(xp, A, R, B, next.data());
      else if (last) reduce_mid(cur.data(), A, R, B, op);
      else reduce_mid(cur.data(), A, R, B, next.data());
      std::swap(cur, next);
    }
  });
}

}  // namespace lasgrad
