// las_attention (fused kernel) against las_attention_reference (the spec's steps with L x L matrices),
// forward and the gradients of q, k and v, over shapes that hit every edge of the tiling; a
// finite-difference check of the fused op itself; input validation.
#include <cmath>
#include <memory>
#include <vector>

#include "engine/attention.h"
#include "engine/backend.h"
#include "tests/engine/helpers.h"

using namespace lasgrad;
using lasgrad::test::random;
using In = std::vector<Tensor>;

namespace {

struct Case {
  int64_t B, H, L, dh;
  AttentionOptions o;
  std::vector<int32_t> lengths{};  // empty: no key padding
  double alpha_max = 0.5;          // decays spread over [0, alpha_max]; 0: softmax attention
};

std::vector<double> alphas(int64_t H, double amax) {
  std::vector<double> a(H, 0.0);
  for (int64_t h = 1; h < H; ++h) a[h] = amax * h / (H - 1);  // head 0 global, as in the spec
  return a;
}

// max |got - want| / (1 + max |want|) over outputs and gradients, after one backward of sum(O * W).
struct Errors {
  double out = 0, dq = 0, dk = 0, dv = 0;
};

double rel_err(const Tensor& got, const Tensor& want) {
  std::vector<double> g = got.to_doubles(), w = want.to_doubles();
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    num = std::max(num, std::abs(g[i] - w[i]));
    den = std::max(den, std::abs(w[i]));
  }
  return num / (1 + den);
}

Errors compare(const Case& c, DType dt, uint64_t seed) {
  Rng rng(seed);
  const Shape s{c.B, c.H, c.L, c.dh};
  // Logits of O(3): softmax rows are far from uniform, so errors in masking or decay would show.
  Tensor q = random(s, rng, -2, 2, false).to(dt), k = random(s, rng, -2, 2, false).to(dt),
         v = random(s, rng, -1, 1, false).to(dt), w = random(s, rng, -1, 1, false).to(dt);
  Tensor lengths = c.lengths.empty() ? Tensor() : Tensor::from(c.lengths, {c.B});
  AttentionOptions o = c.o;
  o.alpha = alphas(c.H, c.alpha_max);
  Tensor grads[2][3], outs[2];
  for (int impl = 0; impl < 2; ++impl) {
    In in{q.clone(), k.clone(), v.clone()};
    for (Tensor& t : in) t.set_requires_grad();
    outs[impl] = impl == 0 ? las_attention(in[0], in[1], in[2], o, lengths)
                           : las_attention_reference(in[0], in[1], in[2], o, lengths);
    sum(mul(outs[impl], w)).backward();
    for (int i = 0; i < 3; ++i) grads[impl][i] = in[i].grad();
  }
  return {rel_err(outs[0], outs[1]), rel_err(grads[0][0], grads[1][0]), rel_err(grads[0][1], grads[1][1]),
          rel_err(grads[0][2], grads[1][2])};
}

std::vector<Case> sweep() {
  std::vector<Case> cases;
  for (bool causal : {true, false}) {
    auto o = [causal](int64_t P, int64_t C) { return AttentionOptions{.causal = causal, .P = P, .C = C}; };
    cases.push_back({1, 1, 1, 4, o(1, 0)});                  // one position
    cases.push_back({2, 2, 7, 8, o(1, 0), {}, 0.0});           // softmax attention: alpha = 0, P = 1
    cases.push_back({2, 3, 37, 8, o(5, 0)});                 // L below one tile
    cases.push_back({1, 2, 3, 4, o(7, 0)});                  // L < P
    cases.push_back({2, 2, 130, 16, o(3, 0)});               // L not a multiple of the 64-tile
    cases.push_back({1, 4, 200, 8, o(5, 0), {}, 0.9});       // several tiles, steep decays
    cases.push_back({2, 2, 100, 8, o(5, 0), {100, 41}});     // key padding (one full length)
    cases.push_back({3, 2, 70, 4, o(3, 0), {0, 1, 65}});     // an empty example and a one-token one
    cases.push_back({2, 2, 96, 8, o(5, 32)});                // LaS-Chunk, L a multiple of C
    cases.push_back({2, 2, 101, 8, o(3, 24)});               // L not a multiple of C
    cases.push_back({1, 2, 150, 8, o(5, 80)});               // a chunk spanning tiles, a short last chunk
    cases.push_back({2, 2, 90, 8, o(5, 16), {90, 37}});      // chunks with key padding (whole padded chunks)
    cases.push_back({1, 2, 20, 8, o(1, 7), {}, 0.0});        // chunked softmax attention
    // Smoothing kernels other than the box, non-symmetric so that a missing mirror shows.
    auto k = [causal](std::vector<double> w, int64_t C) {
      return AttentionOptions{.causal = causal, .P = static_cast<int64_t>(w.size()), .C = C, .kernel = w};
    };
    cases.push_back({2, 3, 70, 8, k({0.1, 0.6, 0.3}, 0)});
    cases.push_back({2, 2, 100, 8, k({0.3, -0.2, 0.5, 0.1, 0.9}, 0), {100, 41}});
    cases.push_back({2, 2, 90, 8, k({0.05, 0.1, 0.2, 0.3, 0.2, 0.1, 0.05}, 16), {90, 37}});
    cases.push_back({1, 2, 5, 4, k({1, 2, 3, 4, 5, 6, 7, 8, 9}, 0)});  // a kernel wider than L
  }
  return cases;
}

}  // namespace

