// Mixed precision on the CPU, the reference of the bf16 precision: cast, matmul and the fused attention
// with bfloat16 operands round exactly where docs/training.md says and compute the rest in float32, so
// each equals, bit for bit, the float32 op on operands rounded beforehand. (The layers that use them in
// Precision::Bf16: tests/layers/test_layers.cpp.)
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/attention.h"
#include "engine/bf16.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "tests/engine/helpers.h"

using namespace lasgrad;
using namespace lasgrad::test;

namespace {

// Uniform values in [-1, 1) as a float32 leaf that requires grad.
Tensor leaf32(const Shape& shape, Rng& rng) {
  Tensor t = random(shape, rng).to(DType::F32);
  t.set_requires_grad(true);
  return t;
}

}  // namespace

TEST_CASE("cast rounds to bfloat16, to nearest even, and passes the gradient through unrounded") {
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: even is 1. 1 + 3 * 2^-8: even is 1 + 2^-6.
  Tensor x =
      Tensor::from(std::vector<double>{1 + std::ldexp(1, -8), 1 + 3 * std::ldexp(1, -8), 0.1, -3}, {4}, DType::F32);
  x.set_requires_grad(true);
  Tensor h = cast(x, DType::BF16);
  CHECK(h.dtype() == DType::BF16);
  CHECK(h.to_doubles() == std::vector<double>{1, 1 + std::ldexp(1, -6), 0.10009765625, -3});
  Tensor w = Tensor::from(std::vector<double>{0.1, 0.2, 0.3, 0.7}, {4}, DType::F32);  // not bfloat16 values
  sum(mul(cast(h, DType::F32), w)).backward();
  CHECK(x.grad().dtype() == DType::F32);
  CHECK(x.grad().to_floats() == w.to_floats());
  CHECK(cast(x, DType::F32).impl() == x.impl());  // already float32: x itself
  CHECK(error_of([&] { cast(x, DType::I32); }).find("cast: ") == 0);
  // The other ops take float32 or float64 and say how to get there.
  CHECK(error_of([&] { add(h, h); }).find("cast it to float32") != std::string::npos);
}

TEST_CASE("matmul of bfloat16 operands is the float32 product of the rounded operands, and rounds its gradient") {
  Rng rng(3);
  struct Shapes {
    Shape a, b;
    bool ta, tb;
  };
  for (const Shapes& s : {Shapes{{2, 5, 7}, {2, 7, 3}, false, false}, Shapes{{7, 5}, {3, 7}, true, true},
                          Shapes{{2, 4, 6}, {3, 6}, false, true}}) {
    CAPTURE(shape_str(s.a));
    Tensor a = leaf32(s.a, rng), b = leaf32(s.b, rng);
    Tensor y = matmul(cast(a, DType::BF16), cast(b, DType::BF16), s.ta, s.tb);
    REQUIRE(y.dtype() == DType::F32);
    CHECK(same_bits(y, matmul(bf16_rounded(a), bf16_rounded(b), s.ta, s.tb)));
    CHECK_FALSE(same_bits(y, matmul(a.detach(), b.detach(), s.ta, s.tb)));  // the rounding shows

    // The backward rounds the incoming gradient g = w before its two products.
    Tensor w = random(y.shape(), rng).to(DType::F32);
    sum(mul(y, w)).backward();
    Tensor ar = bf16_rounded(a), br = bf16_rounded(b), wr = bf16_rounded(w);
    ar.set_requires_grad(true), br.set_requires_grad(true);
    sum(mul(matmul(ar, br, s.ta, s.tb), wr)).backward();
    CHECK(a.grad().dtype() == DType::F32);
    CHECK(same_bits(a.grad(), ar.grad()));
    CHECK(same_bits(b.grad(), br.grad()));
  }
  Tensor h = Tensor::zeros({2, 2}, DType::BF16);
  CHECK(error_of([&] { matmul(h, Tensor::zeros({2, 2})); }).find("two dtypes") != std::string::npos);
}

