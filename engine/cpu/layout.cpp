// Data movement: permute (transpose) and copy_axis (slice/concat). Both work on raw elements of the
// dtype's size, so one instantiation serves float and int32, another double.
#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_util.h"
#include "engine/layout_plan.h"

namespace lasgrad {

using namespace cpu;

constexpr int64_t kTile = 32;  // transpose tile: 32 x 32 elements, 4 KiB of floats

// x [batch, R, C] -> out [batch, C, R], one kTile x kTile tile at a time. A tile is first copied row
// by row into a local buffer and then written out row by row: both sides of memory are touched in
// whole contiguous runs. (Transposing in place from x would read a column of lines that, for a
// power-of-two row length, all fall in one L1 set and evict each other.)
template <class E>
static void transpose_last2(const E* x, E* out, int64_t batch, int64_t R, int64_t C) {
  const int64_t tr = (R + kTile - 1) / kTile, tc = (C + kTile - 1) / kTile;
  parallel_for(batch * tr * tc, row_grain(kTile * kTile), [&](int64_t t0, int64_t t1) {
    E buf[kTile * kTile];
    for (int64_t t = t0; t < t1; ++t) {
      int64_t b = t / (tr * tc), r0 = (t / tc) % tr * kTile, c0 = t % tc * kTile;
      int64_t nr = std::min(R - r0, kTile), nc = std::min(C - c0, kTile);
      const E* xb = x + b * R * C + r0 * C + c0;
      E* ob = out + b * R * C + c0 * R + r0;
      for (int64_t r = 0; r < nr; ++r)
        for (int64_t c = 0; c < nc; ++c) buf[c * kTile + r] = xb[r * C + c];
      for (int64_t c = 0; c < nc; ++c)
        for (int64_t r = 0; r < nr; ++r) ob[c * R + r] = buf[c * kTile + r];
    }
  });
}

// x [xshape], out[i0, .., ik] = x[.. i_perm ..]: the general path. out is written in order; x is read
// with per-axis strides, a contiguous run (memcpy) when the innermost output axis is x's innermost.
template <class E>
static void permute_strided(const E* x, E* out, const std::vector<int64_t>& dims, const std::vector<int64_t>& strides) {
  const int r = static_cast<int>(dims.size());
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  const int64_t inner = dims[r - 1], s_in = strides[r - 1];
  parallel_for(n, kGrain, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> idx(r);
    int64_t off = 0, rem = begin;
    for (int k = r - 1; k >= 0; --k) {
      idx[k] = rem % dims[k];
      rem /= dims[k];
      off += idx[k] * strides[k];
    }
    for (int64_t pos = begin; pos < end;) {
      int64_t len = std::min(inner - idx[r - 1], end - pos);
      if (s_in == 1) std::memcpy(out + pos, x + off, static_cast<size_t>(len) * sizeof(E));
      else
        for (int64_t j = 0; j < len; ++j) out[pos + j] = x[off + j * s_in];
      pos += len;
      idx[r - 1] += len;
      off += len * s_in;
      for (int k = r - 1; k > 0 && idx[k] == dims[k]; --k) {
        off += strides[k - 1] - dims[k] * strides[k];
        idx[k] = 0;
        ++idx[k - 1];
      }
    }
  });
}

// out.shape[i] = x.shape[perm[i]]; any dtype.
void CpuBackend::permute(const Tensor& x, const std::vector<int>& perm, Tensor& out) {
  if (x.numel() == 0) return;
  const PermutePlan plan = plan_permute(x.shape(), perm);
  const int g = plan.groups();
  const std::vector<int>& xorder = plan.xorder;
  const std::vector<int64_t>& gdim = plan.dims;

  dispatch_size(x.dtype(), [&](auto tag) {
    using E = decltype(tag);
    const E* xp = static_cast<const E*>(x.raw());
    E* op = static_cast<E*>(out.raw());
    // After coalescing, an identity is one group (or none), and swapping the last two axes, with any
    // batch axes in front, is [R, C] -> [C, R] or [B, R, C] -> [B, C, R].
    if (g <= 1) return parallel_memcpy(op, xp, x.nbytes());
    if (g == 2 && xorder[0] == 1) return transpose_last2(xp, op, 1, gdim[1], gdim[0]);
    if (g == 3 && xorder[0] == 0 && xorder[1] == 2) return transpose_last2(xp, op, gdim[0], gdim[2], gdim[1]);
    permute_strided(xp, op, gdim, plan.strides);
  });
}

// Views src as [outer, src_axis, inner] and dst as [outer, dst_axis, inner] and copies, for each
// outer index, the contiguous run of len * inner elements; any dtype.
void CpuBackend::copy_axis(const Tensor& src, int64_t src_start, Tensor& dst, int64_t dst_start, int axis,
                           int64_t len) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= src.shape()[i];
  for (int i = axis + 1; i < src.ndim(); ++i) inner *= src.shape()[i];
  const int64_t sa = src.shape()[axis], da = dst.shape()[axis];
  const size_t es = dtype_size(src.dtype()), run = static_cast<size_t>(len * inner) * es;
  if (run == 0 || outer == 0) return;
  const char* s = static_cast<const char*>(src.raw());
  char* d = static_cast<char*>(dst.raw());
  if (outer == 1) return parallel_memcpy(d + dst_start * inner * es, s + src_start * inner * es, run);
  parallel_for(outer, row_grain(static_cast<int64_t>(run / es)), [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      std::memcpy(d + ((o * da + dst_start) * inner) * es, s + ((o * sa + src_start) * inner) * es, run);
  });
}

}  // namespace lasgrad