TEST_CASE("fused LaS attention equals the reference: forward and every gradient (float64)") {
  uint64_t seed = 1;
  for (const Case& c : sweep()) {
    CAPTURE(c.B);
    CAPTURE(c.H);
    CAPTURE(c.L);
    CAPTURE(c.dh);
    CAPTURE(c.o.causal);
    CAPTURE(c.o.P);
    CAPTURE(c.o.C);
    CAPTURE(c.o.kernel.size());
    CAPTURE(c.lengths.size());
    Errors e = compare(c, DType::F64, seed++);
    CHECK(e.out < 1e-12);
    CHECK(e.dq < 1e-12);
    CHECK(e.dk < 1e-12);
    CHECK(e.dv < 1e-12);
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

TEST_CASE("fused LaS attention equals the reference in float32") {
  auto opt = [](bool causal, int64_t P, int64_t C, std::vector<double> w = {}) {
    AttentionOptions o;
    o.causal = causal, o.P = P, o.C = C, o.kernel = std::move(w);
    return o;
  };
  std::vector<Case> cases;
  cases.push_back({2, 4, 300, 16, opt(true, 5, 0)});
  cases.push_back({2, 4, 257, 32, opt(false, 3, 0)});
  cases.push_back({2, 2, 300, 16, opt(true, 5, 128), {300, 190}});
  cases.push_back({2, 2, 300, 16, opt(true, 5, 0, {0.1, 0.2, 0.4, 0.2, 0.1}), {300, 190}});
  // Every width with a micro-kernel (16, 32, 64), one without (24: Eigen's products), and chunks shorter
  // than a tile, with key padding.
  cases.push_back({1, 2, 200, 64, opt(true, 5, 0), {150}});
  cases.push_back({1, 2, 150, 64, opt(false, 3, 0)});
  cases.push_back({2, 2, 200, 24, opt(true, 5, 0), {200, 77}});
  cases.push_back({2, 2, 100, 16, opt(true, 3, 32), {100, 45}});
  cases.push_back({2, 2, 100, 32, opt(false, 3, 20), {100, 45}});
  for (const Case& c : cases) {
    CAPTURE(c.L);
    CAPTURE(c.dh);
    Errors e = compare(c, DType::F32, 99);
    CHECK(e.out < 2e-5);
    CHECK(e.dq < 2e-5);
    CHECK(e.dk < 2e-5);
    CHECK(e.dv < 2e-5);
  }
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
    const std::vector<std::vector<double>> bits = {o.to_doubles(), lse.to_doubles(), dq.to_doubles(),
                                                   dk.to_doubles(), dv.to_doubles()};
    if (shift == 0) first = bits;
    CAPTURE(shift);
    CHECK(bits == first);
  }
}

TEST_CASE("finite-difference gradients of the fused op (float64)") {
  Rng rng(7);
  const std::vector<double> a{0.0, 0.3};
  for (AttentionOptions o : {AttentionOptions{.alpha = a, .causal = true, .P = 3},
                             AttentionOptions{.alpha = a, .causal = false, .P = 5},
                             AttentionOptions{.alpha = a, .causal = true, .P = 3, .C = 4},
                             AttentionOptions{.alpha = a, .causal = true, .P = 3, .kernel = {0.2, 0.7, -0.4}},
                             AttentionOptions{.alpha = a, .causal = false, .P = 5, .C = 4, .kernel = {0.1, 0.2, 0.3, 0.5, 0.8}}}) {
    CAPTURE(o.causal);
    CAPTURE(o.C);
    In in{random({2, 2, 9, 3}, rng), random({2, 2, 9, 3}, rng), random({2, 2, 9, 3}, rng)};
    Tensor lengths = Tensor::from(std::vector<int32_t>{9, 6}, {2});
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
  auto throws = [](auto f, const char* what) {
    CHECK_THROWS_WITH_AS(f(), doctest::Contains(what), Error);
  };
  throws([&] { return las_attention(q, q, q, {.alpha = {0.0}}); }, "1 decay rates for 2 heads");
  throws([&] { return las_attention(q, q, Tensor::zeros({1, 2, 5, 3}), {.alpha = {0, 0}}); }, "[B, H, L, dh]");
  throws([&] { return las_attention(q, q, q, {.alpha = {0, -1}}); }, ">= 0");
  throws([&] { return las_attention(q, q, q, {.alpha = {0, 0}, .P = 2}); }, "odd");
  throws([&] { return las_attention(q, q, q, {.alpha = {0, 0}, .P = 3, .kernel = {1, 1, 1, 1, 1}}); },
         "a smoothing kernel of 5 weights for the window P = 3");
  throws([&] { return las_attention(q, q, q, {.alpha = {0, 0}}, Tensor::from(std::vector<int32_t>{5}, {1})); },
         "outside [0, L = 4]");
  throws([&] { return las_attention(q, q, q.to(DType::F64), {.alpha = {0, 0}}); }, "las_attention");
}
