// The CUDA backend against the CPU backend: every op runs the same graph on both devices, and the
// outputs and the gradients of every input that requires grad must agree, in float32 and float64.
// Tolerance: |gpu - cpu| <= tol * (1 + |cpu|) per entry, tol = 1e-9 in float64 and 2e-4 in float32
// (5e-4 for attention and whole models, whose long sums round differently: tiles, block reductions,
// cuBLAS's own blocking). Dropout masks must match exactly. The fused attention is also held to the
// literal reference on the GPU itself. The fused Adam update gives the CPU's numbers, and so do the
// whole-model cases of model_cases.h (training, evaluation, attention maps), which the emulator also runs.
//
// Without a GPU (a build without CUDA, or cudaGetDeviceCount failing or reporting 0 devices) every test
// case is marked skipped at start-up (doctest::skip) and one SKIPPED line gives the reason; ctest
// reports the test as skipped through SKIP_REGULAR_EXPRESSION (tests/cuda/CMakeLists.txt). With
// LASGRAD_REQUIRE_GPU=1 (tools/gpu_check.sh sets it) the missing GPU is a failure instead.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "engine/attention.h"
#include "tests/engine/attention_cases.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/rng.h"
#ifdef LASGRAD_HAVE_CUDA
#include "engine/cuda/cuda_backend.h"
#endif
#include "tests/cuda/model_cases.h"
#include "tests/engine/op_cases.h"
#include "train/optim.h"

using namespace lasgrad;

namespace {

// Decided once, before the first test case registers; prints the reason when skipping.
bool gpu_absent() {
  static const bool absent = [] {
    std::string reason;
    if (device_available(Device::CUDA, &reason)) return false;
    // On the GPU machine a skip would pass silently (an old driver, a missing device): refuse it there.
    const char* require = std::getenv("LASGRAD_REQUIRE_GPU");
    if (require && std::string(require) == "1") {
      std::printf("[test_cuda] FAILED: LASGRAD_REQUIRE_GPU=1, but the GPU cannot be used: %s\n", reason.c_str());
      std::fflush(stdout);
      std::exit(1);
    }
    std::printf("[test_cuda] SKIPPED: every GPU test case is skipped: %s\n", reason.c_str());
    std::fflush(stdout);
    return true;
  }();
  return absent;
}

// clang-format would read `name * doctest` as a pointer declaration.
// clang-format off
#define GPU_CASE(name) TEST_CASE(name * doctest::skip(gpu_absent()))
// clang-format on

constexpr double kTol64 = 1e-9, kTol32 = 2e-4, kTolLong32 = 5e-4;
double tol_of(DType dt, bool long_sums = false) { return dt == DType::F64 ? kTol64 : long_sums ? kTolLong32 : kTol32; }

Tensor rnd(const Shape& shape, Rng& rng, DType dt, double lo = -1, double hi = 1, bool grad = true) {
  std::vector<double> v(static_cast<size_t>(numel_of(shape)));
  for (double& x : v) x = rng.uniform(lo, hi);
  Tensor t = Tensor::from(v, shape, dt);
  if (grad) t.set_requires_grad(true);
  return t;
}

// One CHECK per tensor, reporting the worst entry.
void expect_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  REQUIRE_MESSAGE(got.shape() == want.shape(),
                  what << ": shape " << shape_str(got.shape()) << " vs " << shape_str(want.shape()));
  std::vector<double> g = got.to_doubles(), w = want.to_doubles();
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double e = std::isnan(g[i]) != std::isnan(w[i]) ? INFINITY
                     : (std::isinf(w[i]) && g[i] == w[i]) || (std::isnan(w[i]) && std::isnan(g[i]))
                         ? 0.0
                         : std::abs(g[i] - w[i]) / (1 + std::abs(w[i]));
    if (e > worst) worst = e, at = i;
  }
  INFO(what << ": worst entry " << at << " gpu " << (g.empty() ? 0 : g[at]) << " cpu " << (w.empty() ? 0 : w[at])
            << " (error " << worst << ", tolerance " << tol << ")");
  CHECK(worst <= tol);
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Runs f on fresh copies of `inputs` on the CPU and on the GPU; compares the outputs, then backpropagates
// the same random upstream gradient on both devices and compares the gradients of every input that
// requires grad. Fresh leaves on both sides: a caller that passes one tensor to several calls must not
// see one call's gradients accumulate into the next on one device only.
void compare(const std::string& name, const std::vector<Tensor>& inputs, double tol, const Fn& f) {
  std::vector<Tensor> cpu, gpu;
  for (const Tensor& x : inputs) {
    cpu.push_back(x.detach().clone());
    gpu.push_back(x.detach().to(Device::CUDA));
    if (x.requires_grad()) cpu.back().set_requires_grad(true), gpu.back().set_requires_grad(true);
  }
  Tensor oc = f(cpu), og = f(gpu);
  REQUIRE(og.device() == Device::CUDA);
  expect_close(og, oc, tol, name + " forward");
  if (!oc.requires_grad()) return;
  Rng rng(99);
  Tensor w = rnd(oc.shape(), rng, oc.dtype(), -1, 1, false);
  sum(mul(oc, w)).backward();
  sum(mul(og, w.to(Device::CUDA))).backward();
  for (size_t i = 0; i < cpu.size(); ++i)
    if (cpu[i].requires_grad()) {
      REQUIRE_MESSAGE(gpu[i].grad().defined(), name << ": no gpu gradient for input " << i);
      expect_close(gpu[i].grad(), cpu[i].grad(), tol, name + " gradient of input " + std::to_string(i));
    }
}

