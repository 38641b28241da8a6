// las_attention (fused kernel) against las_attention_reference (the spec's steps with L x L matrices),
// forward and the gradients of q, k and v, over the attention case table (tests/engine/attention_cases.h);
// a finite-difference check of the fused op itself with each case's options; the spec's identities;
// input validation.
#include <cmath>
#include <memory>
#include <vector>

#include "engine/attention.h"
#include "engine/backend.h"
#include "tests/engine/attention_cases.h"
#include "tests/engine/helpers.h"
#include "tests/engine/op_cases.h"

using namespace lasgrad;
using lasgrad::test::random;
using In = std::vector<Tensor>;

// The fused op against the reference on case c, output and every gradient, within tol.
static void check_against_reference(const test::AttentionCase& c, DType dt, double tol) {
  auto fused = [](const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& o, const Tensor& len) {
    return las_attention(q, k, v, o, len);
  };
  auto reference = [](const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& o, const Tensor& len) {
    return las_attention_reference(q, k, v, o, len);
  };
  const std::vector<Tensor> got = test::attention_run(c, dt, Device::CPU, fused),
                            want = test::attention_run(c, dt, Device::CPU, reference);
  const char* what[] = {"o", "dq", "dk", "dv"};
  for (int i = 0; i < 4; ++i) {
    INFO(c.name << " " << dtype_name(dt) << ": " << what[i]);
    CHECK(test::attention_error(got[i], want[i]) < tol);
  }
}

TEST_CASE("attention cases: the fused op equals the reference, forward and every gradient (float64, float32)") {
  for (const test::AttentionCase& c : test::attention_cases()) {
    check_against_reference(c, DType::F64, 1e-12);
    check_against_reference(c, DType::F32, 2e-5);
  }
}

TEST_CASE("attention cases: the reference equals the operator's definition written as plain loops") {
  // ref::las (op_cases.h) has box smoothing and no padding: the cases with those, causal ones also
  // strictly re-masked.
  for (const test::AttentionCase& c : test::attention_cases()) {
    if (!c.opt.kernel.empty() || !c.lengths.empty()) continue;
    for (bool strict : {false, true}) {
      if (strict && (!c.opt.causal || test::is_softmax(c))) continue;
      CAPTURE(c.name);
      CAPTURE(strict);
      Tensor lengths;
      std::vector<Tensor> in = test::attention_inputs(c, DType::F64, Device::CPU, lengths);
      AttentionOptions o = test::case_options(c, test::is_softmax(c));
      o.strict_causal = strict;
      const int64_t C = o.C > 0 ? o.C : c.L;
      test::check_close(las_attention_reference(in[0], in[1], in[2], o).to_doubles(),
                        test::ref::las(in[0].to_doubles(), in[1].to_doubles(), in[2].to_doubles(), c.B, c.H, c.L, c.dh,
                                       o.alpha, o.P, C, o.causal, strict),
                        1e-12);
    }
  }
}

TEST_CASE("the V-side identity: smoothing the rows of A by w equals A times V smoothed by w mirrored") {
  // Spec §2, for a random kernel that is not symmetric, computed here with plain loops:
  // sum_j (sum_t w[t] A[i, j + t]) V[j]  ==  sum_k A[i, k] (sum_t w[t] V[k - t]), zeros outside [0, L).
  Rng rng(31);
  const int64_t L = 11, R = 3;
  std::vector<double> w(2 * R + 1), A(L * L), V(L);
  for (double& x : w) x = rng.uniform(-1, 1);
  for (double& x : A) x = rng.uniform(0, 1);
  for (double& x : V) x = rng.uniform(-1, 1);
  auto at = [&](const std::vector<double>& v, int64_t i) { return i >= 0 && i < L ? v[static_cast<size_t>(i)] : 0.0; };
  std::vector<double> vt(L);
  for (int64_t k = 0; k < L; ++k)
    for (int64_t t = -R; t <= R; ++t) vt[k] += w[t + R] * at(V, k - t);
  for (int64_t i = 0; i < L; ++i) {
    double left = 0, right = 0;
    for (int64_t j = 0; j < L; ++j) {
      double ap = 0;
      for (int64_t t = -R; t <= R; ++t)
        if (j + t >= 0 && j + t < L) ap += w[t + R] * A[i * L + j + t];
      left += ap * V[j];
      right += A[i * L + j] * vt[j];
    }
    CHECK(left == doctest::Approx(right).epsilon(1e-12));
  }
  // And the ops: las_smooth_values mirrors the row kernel (a single row of V, one head).
  Tensor v = Tensor::from(V, {1, 1, L, 1});
  AttentionOptions o{.P = 2 * R + 1, .kernel = w};
  test::check_close(las_smooth_values(v, o).to_doubles(), vt, 1e-12);
}

