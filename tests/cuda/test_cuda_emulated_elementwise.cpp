// The CUDA backend's element-wise and reduction kernels (engine/cuda/elementwise_kernels.cuh,
// reduce_kernels.cuh) on the CPU emulator of CUDA's thread model against the CPU backend: every unary op
// and derivative, broadcasting binary ops and masked_fill over coalescing shapes, the dropout mask (bit
// for bit: both draw counter_uniform(seed, i)), the Adam update, fill and conversion, and sum_to through
// its row and column kernels, one pass and sliced.
//
// Tolerance: |emulated - cpu| <= tol (1 + |cpu|) per entry, tol = 1e-12 in float64 and 1e-5 in float32
// (libm and the CPU kernels' vectorised math differ in the last bits; sums add in other orders).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "tests/cuda/emulated.h"

#include "engine/cuda/elementwise_kernels.cuh"
#include "engine/cuda/reduce_kernels.cuh"

using namespace lasgrad;
using namespace lasgrad::emulated;

namespace {

const simt::Launch kLaunch{nullptr, 0};  // no dynamic shared memory
constexpr DType kDtypes[] = {DType::F32, DType::F64};

double tol_of(DType dt) { return dt == DType::F64 ? 1e-12 : 1e-5; }

// Host memory standing in for the device allocator of sum_to's scratch; counts what is still out.
struct HostMemory {
  int64_t live = 0;
  void* allocate(size_t bytes) {
    ++live;
    return std::malloc(bytes);
  }
  void deallocate(void* p, size_t) {
    --live;
    std::free(p);
  }
};

}  // namespace

TEST_CASE("emulated cuda unary ops and their derivatives equal the CPU's") {
  Rng rng(11);
  const UnaryOp ops[] = {UnaryOp::Neg,       UnaryOp::Exp,       UnaryOp::Log,        UnaryOp::Sqrt,
                         UnaryOp::Tanh,      UnaryOp::Relu,      UnaryOp::GeluErf,    UnaryOp::GeluTanh,
                         UnaryOp::AddScalar, UnaryOp::MulScalar, UnaryOp::RsubScalar, UnaryOp::RdivScalar};
  for (DType dt : kDtypes) {
    // 600 entries: three blocks, the last one partly idle. Positive inputs for log and sqrt.
    const Tensor x = random({20, 30}, rng, dt, -3, 3), pos = random({20, 30}, rng, dt, 0.1, 3),
                 dy = random({20, 30}, rng, dt);
    for (UnaryOp op : ops) {
      const Tensor& in = op == UnaryOp::Log || op == UnaryOp::Sqrt || op == UnaryOp::RdivScalar ? pos : x;
      Tensor got = unwritten({20, 30}, dt), want = unwritten({20, 30}, dt);
      cuda::elementwise::unary(op, in, 0.7, got, kLaunch);
      cpu_backend().unary(op, in, 0.7, want);
      expect_close(got, want, tol_of(dt), "unary op " + std::to_string(int(op)) + " " + dtype_name(dt));
      if (op == UnaryOp::Tanh || op == UnaryOp::Relu || op == UnaryOp::GeluErf || op == UnaryOp::GeluTanh) {
        Tensor dgot = unwritten({20, 30}, dt), dwant = unwritten({20, 30}, dt);
        cuda::elementwise::unary_grad(op, in, dy, dgot, kLaunch);
        cpu_backend().unary_grad(op, in, dy, dwant);
        expect_close(dgot, dwant, tol_of(dt), "unary_grad op " + std::to_string(int(op)) + " " + dtype_name(dt));
      }
    }
  }
  Tensor x = Tensor::zeros({3}), out = Tensor::zeros({3});
  CHECK_THROWS_WITH_AS(cuda::elementwise::unary_grad(UnaryOp::Exp, x, x, out, kLaunch),
                       doctest::Contains("tanh, relu and gelu only"), Error);
}

TEST_CASE("emulated cuda broadcasting binary ops and masked_fill equal the CPU's") {
  Rng rng(12);
  struct Pair {
    Shape a, b, out;
  };
  // Same shapes; a row and a column broadcast; both operands broadcast on different axes; size-1 axes
  // in the output; a scalar. Operands come padded to the output's rank (the backend's contract).
  const Pair pairs[] = {{{4, 70}, {4, 70}, {4, 70}},          {{3, 5, 40}, {1, 1, 40}, {3, 5, 40}},
                        {{3, 5, 40}, {3, 5, 1}, {3, 5, 40}},  {{2, 1, 7, 9}, {1, 6, 7, 1}, {2, 6, 7, 9}},
                        {{1, 30, 1}, {1, 30, 1}, {1, 30, 1}}, {{5, 33}, {1, 1}, {5, 33}}};
  for (DType dt : kDtypes)
    for (const Pair& p : pairs) {
      const Tensor a = random(p.a, rng, dt), b = random(p.b, rng, dt, 0.5, 2);
      for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div}) {
        Tensor got = unwritten(p.out, dt), want = unwritten(p.out, dt);
        cuda::elementwise::binary(op, a, b, got, kLaunch);
        cpu_backend().binary(op, a, b, want);
        expect_close(got, want, tol_of(dt),
                     "binary op " + std::to_string(int(op)) + " " + shape_str(p.a) + " " + shape_str(p.b));
      }
      std::vector<int32_t> m(static_cast<size_t>(numel_of(p.b)));
      for (size_t i = 0; i < m.size(); ++i) m[i] = static_cast<int32_t>(i % 3 == 0);
      const Tensor mask = Tensor::from(m, p.b);
      Tensor got = unwritten(p.out, dt), want = unwritten(p.out, dt);
      cuda::elementwise::masked_fill(a, mask, -1e9, got, kLaunch);
      cpu_backend().masked_fill(a, mask, -1e9, want);
      CHECK(got.to_doubles() == want.to_doubles());
    }
}