const DType kDtypes[] = {DType::F32, DType::F64};

}  // namespace

// The op-case table (tests/engine/op_cases.h) in its GPU mode, at 20 times the emulated mode's
// tolerances (1e-10 and 1e-5 there; kTol32 here): cuBLAS and the GPU's reductions sum in other orders.
GPU_CASE("op cases: the gpu equals the cpu, output and gradients") {
  for (const test::OpCase& c : test::op_cases())
    for (DType dt : {DType::F32, DType::F64, DType::BF16})
      if (dt != DType::BF16 || c.bf16) {
        CAPTURE(c.name);
        test::check_case_on_device(c, dt, Device::CUDA, 20);
      }
}

GPU_CASE("memory: round trips, fill, convert, clone, copy_from; the allocator reuses freed blocks") {
  std::vector<float> v = {1.5f, -2.f, 3.25f, 0.f, 7.f, -0.5f};
  Tensor g = Tensor::from(v, {2, 3}, DType::F32, Device::CUDA);
  CHECK(g.device() == Device::CUDA);
  CHECK(g.to_floats() == v);
  CHECK(Tensor::full({3, 2}, 2.5, DType::F64, Device::CUDA).to_doubles() == std::vector<double>(6, 2.5));
  CHECK(Tensor::full({4}, 7, DType::I32, Device::CUDA).to_doubles() == std::vector<double>(4, 7));
  CHECK(g.to(DType::I32).to_doubles() == std::vector<double>{1, -2, 3, 0, 7, 0});  // truncation, as on the CPU
  CHECK(g.to(DType::F64).to_floats() == v);
  Tensor c = g.clone();
  CHECK(c.raw() != g.raw());
  CHECK(c.to_floats() == v);
  Tensor z = Tensor::zeros({2, 3}, DType::F32, Device::CUDA);
  z.copy_from(Tensor::from(v, {2, 3}));  // from the CPU
  CHECK(z.to_floats() == v);
#ifdef LASGRAD_HAVE_CUDA
  CudaAllocator& a = cuda_backend_impl().allocator();
  void* first;
  {
    Tensor t = Tensor::empty({1000, 37}, DType::F32, Device::CUDA);
    first = t.raw();
  }
  const size_t hits = a.stats().hits;
  Tensor t = Tensor::empty({1000, 37}, DType::F32, Device::CUDA);
  CHECK(t.raw() == first);
  CHECK(a.stats().hits == hits + 1);
#endif
}