TEST_CASE("the reference's row smoothing by an explicit box equals its average pooling") {
  Rng rng(32);
  Tensor q = random({2, 2, 19, 4}, rng), k = random({2, 2, 19, 4}, rng), v = random({2, 2, 19, 4}, rng);
  Tensor lengths = Tensor::from(std::vector<int32_t>{19, 12}, {2});
  AttentionOptions box{.alpha = {0, 0.3}, .P = 5}, explicit_box = box;
  explicit_box.kernel.assign(5, 0.2);
  test::check_close(las_attention_reference(q, k, v, explicit_box, lengths).to_doubles(),
                    las_attention_reference(q, k, v, box, lengths).to_doubles(), 1e-12);
}

TEST_CASE("the fused kernels give the same bits whatever the heap held before") {
  // The kernels' scratch is reduced by Eigen, whose vectorised sums split a row by the buffer's
  // alignment: scratch placed by plain malloc made the bits depend on earlier allocations.
  Rng rng(21);
  const int64_t B = 2, H = 2, L = 300, dh = 16;
  AttentionOptions p;
  p.alpha = {0.0, 0.4};
  const Tensor q = random({B, H, L, dh}, rng, -1, 1, false).to(DType::F32),
               k = random({B, H, L, dh}, rng, -1, 1, false).to(DType::F32),
               v = random({B, H, L, dh}, rng, -1, 1, false).to(DType::F32),
               dout = random({B, H, L, dh}, rng, -1, 1, false).to(DType::F32);
  std::vector<std::vector<double>> first;
  for (int shift = 0; shift < 8; ++shift) {
    std::vector<std::unique_ptr<char[]>> held;  // blocks of 16-byte steps, alive during the calls
    for (int i = 0; i <= shift; ++i) held.emplace_back(new char[static_cast<size_t>(16 * i + 24)]);
    Tensor o = Tensor::zeros({B, H, L, dh}), lse = Tensor::zeros({B, H, L});
    Tensor dq = Tensor::zeros({B, H, L, dh}), dk = Tensor::zeros({B, H, L, dh}), dv = Tensor::zeros({B, H, L, dh});
    cpu_backend().attention(q, k, v, Tensor(), p, o, lse);
    cpu_backend().attention_grad(q, k, v, o, lse, dout, Tensor(), p, dq, dk, dv);
    const std::vector<std::vector<double>> bits = {o.to_doubles(), lse.to_doubles(), dq.to_doubles(), dk.to_doubles(),
                                                   dv.to_doubles()};
    if (shift == 0) first = bits;
    CAPTURE(shift);
    CHECK(bits == first);
  }
}

TEST_CASE(
    "attention cases: finite-difference gradients of the fused op, each case's options on a small shape (float64)") {
  Rng rng(7);
  for (const test::AttentionCase& c : test::attention_cases()) {
    CAPTURE(c.name);
    test::AttentionCase small = c;
    small.H = 2;
    small.opt.C = std::min<int64_t>(c.opt.C, 4);  // chunks as a case has them, at most 4 of the 9 positions
    In in{random({2, 2, 9, 3}, rng), random({2, 2, 9, 3}, rng), random({2, 2, 9, 3}, rng)};
    Tensor lengths = Tensor::from(std::vector<int32_t>{9, c.lengths.empty() ? 9 : 6}, {2});
    const AttentionOptions o = test::case_options(small, test::is_softmax(c));
    CHECK_GRADIENTS([&](const In& x) { return las_attention(x[0], x[1], x[2], o, lengths); }, in);
  }
}

TEST_CASE("strict re-mask: the reference re-masks after pooling; the fused op refuses it") {
  Rng rng(8);
  Tensor q = random({1, 2, 6, 4}, rng), k = random({1, 2, 6, 4}, rng), v = random({1, 2, 6, 4}, rng);
  AttentionOptions strict{.alpha = {0, 0.2}, .P = 3, .strict_causal = true};
  CHECK_THROWS_WITH_AS(las_attention(q, k, v, strict), doctest::Contains("las_attention"), Error);
  Tensor weights;
  las_attention_reference(q, k, v, strict, Tensor(), &weights);
  std::vector<double> w = weights.to_doubles();
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 6; ++i) {
      double row = 0;
      for (int64_t j = 0; j < 6; ++j) {
        if (j > i) CHECK(w[(h * 6 + i) * 6 + j] == 0.0);
        row += w[(h * 6 + i) * 6 + j];
      }
      CHECK(row <= 1.0 + 1e-12);  // not renormalised
    }
  CHECK_GRADIENTS([&](const In& x) { return las_attention_reference(x[0], x[1], x[2], strict); }, (In{q, k, v}));
}

