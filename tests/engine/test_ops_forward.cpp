// Forward values of every op against independent computations, numerical stability, and input errors.
#include <cmath>

#include "tests/engine/helpers.h"

using namespace lasgrad;
using lasgrad::test::check_close;
using lasgrad::test::error_of;
using lasgrad::test::random;

TEST_CASE("element-wise values with broadcasting, float32 and float64") {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor a = Tensor::from(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}, dt);
    Tensor b = Tensor::from(std::vector<double>{10, 20, 30}, {3}, dt);
    Tensor c = Tensor::from(std::vector<double>{2, 4}, {2, 1}, dt);
    CHECK(add(a, b).to_doubles() == std::vector<double>{11, 22, 33, 14, 25, 36});
    CHECK(sub(a, c).to_doubles() == std::vector<double>{-1, 0, 1, 0, 1, 2});
    CHECK(mul(a, c).to_doubles() == std::vector<double>{2, 4, 6, 16, 20, 24});
    CHECK(div(b, c).shape() == Shape{2, 3});
    CHECK(div(b, c).to_doubles() == std::vector<double>{5, 10, 15, 2.5, 5, 7.5});
    CHECK(rsub(1.0, a).to_doubles() == std::vector<double>{0, -1, -2, -3, -4, -5});
    check_close(rdiv(12.0, a).to_doubles(), {12, 6, 4, 3, 2.4, 2}, 1e-7);
    check_close(exp(a).to_doubles(),
                {std::exp(1.), std::exp(2.), std::exp(3.), std::exp(4.), std::exp(5.), std::exp(6.)}, 1e-6);
    check_close(log(a).to_doubles(), {0, std::log(2.), std::log(3.), std::log(4.), std::log(5.), std::log(6.)}, 1e-6);
    CHECK(relu(sub(a, 3.5)).to_doubles() == std::vector<double>{0, 0, 0, 0.5, 1.5, 2.5});
  }
}

TEST_CASE("GELU: the exact erf form and the tanh approximation") {
  Tensor x = Tensor::from(std::vector<double>{-3, -1, 0, 0.5, 1, 4}, {6});
  std::vector<double> exact, approx;
  for (double v : x.to_doubles()) {
    exact.push_back(0.5 * v * (1 + std::erf(v / std::sqrt(2.0))));
    approx.push_back(0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
  }
  check_close(gelu(x, Gelu::Erf).to_doubles(), exact, 1e-12);
  check_close(gelu(x, Gelu::Tanh).to_doubles(), approx, 1e-12);
  CHECK(gelu(x, Gelu::Erf).to_doubles()[4] == doctest::Approx(0.8413447460685429));
}

// Plain triple loop: out[b, i, j] = sum_k A[b, i, k] B[b, k, j] with A = op(a), B = op(b).
static std::vector<double> naive_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  auto av = a.to_doubles(), bv = b.to_doubles();
  int64_t nb = a.dim(0), m = ta ? a.dim(2) : a.dim(1), k = ta ? a.dim(1) : a.dim(2), n = tb ? b.dim(1) : b.dim(2);
  std::vector<double> out(nb * m * n, 0.0);
  for (int64_t z = 0; z < nb; ++z)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p) {
          double x = ta ? av[z * k * m + p * m + i] : av[z * m * k + i * k + p];
          double y = tb ? bv[z * n * k + j * k + p] : bv[z * k * n + p * n + j];
          s += x * y;
        }
        out[z * m * n + i * n + j] = s;
      }
  return out;
}

TEST_CASE("matmul equals a plain triple loop") {
  Rng rng(1);
  for (DType dt : {DType::F32, DType::F64})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        CAPTURE(ta);
        CAPTURE(tb);
        Tensor a = random(ta ? Shape{3, 17, 5} : Shape{3, 5, 17}, rng, -1, 1, false).to(dt);
        Tensor b = random(tb ? Shape{3, 33, 17} : Shape{3, 17, 33}, rng, -1, 1, false).to(dt);
        check_close(matmul(a, b, ta, tb).to_doubles(), naive_matmul(a, b, ta, tb), dt == DType::F32 ? 1e-5 : 1e-12);
      }
  Tensor x = random({2, 4, 6}, rng, -1, 1, false), w = random({6, 3}, rng, -1, 1, false);
  Tensor y = matmul(x, w);
  CHECK(y.shape() == Shape{2, 4, 3});
  check_close(y.to_doubles(), naive_matmul(reshape(x, {1, 8, 6}), reshape(w, {1, 6, 3}), false, false), 1e-12);
}

