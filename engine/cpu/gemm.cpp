// matmul: batched GEMM through Eigen on row-major maps (no copies; the transposes are Eigen views,
// which its GEMM packs for free).
//
// Work split: every GEMM is cut into tiles whose bounds depend only on the shapes, never on the thread
// count, and each tile is one single-threaded Eigen product. Eigen's own threading picks its blocking
// (hence the order of the K sums) from the number of threads, so the same step gave other bits with 2
// threads than with 1; with fixed tiles every thread count gives the same bits, and the trainer may use
// fewer threads when the cores are busy without changing a result.
//   - Output tiles of at most kTileM x kTileN.
//   - When the output has too few tiles to share (a weight gradient: [d, K] x [K, d'] with K = batch x
//     length), K is cut into fixed chunks of kChunkK as well; their partial products are summed in
//     chunk order.
#include <omp.h>

#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_util.h"
#include "engine/cpu/eigen.h"

namespace lasgrad {

using namespace cpu;

namespace {

constexpr int64_t kTileM = 256, kTileN = 256;
constexpr int64_t kChunkK = 512;  // K per partial product when K is split
constexpr int64_t kFewTiles = 8;  // fewer output tiles than this (over the batch) and a long K: split K
constexpr int64_t kMaxChunks = 16;

// c [m, n] (row stride ldc) = op(a) @ op(b) over k, single-threaded. a is [M, K] ([K, M] when ta) with
// row stride lda, offset to the tile; likewise b. `accumulate`: c += instead of c =.
template <class T>
void tile_gemm(const T* a, int64_t lda, bool ta, const T* b, int64_t ldb, bool tb, T* c, int64_t ldc, int64_t m,
               int64_t n, int64_t k) {
  using Stride = Eigen::OuterStride<>;
  Eigen::Map<RowMat<T>, 0, Stride> C(c, m, n, Stride(ldc));
  if (k == 0) {
    C.setZero();
    return;
  }
  Eigen::Map<const RowMat<T>, 0, Stride> A(a, ta ? k : m, ta ? m : k, Stride(lda)),
      B(b, tb ? n : k, tb ? k : n, Stride(ldb));
  if (!ta && !tb) C.noalias() = A * B;
  else if (ta && !tb) C.noalias() = A.transpose() * B;
  else if (!ta && tb) C.noalias() = A * B.transpose();
  else C.noalias() = A.transpose() * B.transpose();
}

}  // namespace

// a [batch, M, K] or [batch, K, M], b [batch, K, N] or [batch, N, K], out [batch, M, N]; out must not
// alias a or b. bfloat16 a and b (out float32) are widened to float32 first, exactly: the product is
// the float32 GEMM of the rounded operands, which is what the precision's reference asks for.
void CpuBackend::matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& out) {
  if (a.dtype() == DType::BF16) return matmul(a.to(DType::F32), trans_a, b.to(DType::F32), trans_b, out);
  dispatch_floating("matmul", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t batch = out.dim(0), M = out.dim(1), N = out.dim(2), K = trans_a ? a.dim(1) : a.dim(2);
    if (batch == 0 || M == 0 || N == 0) return;
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* cp = out.data<T>();
    const int64_t tm = (M + kTileM - 1) / kTileM, tn = (N + kTileN - 1) / kTileN, tiles = batch * tm * tn;
    const int64_t chunks = tiles < kFewTiles ? std::clamp<int64_t>(K / kChunkK, 1, kMaxChunks) : 1;
    const int64_t lda = trans_a ? M : K, ldb = trans_b ? K : N;
    // Where tile (i, j) of matrix s, over K range [k0, k1), reads and writes.
    auto run = [&](int64_t s, int64_t i, int64_t j, int64_t k0, int64_t k1, T* c, int64_t ldc) {
      const int64_t m0 = i * kTileM, n0 = j * kTileN, m = std::min(kTileM, M - m0), n = std::min(kTileN, N - n0);
      const T* as = ap + s * M * K + (trans_a ? k0 * lda + m0 : m0 * lda + k0);
      const T* bs = bp + s * K * N + (trans_b ? n0 * ldb + k0 : k0 * ldb + n0);
      tile_gemm(as, lda, trans_a, bs, ldb, trans_b, c, ldc, m, n, k1 - k0);
    };
    if (chunks == 1) {
      const int threads = static_cast<int>(std::min<int64_t>(tiles, omp_get_max_threads()));
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (threads > 1 && !omp_in_parallel())
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t s = t / (tm * tn), i = t / tn % tm, j = t % tn;
        run(s, i, j, 0, K, cp + s * M * N + i * kTileM * N + j * kTileN, N);
      }
      return;
    }
    // Split K: chunk q of every tile into its own [M, N] partial, then the partials summed in order.
    std::vector<T> part(static_cast<size_t>(chunks * batch * M * N));
    const int64_t items = tiles * chunks;
    const int threads = static_cast<int>(std::min<int64_t>(items, omp_get_max_threads()));
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (threads > 1 && !omp_in_parallel())
    for (int64_t t = 0; t < items; ++t) {
      const int64_t q = t % chunks, tile = t / chunks, s = tile / (tm * tn), i = tile / tn % tm, j = tile % tn;
      const int64_t k0 = K * q / chunks, k1 = K * (q + 1) / chunks;
      T* c = part.data() + ((q * batch + s) * M + i * kTileM) * N + j * kTileN;
      run(s, i, j, k0, k1, c, N);
    }
    const int64_t total = batch * M * N;
    parallel_for(total, kGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t e = lo; e < hi; ++e) {
        T acc = part[static_cast<size_t>(e)];
        for (int64_t q = 1; q < chunks; ++q) acc += part[static_cast<size_t>(q * total + e)];
        cp[e] = acc;
      }
    });
  });
}

}  // namespace lasgrad
