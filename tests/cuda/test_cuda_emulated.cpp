// The emulator of CUDA's thread model (simt_emulator.h), tested first: each fault it exists to catch must
// be caught; then what the fused attention kernels (engine/cuda/attention_kernels.cuh, compiled as host
// C++) refuse. The attention case table runs those kernels against the CPU's in test_op_cases_emulated;
// test_cuda runs them on a GPU.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/dispatch.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "tests/cuda/emulated.h"

#include "engine/bf16.h"
#include "engine/cuda/attention_kernels.cuh"
#include "engine/cuda/mma.cuh"

using namespace lasgrad;
using namespace lasgrad::emulated;

namespace {

simt::Launch attn_launch() { return {cuda::attn::smem_raw, cuda::attn::kSharedBytes}; }

// ---- the emulator's own checks, on small kernels written for them ----

alignas(16) unsigned char test_smem[2048];  // the dynamic shared memory of these kernels

// out [blocks * threads]: each thread's entry is the sum of threadIdx.x + 1 over its warp, via warp_sum's shuffles.
__global__ void warp_sum_kernel(double* out) {
  out[blockIdx.x * blockDim.x + threadIdx.x] = cuda::warp_sum(static_cast<double>(threadIdx.x + 1));
}

// out[0] = the sum over the block of t + 1, through block_sum (shuffles, barriers, __shared__ scratch).
__global__ void block_sum_kernel(float* out) {
  __shared__ float scratch[32];
  const float s = cuda::block_sum(static_cast<float>(threadIdx.x + 1), scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = s;
}

// Thread t writes byte t of the dynamic shared memory, then reads byte t + shift after a barrier (or
// without one, when `sync` is false: then it reads before its neighbour wrote).
__global__ void neighbour_kernel(int shift, bool sync, int* out) {
  test_smem[threadIdx.x] = static_cast<unsigned char>(threadIdx.x);
  if (sync) __syncthreads();
  out[threadIdx.x] = test_smem[threadIdx.x + shift];
}

// A barrier that only the first warp reaches.
__global__ void divergent_sync_kernel() {
  if (threadIdx.x < 32) __syncthreads();
}

// Each warp w multiplies its own tile: D = A B + C with A [16 x 16], B [16 x 8] and C [16 x 8] at
// offsets w * 256, w * 128, w * 128, every lane loading its fragments by the PTX ISA's formulas for
// mma.m16n8k16 (groupID = lane >> 2, threadID_in_group = lane % 4), written here as the ISA states them.
__global__ void mma_tile_kernel(const float* A, const float* B, const float* C, float* D) {
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32, group = lane >> 2, in_group = lane % 4;
  A += w * 256, B += w * 128, C += w * 128, D += w * 128;
  float av[8], bv[4];
  for (int i = 0; i < 8; ++i) {
    const int row = (i < 2 || (i >= 4 && i < 6)) ? group : group + 8;
    const int col = i < 4 ? in_group * 2 + (i & 1) : in_group * 2 + (i & 1) + 8;
    av[i] = A[row * 16 + col];
  }
  for (int i = 0; i < 4; ++i) {
    const int row = i < 2 ? in_group * 2 + (i & 1) : in_group * 2 + (i & 1) + 8;
    bv[i] = B[row * 8 + group];
  }
  const uint32_t a[4] = {bf16x2(av[0], av[1]), bf16x2(av[2], av[3]), bf16x2(av[4], av[5]), bf16x2(av[6], av[7])};
  const uint32_t b[2] = {bf16x2(bv[0], bv[1]), bf16x2(bv[2], bv[3])};
  float c[4], d[4];
  for (int i = 0; i < 4; ++i) c[i] = C[(i < 2 ? group : group + 8) * 8 + in_group * 2 + (i & 1)];
  cuda::mma_m16n8k16_bf16(d, a, b, c);
  for (int i = 0; i < 4; ++i) D[(i < 2 ? group : group + 8) * 8 + in_group * 2 + (i & 1)] = d[i];
}

// D [16 x 16] = A [16 x 16] B [16 x 16] as two mma n-blocks, A loaded by the ISA's formulas (as above),
// B's fragments by ldmatrix from shared memory: with trans from B itself ([k][n], row-major), without from
// Bᵀ ([n][k], row-major, as attention's K tiles are), both held with a row stride of 24 elements (a
// padded tile). D_trans and D_plain receive the two results.
__global__ void ldmatrix_kernel(const float* A, const float* B, float* D_trans, float* D_plain) {
  constexpr int kStride = 24;
  uint16_t* Bs = reinterpret_cast<uint16_t*>(test_smem);  // B [16][kStride]
  uint16_t* Bt = Bs + 16 * kStride;                       // Bᵀ [16][kStride]
  const int lane = threadIdx.x, group = lane >> 2, in_group = lane % 4;
  for (int i = lane; i < 256; i += 32) {
    Bs[i / 16 * kStride + i % 16] = bf16_from_float(B[i]);
    Bt[i % 16 * kStride + i / 16] = bf16_from_float(B[i]);
  }
  __syncthreads();
  float av[8];
  for (int i = 0; i < 8; ++i) {
    const int row = (i < 2 || (i >= 4 && i < 6)) ? group : group + 8;
    const int col = i < 4 ? in_group * 2 + (i & 1) : in_group * 2 + (i & 1) + 8;
    av[i] = A[row * 16 + col];
  }
  const uint32_t a[4] = {bf16x2(av[0], av[1]), bf16x2(av[2], av[3]), bf16x2(av[4], av[5]), bf16x2(av[6], av[7])};
  const int m = lane / 8, r = lane % 8;
  uint32_t t[4], p[4];
  // trans: matrix m holds k rows 8 (m % 2) .. + 7, n columns 8 (m / 2) .. + 7 of B.
  cuda::ldmatrix_x4<true>(t, Bs + (8 * (m % 2) + r) * kStride + 8 * (m / 2));
  // plain: matrix m holds n rows 8 (m / 2) .. + 7, k columns 8 (m % 2) .. + 7 of Bᵀ.
  cuda::ldmatrix_x4<false>(p, Bt + (8 * (m / 2) + r) * kStride + 8 * (m % 2));
  for (int nb = 0; nb < 2; ++nb) {
    const uint32_t bt[2] = {t[2 * nb], t[2 * nb + 1]}, bp[2] = {p[2 * nb], p[2 * nb + 1]};
    const float c[4] = {};
    float dt[4], dp[4];
    cuda::mma_m16n8k16_bf16(dt, a, bt, c);
    cuda::mma_m16n8k16_bf16(dp, a, bp, c);
    for (int i = 0; i < 4; ++i) {
      const int at = (i < 2 ? group : group + 8) * 16 + 8 * nb + in_group * 2 + (i & 1);
      D_trans[at] = dt[i];
      D_plain[at] = dp[i];
    }
  }
}

// Thread i copies 16-byte chunk i of src to chunk i of two shared buffers with cp.async, in two groups
// (the second zero-filled past chunk 24), waits for `waits` of the groups (0, 1 or 2: cp_async_wait<2, 1
// or 0>), and writes both buffers back to out [2][32 chunks] after a barrier.
__global__ void cp_async_kernel(const uint32_t* src, int waits, uint32_t* out) {
  uint32_t* first = reinterpret_cast<uint32_t*>(test_smem);
  uint32_t* second = first + 4 * 32;
  const int i = threadIdx.x;
  cuda::cp_async16(first + 4 * i, src + 4 * i, 16);
  cuda::cp_async_commit();
  cuda::cp_async16(second + 4 * i, src + 4 * i, i < 24 ? 16 : 0);
  cuda::cp_async_commit();
  if (waits == 2) cuda::cp_async_wait<0>();
  if (waits == 1) cuda::cp_async_wait<1>();
  __syncthreads();
  for (int w = 0; w < 4; ++w) out[4 * i + w] = first[4 * i + w], out[128 + 4 * i + w] = second[4 * i + w];
}

// A lane whose ldmatrix row address is not 16-byte aligned.
__global__ void ldmatrix_misaligned_kernel() {
  uint32_t r[4];
  cuda::ldmatrix_x4<false>(r, reinterpret_cast<uint16_t*>(test_smem) + (threadIdx.x == 5 ? 1 : 8 * threadIdx.x));
}

// Only the first half of the warp reaches the instruction.
__global__ void mma_divergent_kernel(float* D) {
  const uint32_t a[4] = {}, b[2] = {};
  const float c[4] = {};
  float d[4];
  if (threadIdx.x < 16) cuda::mma_m16n8k16_bf16(d, a, b, c);
  D[threadIdx.x] = 0;
}

void run(const char* name, unsigned grid, unsigned block, size_t smem, std::function<void()> body) {
  simt::launch(name, {grid, 1, 1}, {block, 1, 1}, smem, test_smem, sizeof test_smem, std::move(body));
}

}  // namespace

TEST_CASE("the emulator: shuffles, block reductions, barriers and shared memory behave as on a GPU") {
  std::vector<double> sums(2 * 64);
  run("warp_sum_kernel", 2, 64, 0, [&] { warp_sum_kernel(sums.data()); });
  for (unsigned t = 0; t < sums.size(); ++t) {
    const unsigned first = t % 64 / 32 * 32 + 1;  // the warp's lanes hold first .. first + 31
    CHECK(sums[t] == 32.0 * first + 31 * 32 / 2);
  }
  for (unsigned threads : {32u, 96u, 256u, 1024u}) {
    float total = 0;
    run("block_sum_kernel", 1, threads, 0, [&] { block_sum_kernel(&total); });
    CHECK(total == static_cast<float>(threads) * (threads + 1) / 2);
  }
  std::vector<int> got(64);
  run("neighbour_kernel", 1, 64, 65, [&] { neighbour_kernel(1, true, got.data()); });
  for (int t = 0; t < 64; ++t) CHECK(got[t] == (t < 63 ? t + 1 : 0xFF));  // byte 64 was never written
}

TEST_CASE("the emulated mma.m16n8k16 (bf16 in, float32 out) equals a plain matrix product, per warp") {
  // Values already bfloat16, so the products are exact in float32 and only the order of the sums differs.
  Rng rng(3);
  const int warps = 2;
  std::vector<float> A(warps * 256), B(warps * 128), C(warps * 128), D(warps * 128, NAN);
  for (auto* m : {&A, &B, &C})
    for (float& x : *m) x = bf16_to_float(bf16_from_float(static_cast<float>(rng.uniform(-2, 2))));
  run("mma_tile_kernel", 1, 32 * warps, 0, [&] { mma_tile_kernel(A.data(), B.data(), C.data(), D.data()); });
  for (int w = 0; w < warps; ++w)
    for (int r = 0; r < 16; ++r)
      for (int n = 0; n < 8; ++n) {
        double want = C[w * 128 + r * 8 + n];
        for (int k = 0; k < 16; ++k) want += double(A[w * 256 + r * 16 + k]) * B[w * 128 + k * 8 + n];
        CAPTURE(w);
        CAPTURE(r);
        CAPTURE(n);
        CHECK(D[w * 128 + r * 8 + n] == doctest::Approx(want).epsilon(1e-6));
      }
  // bf16x2 packing: rounding to nearest even, the lower element in the lower half.
  CHECK(bf16x2(1.0f, -2.0f) == 0xc0003f80u);
  CHECK(bf16_from_float(1.00390625f) == 0x3f80u);  // halfway between 1 and 1 + 2^-7: to the even one
  CHECK(bf16_from_float(1.01171875f) == 0x3f82u);  // halfway between 1 + 2^-7 and 1 + 2^-6: up to the even one
  CHECK(std::isnan(bf16_to_float(bf16_from_float(NAN))));
}

TEST_CASE("the emulated ldmatrix.x4, plain and transposed, loads mma's B fragments of a shared tile") {
  Rng rng(4);
  std::vector<float> A(256), B(256), Dt(256, NAN), Dp(256, NAN);
  for (auto* m : {&A, &B})
    for (float& x : *m) x = bf16_to_float(bf16_from_float(static_cast<float>(rng.uniform(-2, 2))));
  run("ldmatrix_kernel", 1, 32, 2 * 16 * 24 * 2, [&] { ldmatrix_kernel(A.data(), B.data(), Dt.data(), Dp.data()); });
  for (int r = 0; r < 16; ++r)
    for (int n = 0; n < 16; ++n) {
      double want = 0;
      for (int k = 0; k < 16; ++k) want += double(A[r * 16 + k]) * B[k * 16 + n];
      CAPTURE(r);
      CAPTURE(n);
      CHECK(Dt[r * 16 + n] == doctest::Approx(want).epsilon(1e-6));
      CHECK(Dp[r * 16 + n] == doctest::Approx(want).epsilon(1e-6));
    }
  CHECK_THROWS_WITH_AS(run("ldmatrix_misaligned_kernel", 1, 32, 512, [] { ldmatrix_misaligned_kernel(); }),
                       doctest::Contains("lane 5 is not 16-byte aligned"), simt::Error);
}

TEST_CASE("the emulated cp.async copies when a wait lets its group complete, zero-filling past src_bytes") {
  std::vector<uint32_t> src(128);
  for (uint32_t i = 0; i < 128; ++i) src[i] = 1000 + i;
  for (int waits : {0, 1, 2}) {
    CAPTURE(waits);
    std::vector<uint32_t> out(256);
    run("cp_async_kernel", 1, 32, 1024, [&] { cp_async_kernel(src.data(), waits, out.data()); });
    for (uint32_t i = 0; i < 128; ++i) {
      CHECK(out[i] == (waits >= 1 ? src[i] : 0xFFFFFFFFu));  // not waited for: the launch's fill
      CHECK(out[128 + i] == (waits == 2 ? (i < 96 ? src[i] : 0u) : 0xFFFFFFFFu));
    }
  }
}

TEST_CASE("the emulator catches a barrier in divergent code, a missing barrier and a shared-memory overrun") {
  std::vector<float> d(32);
  CHECK_THROWS_WITH_AS(run("mma_divergent_kernel", 1, 32, 0, [&] { mma_divergent_kernel(d.data()); }),
                       doctest::Contains("can never go on"), simt::Error);
  CHECK_THROWS_WITH_AS(run("divergent_sync_kernel", 1, 64, 0, [] { divergent_sync_kernel(); }),
                       doctest::Contains("can never go on"), simt::Error);
  // Without the barrier, thread t reads byte t + 1 before thread t + 1 has run: the fill pattern, not t + 1.
  std::vector<int> got(64);
  run("neighbour_kernel", 1, 64, 65, [&] { neighbour_kernel(1, false, got.data()); });
  CHECK(got[0] == 0xFF);
  // 64 threads write bytes 0..63 of a launch that asked for 32.
  CHECK_THROWS_WITH_AS(run("neighbour_kernel", 1, 64, 32, [&] { neighbour_kernel(0, true, got.data()); }),
                       doctest::Contains("wrote shared memory byte 32"), simt::Error);
  CHECK_THROWS_WITH_AS(run("neighbour_kernel", 1, 48, 0, [&] { neighbour_kernel(0, true, got.data()); }),
                       doctest::Contains("multiples of 32"), simt::Error);
}

// ---- the attention kernels: what they refuse (the attention case table runs them against the CPU in
// test_op_cases_emulated) ----

TEST_CASE("emulated cuda attention refuses what its kernels cannot serve") {
  Rng rng(8);
  AttentionOptions p;
  p.alpha.assign(1, 0.0);
  p.C = 4;
  Tensor q = random({1, 1, 4, 129}, rng, DType::F32), o = Tensor::zeros({1, 1, 4, 129}), lse = Tensor::zeros({1, 1, 4});
  CHECK_THROWS_WITH_AS(cuda::attn::attention_forward<float>(q, q, q, Tensor(), p, o, lse, attn_launch()),
                       doctest::Contains("head widths up to 128"), Error);
  p.alpha.assign(65, 0.0);
  Tensor q65 = random({1, 65, 4, 8}, rng, DType::F32), o65 = Tensor::zeros({1, 65, 4, 8}),
         lse65 = Tensor::zeros({1, 65, 4});
  CHECK_THROWS_WITH_AS(cuda::attn::attention_forward<float>(q65, q65, q65, Tensor(), p, o65, lse65, attn_launch()),
                       doctest::Contains("up to 64 heads"), Error);
}