GPU_CASE("unary ops and their gradients") {
  for (DType dt : kDtypes) {
    Rng rng(1);
    const double tol = tol_of(dt);
    compare("neg", {rnd({5, 7}, rng, dt)}, tol, [](auto& x) { return neg(x[0]); });
    compare("exp", {rnd({5, 7}, rng, dt)}, tol, [](auto& x) { return exp(x[0]); });
    compare("log", {rnd({5, 7}, rng, dt, 0.1, 3)}, tol, [](auto& x) { return log(x[0]); });
    compare("sqrt", {rnd({5, 7}, rng, dt, 0.1, 3)}, tol, [](auto& x) { return sqrt(x[0]); });
    compare("tanh", {rnd({5, 7}, rng, dt, -3, 3)}, tol, [](auto& x) { return tanh(x[0]); });
    compare("relu", {rnd({5, 7}, rng, dt)}, tol, [](auto& x) { return relu(x[0]); });
    compare("gelu erf", {rnd({5, 7}, rng, dt, -4, 4)}, tol, [](auto& x) { return gelu(x[0], Gelu::Erf); });
    compare("gelu tanh", {rnd({5, 7}, rng, dt, -4, 4)}, tol, [](auto& x) { return gelu(x[0], Gelu::Tanh); });
    compare("scalar ops", {rnd({3, 4}, rng, dt, 0, 0.5)}, tol,
            [](auto& x) { return rdiv(2.0, rsub(3.0, mul(add(x[0], 0.5), 1.5))); });
    compare("large", {rnd({1 << 20}, rng, dt)}, tol, [](auto& x) { return gelu(x[0]); });
  }
}

GPU_CASE("binary ops with broadcasting, and masked_fill") {
  for (DType dt : kDtypes) {
    Rng rng(2);
    const double tol = tol_of(dt);
    compare("add same", {rnd({4, 5}, rng, dt), rnd({4, 5}, rng, dt)}, tol, [](auto& x) { return add(x[0], x[1]); });
    compare("bias", {rnd({6, 5}, rng, dt), rnd({5}, rng, dt)}, tol, [](auto& x) { return add(x[0], x[1]); });
    compare("outer", {rnd({3, 1, 5}, rng, dt), rnd({1, 4, 1}, rng, dt)}, tol, [](auto& x) { return mul(x[0], x[1]); });
    compare("middle", {rnd({2, 3, 4}, rng, dt), rnd({2, 1, 4}, rng, dt)}, tol, [](auto& x) { return sub(x[0], x[1]); });
    compare("scalar tensor", {rnd({}, rng, dt, 1, 2), rnd({2, 3}, rng, dt, 1, 2)}, tol,
            [](auto& x) { return div(x[0], x[1]); });
    compare("rank 6", {rnd({2, 1, 3, 1, 2, 1}, rng, dt), rnd({1, 2, 1, 3, 1, 2}, rng, dt)}, tol,
            [](auto& x) { return mul(x[0], x[1]); });
    Tensor mask = Tensor::from(std::vector<int32_t>{1, 0, 0, 1, 1}, {1, 5});
    compare("masked_fill", {rnd({3, 5}, rng, dt)}, tol, [&](auto& x) {
      return masked_fill(x[0], x[0].device() == Device::CPU ? mask : mask.to(Device::CUDA), -7.0);
    });
  }
}

GPU_CASE("sum and mean over axes, short and long") {
  for (DType dt : kDtypes) {
    Rng rng(3);
    const double tol = tol_of(dt);
    Tensor x = rnd({3, 4, 5, 6}, rng, dt);
    for (std::vector<int> axes : {std::vector<int>{0}, {1}, {3}, {0, 2}, {1, 3}, {0, 1, 2, 3}, {-1, -2}})
      compare("sum axes", {x}, tol, [&](auto& in) { return sum(in[0], axes); });
    compare("mean keepdim", {rnd({7, 9, 2}, rng, dt)}, tol, [](auto& in) { return mean(in[0], {1}, true); });
    compare("sum all, many slices", {rnd({300001}, rng, dt)}, tol, [](auto& in) { return sum(in[0]); });
    compare("column sums, many slices", {rnd({20000, 3}, rng, dt)}, tol, [](auto& in) { return sum(in[0], {0}); });
    compare("bias gradient shape", {rnd({9, 700, 8}, rng, dt)}, tol, [](auto& in) {
      return sum_to_shape(in[0], {1, 1, 8});
    });
    compare("broadcast_to", {rnd({3, 1}, rng, dt)}, tol, [](auto& in) { return broadcast_to(in[0], {4, 3, 5}); });
  }
}