TEST_CASE("emulated cuda dropout masks, fill and conversion equal the CPU's bit for bit") {
  for (DType dt : kDtypes)
    for (double p : {0.0, 0.1, 0.5, 1.0}) {
      Tensor got = unwritten({7, 111}, dt), want = unwritten({7, 111}, dt);
      cuda::elementwise::dropout_mask(1234, p, got, kLaunch);
      cpu_backend().dropout_mask(1234, p, want);
      INFO("dropout p " << p << " " << std::string(dtype_name(dt)));
      CHECK(got.to_doubles() == want.to_doubles());
    }
  const DType all[] = {DType::F32, DType::F64, DType::I32, DType::BF16};
  for (DType dt : all) {
    Tensor t = Tensor::zeros({3, 100}, dt);
    cuda::elementwise::fill(t, 7.0, kLaunch);
    CHECK(t.to_doubles() == std::vector<double>(300, 7.0));
  }
  Rng rng(13);
  const Tensor x = random({5, 60}, rng, DType::F64, -50, 50);
  for (DType from : all)
    for (DType to : all) {
      Tensor src = Tensor::zeros({5, 60}, from);
      cpu_backend().convert(x, src);
      Tensor got = Tensor::full({5, 60}, -7, to), want = Tensor::zeros({5, 60}, to);
      cuda::elementwise::convert(src, got, kLaunch);
      cpu_backend().convert(src, want);
      INFO("convert " << std::string(dtype_name(from)) << " -> " << std::string(dtype_name(to)));
      CHECK(got.to_doubles() == want.to_doubles());
    }
}

TEST_CASE("emulated cuda Adam update equals the CPU's over three steps, AdamW and Adam with L2") {
  Rng rng(15);
  for (DType dt : kDtypes)
    for (bool decoupled : {true, false}) {
      // 1000 entries: four blocks, the last one partly idle. p, m, v start from the same values on both.
      const Tensor p0 = random({1000}, rng, dt, -2, 2);
      Tensor p = p0.clone(), m = Tensor::zeros({1000}, dt), v = Tensor::zeros({1000}, dt);
      Tensor cp = p0.clone(), cm = Tensor::zeros({1000}, dt), cv = Tensor::zeros({1000}, dt);
      for (int64_t t = 1; t <= 3; ++t) {
        const Tensor g = random({1000}, rng, dt, -1, 1);
        const AdamStep s{1e-2 * double(t), 0.9, 0.999, 1e-8, 0.05, decoupled, t, 0.5};
        cuda::elementwise::adam(s, p, g, m, v, kLaunch);
        cpu_backend().adam(s, cp, g, cm, cv);
        const std::string what =
            std::string(decoupled ? "adamw" : "adam") + " step " + std::to_string(t) + " " + dtype_name(dt);
        expect_close(p, cp, tol_of(dt), what + " p");
        expect_close(m, cm, tol_of(dt), what + " m");
        expect_close(v, cv, tol_of(dt), what + " v");
      }
      CHECK(p.to_doubles() != p0.to_doubles());  // the steps moved the parameters
    }
}

TEST_CASE("emulated cuda sum_to equals the CPU's: row and column kernels, sliced and in one pass, several steps") {
  Rng rng(14);
  struct Case {
    Shape x, out;
  };
  // [1, 10000] -> [1, 1]: three row slices, then their sum; [1000, 3] -> [1, 3]: 63 column slices of 16
  // rows, then one pass; [4, 6, 5] -> [1, 6, 1]: two steps; [2, 3] -> [2, 3]: a copy; a scalar out.
  const Case cases[] = {{{1, 10000}, {1, 1}}, {{1000, 3}, {1, 3}},          {{4, 6, 5}, {1, 6, 1}}, {{7, 300}, {7, 1}},
                        {{2, 3}, {2, 3}},     {{3, 4, 5, 6}, {1, 4, 1, 6}}, {{6, 50}, {1, 1}}};
  for (DType dt : kDtypes)
    for (const Case& c : cases) {
      const Tensor x = random(c.x, rng, dt);
      Tensor got = unwritten(c.out, dt), want = unwritten(c.out, dt);
      HostMemory mem;
      cuda::reduce::sum_to(x, got, mem, kLaunch);
      cpu_backend().sum_to(x, want);
      CHECK(mem.live == 0);
      expect_close(got, want, tol_of(dt),
                   "sum_to " + shape_str(c.x) + " -> " + shape_str(c.out) + " " + dtype_name(dt));
    }
}
