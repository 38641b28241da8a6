// The CUDA backend's fused attention kernels, run on the CPU by the emulator of CUDA's thread model
// (simt_emulator.h), against the CPU backend's kernels: the kernels' device code and launch plan
// (engine/cuda/attention_kernels.cuh) are compiled as host C++, so this test runs on every build, with
// or without CUDA or a GPU. It checks what the emulator can see (indexing, tiling, masking, padding,
// shared-memory layout and size, barriers, the backward's algebra); test_cuda checks the same kernels
// on a GPU. The emulator itself is tested first: each fault it exists to catch must be caught.
//
// Tolerance: |emulated - cpu| <= tol (1 + |cpu|) per entry, tol = 1e-12 in float64 and 2e-5 in float32
// (the two kernels sum in different orders; the inputs are O(1)).
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

#include "engine/cuda/attention_kernels.cuh"

using namespace lasgrad;
using namespace lasgrad::emulated;

namespace {

simt::Launch attn_launch() { return {cuda::attn::smem_raw, cuda::attn::kSharedBytes}; }

// ---- the emulator's own checks, on small kernels written for them ----

unsigned char test_smem[256];

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

TEST_CASE("the emulator catches a barrier in divergent code, a missing barrier and a shared-memory overrun") {
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

// ---- the attention kernels against the CPU backend ----

namespace {

struct Case {
  const char* kind;
  bool causal;
  double alpha;  // head h decays at alpha * 0.3^h; 0: softmax
  int64_t chunk;  // 0: L
};

// Forward and backward of one configuration on the emulated GPU kernels and on the CPU backend.
void compare(DType dt, int64_t B, int64_t H, int64_t L, int64_t dh, const Case& c, bool padded, Rng& rng) {
  const std::string name = std::string(c.kind) + " " + dtype_name(dt) + " B " + std::to_string(B) + " H " +
                           std::to_string(H) + " L " + std::to_string(L) + " dh " + std::to_string(dh) +
                           (padded ? " padded" : "");
  AttentionOptions p;
  for (int64_t h = 0; h < H; ++h) p.alpha.push_back(c.alpha * std::pow(0.3, static_cast<double>(h)));
  p.causal = c.causal;
  p.C = c.chunk;
  Tensor lengths;
  if (padded) {  // one full row, one half, one empty (no valid key at all)
    std::vector<int32_t> len;
    for (int64_t b = 0; b < B; ++b) len.push_back(static_cast<int32_t>(b % 3 == 0 ? L : b % 3 == 1 ? (L + 1) / 2 : 0));
    lengths = Tensor::from(len, {B});
  }
  const Shape shape{B, H, L, dh};
  const Tensor q = random(shape, rng, dt), k = random(shape, rng, dt), v = random(shape, rng, dt),
               dout = random(shape, rng, dt);
  Tensor o_cpu = unwritten(shape, dt), lse_cpu = unwritten({B, H, L}, dt);
  cpu_backend().attention(q, k, v, lengths, p, o_cpu, lse_cpu);
  Tensor dq_cpu = unwritten(shape, dt), dk_cpu = unwritten(shape, dt), dv_cpu = unwritten(shape, dt);
  cpu_backend().attention_grad(q, k, v, o_cpu, lse_cpu, dout, lengths, p, dq_cpu, dk_cpu, dv_cpu);

  Tensor o = unwritten(shape, dt), lse = unwritten({B, H, L}, dt);
  Tensor dq = unwritten(shape, dt), dk = unwritten(shape, dt), dv = unwritten(shape, dt);
  dispatch_floating("emulated attention", dt, [&](auto tag) {
    using T = decltype(tag);
    NanScratch scratch;
    cuda::attn::attention_forward<T>(q, k, v, lengths, p, o, lse, attn_launch());
    cuda::attn::attention_backward<T>(q, k, v, o, lse, dout, lengths, p, dq, dk, dv, scratch, attn_launch());
  });
  const double tol = dt == DType::F64 ? 1e-12 : 2e-5;
  expect_close(o, o_cpu, tol, name + ": o");
  expect_close(lse, lse_cpu, tol, name + ": lse");
  expect_close(dq, dq_cpu, tol, name + ": dq");
  expect_close(dk, dk_cpu, tol, name + ": dk");
  expect_close(dv, dv_cpu, tol, name + ": dv");
}

const Case kCases[] = {{"softmax", true, 0.0, 0},
                       {"las", true, 0.5, 0},
                       {"las-chunk", true, 0.5, 37},
                       {"las bidirectional", false, 0.5, 0},
                       {"las-chunk bidirectional", false, 0.5, 50}};

}  // namespace

TEST_CASE("emulated cuda attention equals the CPU's: every kernel instantiation, chunks, padding, empty rows") {
  Rng rng(7);
  // Every (dtype, DH, tile) instantiation: float32 16/64, 32/64, 64/64, 128/32; float64 64/32, 128/32,
  // with dh at an instantiation's width (16, 128) and below it (zero padding of the head dimension).
  struct Width {
    DType dt;
    int64_t dh;
  };
  for (const Width& w : {Width{DType::F32, 16}, Width{DType::F32, 24}, Width{DType::F32, 48}, Width{DType::F32, 100},
                         Width{DType::F64, 16}, Width{DType::F64, 128}})
    for (const Case& c : kCases)
      // L = 40 and 100: partial tiles, one or two of 64 rows, two or four of 32; 1: a single row.
      for (int64_t L : {1, 40, 100}) compare(w.dt, 3, 2, L, w.dh, c, L > 1, rng);
}

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