GPU_CASE("matmul: transposes, batches, shared weights") {
  for (DType dt : kDtypes) {
    Rng rng(4);
    const double tol = tol_of(dt);
    compare("plain", {rnd({7, 5}, rng, dt), rnd({5, 3}, rng, dt)}, tol, [](auto& x) { return matmul(x[0], x[1]); });
    compare("trans a", {rnd({5, 7}, rng, dt), rnd({5, 3}, rng, dt)}, tol,
            [](auto& x) { return matmul(x[0], x[1], true); });
    compare("trans b", {rnd({7, 5}, rng, dt), rnd({3, 5}, rng, dt)}, tol,
            [](auto& x) { return matmul(x[0], x[1], false, true); });
    compare("trans both", {rnd({5, 7}, rng, dt), rnd({3, 5}, rng, dt)}, tol,
            [](auto& x) { return matmul(x[0], x[1], true, true); });
    compare("batched", {rnd({2, 3, 7, 5}, rng, dt), rnd({2, 3, 5, 4}, rng, dt)}, tol,
            [](auto& x) { return matmul(x[0], x[1]); });
    compare("shared weight", {rnd({4, 6, 33}, rng, dt), rnd({17, 33}, rng, dt)}, tol,
            [](auto& x) { return matmul(x[0], x[1], false, true); });
    compare("large", {rnd({300, 257}, rng, dt), rnd({257, 129}, rng, dt)}, tol,
            [](auto& x) { return matmul(x[0], x[1]); });
  }
#ifdef LASGRAD_HAVE_CUDA
  Rng rng(5);
  Tensor a = rnd({64, 64}, rng, DType::F32, -1, 1, false), b = rnd({64, 64}, rng, DType::F32, -1, 1, false);
  CudaBackend& be = cuda_backend_impl();
  const bool was = be.tf32();
  be.set_tf32(true);
  Tensor t = matmul(a.to(Device::CUDA), b.to(Device::CUDA));
  be.set_tf32(was);
  expect_close(t, matmul(a, b), 1e-2, "tf32 matmul");  // 10-bit mantissas: close, not equal
#endif
}

GPU_CASE("permute, transpose, slice, concat, split") {
  for (DType dt : kDtypes) {
    Rng rng(6);
    const double tol = tol_of(dt);
    compare("transpose 2d", {rnd({37, 70}, rng, dt)}, tol, [](auto& x) { return transpose(x[0], 0, 1); });
    compare("transpose last two", {rnd({3, 33, 65}, rng, dt)}, tol, [](auto& x) { return transpose(x[0], -1, -2); });
    compare("heads", {rnd({2, 9, 4, 8}, rng, dt)}, tol, [](auto& x) { return permute(x[0], {0, 2, 1, 3}); });
    compare("general", {rnd({2, 3, 4, 5}, rng, dt)}, tol, [](auto& x) { return permute(x[0], {3, 1, 0, 2}); });
    compare("slice", {rnd({4, 6, 5}, rng, dt)}, tol, [](auto& x) { return slice(x[0], 1, 2, 3); });
    compare("slice first axis", {rnd({4, 6}, rng, dt)}, tol, [](auto& x) { return slice(x[0], 0, 1, 2); });
    compare("concat", {rnd({3, 2, 4}, rng, dt), rnd({3, 5, 4}, rng, dt)}, tol, [](auto& x) {
      return concat({x[0], x[1]}, 1);
    });
    compare("split", {rnd({2, 3, 4}, rng, dt)}, tol, [](auto& x) {
      auto p = split(x[0], 2, {1, 3});
      return mul(p[1], 2.0);
    });
  }
}