namespace {

double bf16_of(double x) { return bf16_round(static_cast<float>(x)); }

// The bf16 fused attention by its definition for one head, causal, every key valid, in double: q, k, v and
// dO already bfloat16 values [L][dh]; P rounded before P V with l summing the unrounded P; in the backward
// P and G = P (dP - D) decay rounded before their products. Returns {o, dq, dk, dv}, each [L][dh].
std::vector<std::vector<double>> bf16_attention_by_definition(const std::vector<double>& q,
                                                              const std::vector<double>& k,
                                                              const std::vector<double>& v,
                                                              const std::vector<double>& dout, int64_t L, int64_t dh,
                                                              double alpha) {
  std::vector<double> o(L * dh, 0.0), dq(L * dh, 0.0), dk(L * dh, 0.0), dv(L * dh, 0.0), lse(L), s(L * L);
  auto dot = [&](const std::vector<double>& a, int64_t i, const std::vector<double>& b, int64_t j) {
    double x = 0;
    for (int64_t d = 0; d < dh; ++d) x += a[i * dh + d] * b[j * dh + d];
    return x;
  };
  auto decay = [&](int64_t i, int64_t j) { return std::exp(-alpha * double(i - j)) / std::sqrt(double(dh)); };
  for (int64_t i = 0; i < L; ++i) {
    double m = -INFINITY, l = 0;
    for (int64_t j = 0; j <= i; ++j) m = std::max(m, s[i * L + j] = dot(q, i, k, j) * decay(i, j));
    for (int64_t j = 0; j <= i; ++j) {
      const double pr = std::exp(s[i * L + j] - m);
      l += pr;
      for (int64_t d = 0; d < dh; ++d) o[i * dh + d] += bf16_of(pr) * v[j * dh + d];
    }
    for (int64_t d = 0; d < dh; ++d) o[i * dh + d] /= l;
    lse[i] = m + std::log(l);
  }
  for (int64_t i = 0; i < L; ++i) {
    const double D = dot(dout, i, o, i);
    for (int64_t j = 0; j <= i; ++j) {
      const double pr = std::exp(s[i * L + j] - lse[i]), g = pr * (dot(dout, i, v, j) - D) * decay(i, j);
      for (int64_t d = 0; d < dh; ++d) {
        dv[j * dh + d] += bf16_of(pr) * dout[i * dh + d];
        dq[i * dh + d] += bf16_of(g) * k[j * dh + d];
        dk[j * dh + d] += bf16_of(g) * q[i * dh + d];
      }
    }
  }
  return {o, dq, dk, dv};
}

}  // namespace

TEST_CASE("fused attention with bf16 rounds q, k, V~, dO, P and G, and nothing else (one tile, by definition)") {
  Rng rng(5);
  const int64_t L = 40, dh = 16;  // one tile of the CPU kernel: each row's P is relative to its own maximum
  AttentionOptions o;
  o.alpha = {0.3};
  o.bf16 = true;
  Tensor q = leaf32({1, 1, L, dh}, rng), k = leaf32({1, 1, L, dh}, rng), v = leaf32({1, 1, L, dh}, rng);
  const Tensor w = random({1, 1, L, dh}, rng).to(DType::F32);
  Tensor out = las_attention(q, k, v, o);
  REQUIRE(out.dtype() == DType::F32);
  sum(mul(out, w)).backward();
  const std::vector<std::vector<double>> want =
      bf16_attention_by_definition(bf16_rounded(q).to_doubles(), bf16_rounded(k).to_doubles(),
                                   bf16_rounded(v).to_doubles(), bf16_rounded(w).to_doubles(), L, dh, 0.3);
  const Tensor got[] = {out, q.grad(), k.grad(), v.grad()};
  const std::string names[] = {"o", "dq", "dk", "dv"};
  for (int t = 0; t < 4; ++t) {
    CAPTURE(names[t]);
    REQUIRE(got[t].dtype() == DType::F32);
    const std::vector<double> g = got[t].to_doubles();
    double worst = 0;
    for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(g[i] - want[t][i]));
    CHECK(worst < 1e-5);  // float32 sums against double: far below one bfloat16 step of P (4e-3)
  }
  // Without P's rounding (the float32 kernel on the rounded operands) the output is another one.
  o.bf16 = false;
  const Tensor unrounded_p = las_attention(bf16_rounded(q), bf16_rounded(k), bf16_rounded(v), o);
  double apart = 0;
  for (size_t i = 0; i < want[0].size(); ++i)
    apart = std::max(apart, std::abs(unrounded_p.to_doubles()[i] - want[0][i]));
  CHECK(apart > 1e-4);

  AttentionOptions ob;
  ob.alpha = {0.0};
  ob.bf16 = true;
  Tensor q64 = Tensor::zeros({1, 1, 4, 8}, DType::F64);
  CHECK(error_of([&] { las_attention(q64, q64, q64, ob); }).find("needs float32 q, k, v") != std::string::npos);
}

TEST_CASE("bf16 attention: the fused op and the reference (which rounds v before smoothing) agree to bfloat16") {
  Rng rng(8);
  const int64_t B = 1, H = 3, L = 50, dh = 32;
  AttentionOptions o;
  o.alpha = {0.0, 0.1, 0.5};
  o.P = 5;
  o.bf16 = true;
  Tensor q = leaf32({B, H, L, dh}, rng), k = leaf32({B, H, L, dh}, rng), v = leaf32({B, H, L, dh}, rng);
  const Tensor fused = las_attention(q, k, v, o), ref = las_attention_reference(q, k, v, o);
  Tensor weights;
  attention(q, k, v, o, Tensor(), &weights);  // what `lasgrad attn` draws in a bf16 run
  CHECK(weights.shape() == Shape{B, H, L, L});
  double worst = 0;
  const std::vector<float> f = fused.to_floats(), r = ref.to_floats();
  for (size_t i = 0; i < f.size(); ++i) worst = std::max(worst, double(std::abs(f[i] - r[i])));
  CHECK(worst < 1e-2);  // the outputs are averages of v entries in [-1, 1): a few bfloat16 steps
  CHECK(worst > 0);     // the two round different tensors (v, the smoothed v)
}