TEST_CASE("permute, slice, concat and split move the right entries") {
  std::vector<double> v(24);
  for (int i = 0; i < 24; ++i) v[i] = i;
  Tensor x = Tensor::from(v, {2, 3, 4});
  Tensor p = permute(x, {2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  auto pv = p.to_doubles();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) CHECK(pv[k * 6 + i * 3 + j] == v[i * 12 + j * 4 + k]);
  CHECK(slice(x, 1, 1, 1).to_doubles() == std::vector<double>{4, 5, 6, 7, 16, 17, 18, 19});
  CHECK(slice(x, 2, 3, 1).to_doubles() == std::vector<double>{3, 7, 11, 15, 19, 23});
  Tensor c = concat({slice(x, 2, 2, 2), slice(x, 2, 0, 2)}, 2);
  CHECK(slice(c, 0, 0, 1).to_doubles() == std::vector<double>{2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9});
  auto parts = split(x, 0, {1, 1});
  CHECK(parts[1].to_doubles() == std::vector<double>(v.begin() + 12, v.end()));
  Tensor ids = Tensor::from(std::vector<int32_t>{1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(transpose(ids, 0, 1).to_doubles() == std::vector<double>{1, 4, 2, 5, 3, 6});
  CHECK(error_of([&] { slice(x, 1, 2, 2); }).find("slice: range [2, 4) along axis 1") == 0);
  CHECK(error_of([&] { concat({x, slice(x, 1, 0, 2)}, 2); }).find("concat") == 0);
  CHECK(error_of([&] { split(x, 1, {1, 1}); }).find("split") == 0);
  CHECK(error_of([&] { permute(x, {0, 0, 1}); }).find("permute") == 0);
}

TEST_CASE("sum and mean over axes") {
  std::vector<double> v(24);
  for (int i = 0; i < 24; ++i) v[i] = i;
  Tensor x = Tensor::from(v, {2, 3, 4}, DType::F32);
  CHECK(sum(x, {2}).to_doubles() == std::vector<double>{6, 22, 38, 54, 70, 86});
  CHECK(sum(x, {0, 1}).to_doubles() == std::vector<double>{60, 66, 72, 78});
  CHECK(sum(x, {1}, true).shape() == Shape{2, 1, 4});
  CHECK(sum(x, {0, 2}).to_doubles() == std::vector<double>{60, 92, 124});
  CHECK(sum(x).item() == 276);
  CHECK(mean(x).item() == doctest::Approx(11.5));
  CHECK(mean(x, {1}).to_doubles() == std::vector<double>{4, 5, 6, 7, 16, 17, 18, 19});
}

TEST_CASE("softmax: values, huge logits, masked rows") {
  Tensor x = Tensor::from(std::vector<double>{1, 2, 3, 0, 0, 0}, {2, 3});
  double z = std::exp(1.) + std::exp(2.) + std::exp(3.);
  check_close(softmax(x).to_doubles(), {std::exp(1.) / z, std::exp(2.) / z, std::exp(3.) / z, 1. / 3, 1. / 3, 1. / 3},
              1e-12);

  for (DType dt : {DType::F32, DType::F64}) {
    // Shifting all logits by 1e4 changes neither the probabilities nor their gradient.
    Tensor small = Tensor::from(std::vector<double>{0, -2e4, -1, 0.5}, {1, 4}, dt).set_requires_grad();
    Tensor huge = Tensor::from(std::vector<double>{1e4, -1e4, 1e4 - 1, 1e4 + 0.5}, {1, 4}, dt).set_requires_grad();
    Tensor w = Tensor::from(std::vector<double>{1, 2, 3, 4}, {1, 4}, dt);
    sum(mul(softmax(small), w)).backward();
    Tensor y = softmax(huge);
    sum(mul(y, w)).backward();
    for (double e : y.to_doubles()) CHECK(std::isfinite(e));
    check_close(y.to_doubles(), softmax(small).to_doubles(), 1e-6);
    check_close(huge.grad().to_doubles(), small.grad().to_doubles(), 1e-6);
  }

  std::vector<double> m = {0, -INFINITY, 0, -INFINITY, -INFINITY, -INFINITY};
  Tensor y = softmax(x, Tensor::from(m, {2, 3}));  // the second row is masked entirely: zeros, not NaN
  check_close(y.to_doubles(),
              {std::exp(1.) / (std::exp(1.) + std::exp(3.)), 0, std::exp(3.) / (std::exp(1.) + std::exp(3.)), 0, 0, 0},
              1e-12);
}

TEST_CASE("cross-entropy: values, huge logits, ignore index, bad targets") {
  Tensor logits = Tensor::from(std::vector<double>{1, 2, 3, 0, 0, 0, 5, 1, 1}, {3, 3}).set_requires_grad();
  Tensor targets = Tensor::from(std::vector<int32_t>{2, 0, -1}, {3});
  double l0 = std::log(std::exp(1.) + std::exp(2.) + std::exp(3.)) - 3, l1 = std::log(3.);
  Tensor loss = cross_entropy(logits, targets, -1);
  CHECK(loss.shape() == Shape{});
  CHECK(loss.item() == doctest::Approx((l0 + l1) / 2).epsilon(1e-12));
  loss.backward();
  auto g = logits.grad().to_doubles();
  CHECK(g[8] == 0.0);  // the ignored row gets no gradient
  CHECK(g[3] == doctest::Approx((1. / 3 - 1) / 2));

  for (DType dt : {DType::F32, DType::F64}) {
    Tensor big = Tensor::from(std::vector<double>{1e4, -1e4}, {1, 2}, dt).set_requires_grad();
    Tensor t = Tensor::from(std::vector<int32_t>{1}, {1});
    Tensor l = cross_entropy(big, t);
    CHECK(l.item() == doctest::Approx(2e4));
    l.backward();
    check_close(big.grad().to_doubles(), {1, -1}, 1e-6);
  }

  Tensor bad = Tensor::from(std::vector<int32_t>{0, 3, 1}, {3});
  std::string e = error_of([&] { cross_entropy(logits, bad); });
  CHECK(e.find("cross_entropy") == 0);
  CHECK(e.find("3") != std::string::npos);
  Tensor ignored = Tensor::from(std::vector<int32_t>{-100, -100, -100}, {3});
  CHECK(error_of([&] { cross_entropy(logits, ignored); }).find("every target equals ignore_index") !=
        std::string::npos);
  CHECK(error_of([&] {
          cross_entropy(logits, Tensor::from(std::vector<int32_t>{0, 1}, {2}));
        }).find("cross_entropy") == 0);
}

TEST_CASE("layer norm values") {
  Rng rng(2);
  Tensor x = random({3, 5}, rng, -2, 2, false), gamma = random({5}, rng, 0.5, 1.5, false),
         beta = random({5}, rng, -1, 1, false);
  auto xv = x.to_doubles(), gv = gamma.to_doubles(), bv = beta.to_doubles();
  std::vector<double> want;
  for (int r = 0; r < 3; ++r) {
    double m = 0, var = 0;
    for (int j = 0; j < 5; ++j) m += xv[r * 5 + j] / 5;
    for (int j = 0; j < 5; ++j) var += (xv[r * 5 + j] - m) * (xv[r * 5 + j] - m) / 5;
    for (int j = 0; j < 5; ++j) want.push_back((xv[r * 5 + j] - m) / std::sqrt(var + 1e-5) * gv[j] + bv[j]);
  }
  check_close(layer_norm(x, gamma, beta).to_doubles(), want, 1e-12);
  check_close(layer_norm(x.to(DType::F32), gamma.to(DType::F32), beta.to(DType::F32)).to_doubles(), want, 1e-5);
  CHECK(error_of([&] { layer_norm(x, beta, slice(beta, 0, 0, 4)); }).find("layer_norm") == 0);
}

TEST_CASE("embedding gathers rows and rejects ids outside the table") {
  Tensor table = Tensor::from(std::vector<double>{0, 1, 10, 11, 20, 21}, {3, 2});
  Tensor ids = Tensor::from(std::vector<int32_t>{2, 0, 2}, {1, 3});
  Tensor out = embedding(table, ids);
  CHECK(out.shape() == Shape{1, 3, 2});
  CHECK(out.to_doubles() == std::vector<double>{20, 21, 0, 1, 20, 21});
  std::string e = error_of([&] { embedding(table, Tensor::from(std::vector<int32_t>{0, 3}, {2})); });
  CHECK(e.find("embedding") == 0);
  CHECK(e.find("3") != std::string::npos);
  CHECK_FALSE(error_of([&] { embedding(table, Tensor::from(std::vector<int32_t>{-1}, {1})); }).empty());
}

TEST_CASE("dropout: identity in eval, seeded and scaled in training") {
  Tensor x = Tensor::full({100, 100}, 1.0);
  Tensor same = dropout(x, 0.25, 1, false);
  CHECK(same.raw() == x.raw());
  auto a = dropout(x, 0.25, 7, true).to_doubles(), b = dropout(x, 0.25, 7, true).to_doubles();
  auto c = dropout(x, 0.25, 8, true).to_doubles();
  CHECK(a == b);
  CHECK(a != c);
  int zeros = 0;
  for (double v : a) {
    CHECK((v == 0.0 || std::abs(v - 1 / 0.75) < 1e-6));
    zeros += v == 0.0;
  }
  CHECK(zeros > 2300);  // 2500 expected; sd about 43
  CHECK(zeros < 2700);
  CHECK_FALSE(error_of([&] { dropout(x, 1.0, 1, true); }).empty());
}

TEST_CASE("masked fill and sequence average pooling") {
  Tensor x = Tensor::from(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor mask = Tensor::from(std::vector<int32_t>{1, 0, 1}, {3});
  CHECK(masked_fill(x, mask, -7).to_doubles() == std::vector<double>{-7, 2, -7, -7, 5, -7});
  Tensor neg_inf = masked_fill(x, mask, -INFINITY);
  CHECK(std::isinf(neg_inf.to_doubles()[0]));

  // x [1, L=5, D=2]; P = 3: out[l] = (x[l-1] + x[l] + x[l+1]) / 3 with zeros outside.
  std::vector<double> v = {1, 10, 2, 20, 3, 30, 4, 40, 5, 50};
  Tensor s = Tensor::from(v, {1, 5, 2});
  check_close(avg_pool_seq(s, 3).to_doubles(), {1, 10, 2, 20, 3, 30, 4, 40, 3, 30}, 1e-12);
  check_close(avg_pool_seq(s, 1).to_doubles(), v, 1e-12);
  // P = 7 > L: every position sees the whole sequence minus what falls past the ends.
  check_close(avg_pool_seq(s, 7).to_doubles(),
              {10. / 7, 100. / 7, 15. / 7, 150. / 7, 15. / 7, 150. / 7, 15. / 7, 150. / 7, 14. / 7, 140. / 7}, 1e-12);
  CHECK(error_of([&] { avg_pool_seq(s, 4); }).find("avg_pool_seq: window P must be odd") == 0);

  // conv_seq, w = (1, 2, 4) over offsets (-1, 0, +1): out[l] = x[l-1] + 2 x[l] + 4 x[l+1], worked by hand.
  check_close(conv_seq(s, {1, 2, 4}).to_doubles(), {10, 100, 17, 170, 24, 240, 31, 310, 14, 140}, 1e-12);
  // Five weights over L = 5; offsets past both ends read zeros: out[0] = 3 x0 + 4 x1 + 5 x2.
  check_close(conv_seq(s, {1, 2, 3, 4, 5}).to_doubles(), {26, 260, 40, 400, 55, 550, 40, 400, 26, 260}, 1e-12);
  // Seven weights, L = 5: the outermost offsets never land inside, so only w[1..5] count at l = 2.
  CHECK(conv_seq(s, {100, 1, 1, 1, 1, 1, 100}).to_doubles()[4] == doctest::Approx(15.0).epsilon(1e-12));
  check_close(conv_seq(s, {0.5}).to_doubles(), {0.5, 5, 1, 10, 1.5, 15, 2, 20, 2.5, 25}, 1e-12);
  CHECK(error_of([&] { conv_seq(s, {1, 2}); }).find("conv_seq: needs an odd number of weights") == 0);
  CHECK(error_of([&] { conv_seq(s, {1, NAN, 1}); }).find("conv_seq: weights must be finite") == 0);
}