GPU_CASE("softmax (masked rows give zeros), cross-entropy, layer norm") {
  for (DType dt : kDtypes) {
    Rng rng(7);
    const double tol = tol_of(dt);
    compare("softmax", {rnd({6, 5}, rng, dt, -3, 3)}, tol, [](auto& x) { return softmax(x[0]); });
    compare("softmax long rows", {rnd({3, 3000}, rng, dt, -3, 3)}, tol, [](auto& x) { return softmax(x[0]); });
    std::vector<double> m(4 * 5, 0.0);
    for (int j = 0; j < 5; ++j) m[5 + j] = -INFINITY;  // row 1 fully masked
    m[2] = -INFINITY;
    Tensor mask = Tensor::from(m, {4, 5}, dt);
    compare("softmax masked", {rnd({4, 5}, rng, dt)}, tol,
            [&](auto& x) { return softmax(x[0], x[0].device() == Device::CPU ? mask : mask.to(Device::CUDA)); });
    Tensor t = Tensor::from(std::vector<int32_t>{2, -100, 0, 4, 1}, {5});
    compare("cross_entropy", {rnd({5, 5}, rng, dt, -4, 4)}, tol,
            [&](auto& x) { return cross_entropy(x[0], x[0].device() == Device::CPU ? t : t.to(Device::CUDA)); });
    compare("cross_entropy many classes", {rnd({2, 1000}, rng, dt, -4, 4)}, tol, [&](auto& x) {
      Tensor tt = Tensor::from(std::vector<int32_t>{700, 3}, {2}, x[0].device());
      return cross_entropy(x[0], tt);
    });
    compare("layer_norm", {rnd({2, 7, 33}, rng, dt, -2, 3), rnd({33}, rng, dt), rnd({33}, rng, dt)}, tol,
            [](auto& x) { return layer_norm(x[0], x[1], x[2]); });
    compare("layer_norm many rows", {rnd({1000, 16}, rng, dt, -2, 3), rnd({16}, rng, dt), rnd({16}, rng, dt)}, tol,
            [](auto& x) { return layer_norm(x[0], x[1], x[2]); });
  }
  Tensor logits = Tensor::zeros({3, 4}, DType::F32, Device::CUDA);
  Tensor bad = Tensor::from(std::vector<int32_t>{1, 4, 0}, {3}, Device::CUDA);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, bad), doctest::Contains("target 4 at row 1"), Error);
  // The device stays usable after the error.
  CHECK(cross_entropy(logits, Tensor::from(std::vector<int32_t>{1, 3, 0}, {3}, Device::CUDA)).item() ==
        doctest::Approx(std::log(4.0)));
}

GPU_CASE("embedding (bad ids throw), dropout masks equal the CPU's exactly, sequence pooling") {
  for (DType dt : kDtypes) {
    Rng rng(8);
    const double tol = tol_of(dt);
    Tensor ids = Tensor::from(std::vector<int32_t>{3, 0, 3, 1, 3, 2}, {2, 3});
    compare("embedding", {rnd({5, 6}, rng, dt)}, tol,
            [&](auto& x) { return embedding(x[0], x[0].device() == Device::CPU ? ids : ids.to(Device::CUDA)); });
    for (double p : {0.1, 0.5, 0.9}) {
      Tensor x = Tensor::full({1000, 3}, 1.0, dt);
      Tensor c = dropout(x, p, 1234, true), g = dropout(x.to(Device::CUDA), p, 1234, true);
      CHECK(g.to_doubles() == c.to_doubles());
    }
    for (int64_t P : {1, 3, 5, 9})
      compare("avg_pool_seq", {rnd({2, 11, 6}, rng, dt)}, tol, [P](auto& x) { return avg_pool_seq(x[0], P); });
    compare("avg_pool_seq window > L", {rnd({3, 2, 4}, rng, dt)}, tol, [](auto& x) { return avg_pool_seq(x[0], 7); });
  }
  Tensor table = Tensor::zeros({4, 2}, DType::F32, Device::CUDA);
  CHECK_THROWS_WITH_AS(embedding(table, Tensor::from(std::vector<int32_t>{0, 1, 9}, {3}, Device::CUDA)),
                       doctest::Contains("id 9 at position 2"), Error);
}

// The attention case table (tests/engine/attention_cases.h) in its GPU mode: output and gradients
// against the CPU, at the tolerance of long sums.
GPU_CASE("attention cases: the gpu equals the cpu, output and gradients") {
  for (const test::AttentionCase& c : test::attention_cases())
    for (DType dt : {DType::F32, DType::F64, DType::BF16})
      test::check_attention_on_device(c, dt, Device::CUDA, dt == DType::BF16 ? test::kTolBf16 : tol_of(dt, true));
  Tensor q = Tensor::zeros({1, 1, 4, 129}, DType::F32, Device::CUDA);
  CHECK_THROWS_WITH_AS(las_attention(q, q, q, {.alpha = {0.0}}), doctest::Contains("head widths up to 128"), Error);
}

