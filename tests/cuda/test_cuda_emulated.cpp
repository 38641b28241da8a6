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