TEST_CASE("the attention op runs the fused kernel where it serves and the reference where it cannot") {
  Rng rng(12);
  Tensor q = random({2, 2, 40, 8}, rng, -2, 2, false), k = random({2, 2, 40, 8}, rng, -2, 2, false),
         v = random({2, 2, 40, 8}, rng, -1, 1, false);
  Tensor lengths = Tensor::from(std::vector<int32_t>{40, 23}, {2});
  auto bits = [](const Tensor& t) { return t.to_doubles(); };
  AttentionOptions o{.alpha = {0, 0.3}, .P = 5};
  const auto fused = bits(las_attention(q, k, v, o, lengths));
  const auto reference = bits(las_attention_reference(q, k, v, o, lengths));
  REQUIRE(fused != reference);  // the two differ in their last bits, which tells them apart
  CHECK(bits(attention(q, k, v, o, lengths)) == fused);
  Tensor weights;
  CHECK(bits(attention(q, k, v, o, lengths, &weights)) == reference);  // recording weights
  CHECK(weights.shape() == Shape{2, 2, 40, 40});
  AttentionOptions off = o;
  off.fused = false;
  CHECK(bits(attention(q, k, v, off, lengths)) == reference);
  AttentionOptions strict = o;
  strict.strict_causal = true;
  CHECK(bits(attention(q, k, v, strict, lengths)) == bits(las_attention_reference(q, k, v, strict, lengths)));
}

TEST_CASE("the reference's recorded weights: decayed, softmaxed, smoothed rows") {
  Rng rng(9);
  Tensor q = random({1, 1, 5, 2}, rng, -1, 1, false), k = random({1, 1, 5, 2}, rng, -1, 1, false);
  Tensor v = random({1, 1, 5, 2}, rng, -1, 1, false);
  Tensor weights;
  las_attention_reference(q, k, v, {.alpha = {0.5}, .P = 3}, Tensor(), &weights);
  // By hand for row i = 2: softmax over j <= 2 of s_j = (q.k_j)/sqrt(2) * exp(-0.5 (2 - j)), then
  // pooled entry (2, 3) = (A[2,2] + A[2,3] + A[2,4]) / 3 = A[2,2] / 3.
  std::vector<double> qv = q.to_doubles(), kv = k.to_doubles(), w = weights.to_doubles();
  double s[3], z = 0;
  for (int j = 0; j < 3; ++j) {
    s[j] = std::exp((qv[4] * kv[2 * j] + qv[5] * kv[2 * j + 1]) / std::sqrt(2.0) * std::exp(-0.5 * (2 - j)));
    z += s[j];
  }
  CHECK(w[2 * 5 + 3] == doctest::Approx(s[2] / z / 3).epsilon(1e-6));
  CHECK(w[2 * 5 + 1] == doctest::Approx((s[0] + s[1] + s[2]) / z / 3).epsilon(1e-6));
}

TEST_CASE("attention over an empty input: zeros, and backward gives zero gradients") {
  for (const Shape& shape : {Shape{2, 2, 0, 4}, Shape{0, 2, 5, 4}})
    for (int impl = 0; impl < 2; ++impl) {
      CAPTURE(impl);
      In in{Tensor::zeros(shape, DType::F64), Tensor::zeros(shape, DType::F64), Tensor::zeros(shape, DType::F64)};
      for (Tensor& t : in) t.set_requires_grad();
      AttentionOptions o{.alpha = {0, 0.2}, .P = 3};
      Tensor out = impl == 0 ? las_attention(in[0], in[1], in[2], o) : las_attention_reference(in[0], in[1], in[2], o);
      CHECK(out.shape() == shape);
      sum(out).backward();
      for (const Tensor& t : in) {
        REQUIRE(t.grad().defined());
        CHECK(t.grad().shape() == shape);
      }
    }
}

TEST_CASE("las_attention validates its inputs and names itself") {
  Tensor q = Tensor::zeros({1, 2, 4, 3});
  auto throws = [](auto f, const char* what) { CHECK_THROWS_WITH_AS(f(), doctest::Contains(what), Error); };
  throws([&] { return las_attention(q, q, q, {.alpha = {0.0}}); }, "1 decay rates for 2 heads");
  throws([&] { return las_attention(q, q, Tensor::zeros({1, 2, 5, 3}), {.alpha = {0, 0}}); }, "[B, H, L, dh]");
  throws([&] { return las_attention(q, q, q, {.alpha = {0, -1}}); }, ">= 0");
  throws([&] { return las_attention(q, q, q, {.alpha = {0, 0}, .P = 2}); }, "odd");
  throws(
      [&] {
        return las_attention(q, q, q, {.alpha = {0, 0}, .P = 3, .kernel = {1, 1, 1, 1, 1}});
      },
      "a smoothing kernel of 5 weights for the window P = 3");
  throws(
      [&] {
        return las_attention(q, q, q, {.alpha = {0, 0}}, Tensor::from(std::vector<int32_t>{5}, {1}));
      },
      "outside [0, L = 4]");
  throws([&] { return las_attention(q, q, q.to(DType::F64), {.alpha = {0, 0}}); }, "las_attention");
}