// Small enough for compute-sanitizer's racecheck and synccheck (tools/gpu_check.sh), which slow a kernel
// down by orders of magnitude: the table's cases of at most 70 positions, float32 and bf16 (the
// tensor-core forward), forward and backward.
GPU_CASE("sanitizer attention: the attention cases of at most 70 positions") {
  for (const test::AttentionCase& c : test::attention_cases())
    if (c.L <= 70) {
      test::check_attention_on_device(c, DType::F32, Device::CUDA, kTolLong32);
      test::check_attention_on_device(c, DType::BF16, Device::CUDA, test::kTolBf16);
    }
}

// The fused op on the GPU against the literal reference on the GPU; and each case's options at
// L = 2048 (the ListOps length), float32.
GPU_CASE("attention cases: the fused op equals the literal reference on the gpu, and at L = 2048") {
  auto fused = [](const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& o, const Tensor& len) {
    return las_attention(q, k, v, o, len);
  };
  auto reference = [](const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& o, const Tensor& len) {
    return las_attention_reference(q, k, v, o, len);
  };
  for (const test::AttentionCase& c : test::attention_cases())
    for (DType dt : kDtypes) {
      const std::vector<Tensor> got = test::attention_run(c, dt, Device::CUDA, fused),
                                want = test::attention_run(c, dt, Device::CUDA, reference);
      for (size_t i = 0; i < got.size(); ++i)
        expect_close(got[i], want[i], tol_of(dt, true), "fused vs reference on the gpu: " + c.name);
    }
  for (test::AttentionCase c : test::attention_cases()) {
    c.B = 1, c.H = 2, c.L = 2048, c.dh = 64, c.lengths.clear();
    test::check_attention_on_device(c, DType::F32, Device::CUDA, kTolLong32);
  }
}

GPU_CASE("model cases: training, evaluation and attention on the gpu equal the cpu") {
  for (const test::ModelCase& c : test::model_cases()) {
    CAPTURE(test::case_name(c));
    test::check_model_case_on_device(c, Device::CUDA);
  }
}

GPU_CASE("the Adam update equals the CPU's over three steps, AdamW and Adam with L2") {
  Rng rng(21);
  for (DType dt : {DType::F32, DType::F64})
    for (bool decoupled : {true, false}) {
      // 300000 entries: 1172 blocks of the grid-stride kernel.
      const Shape shape{300, 1000};
      Tensor cp = rnd(shape, rng, dt, -2, 2, false), cm = Tensor::zeros(shape, dt), cv = Tensor::zeros(shape, dt);
      Tensor gp = cp.to(Device::CUDA), gm = cm.to(Device::CUDA), gv = cv.to(Device::CUDA);
      for (int64_t t = 1; t <= 3; ++t) {
        const Tensor g = rnd(shape, rng, dt, -1, 1, false), gg = g.to(Device::CUDA);
        const AdamStep s{1e-2 * double(t), 0.9, 0.999, 1e-8, 0.05, decoupled, t, 0.5};
        train::adam_update(s, cp, g, cm, cv);
        train::adam_update(s, gp, gg, gm, gv);
        const std::string what =
            std::string(decoupled ? "adamw" : "adam") + " step " + std::to_string(t) + " " + dtype_name(dt);
        expect_close(gp, cp, tol_of(dt), what + " p");
        expect_close(gm, cm, tol_of(dt), what + " m");
        expect_close(gv, cv, tol_of(dt), what + " v");
      }
    }
  Tensor p = Tensor::zeros({4}), g = Tensor::zeros({4}, DType::F32, Device::CUDA);
  Tensor m = Tensor::zeros({4}), v = Tensor::zeros({4});
  CHECK_THROWS_WITH_AS(train::adam_update({1e-3, 0.9, 0.999, 1e-8, 0, true, 1}, p, g, m, v),
                       doctest::Contains("devices differ"), Error);
}
