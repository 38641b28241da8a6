// Each layer: parameter names, initialisation, train/eval behaviour, and a finite-difference gradient
// check (float64, tiny shapes) of its output with respect to its input and every parameter.
#include <barrier>
#include <cmath>
#include <thread>

#include "layers/layers.h"
#include "layers/multihead_attention.h"
#include "tests/engine/helpers.h"

using namespace lasgrad;
using lasgrad::test::random;
using In = std::vector<Tensor>;

namespace {

std::vector<std::string> names(const Module& m) {
  std::vector<std::string> out;
  for (auto& [n, t] : m.named_parameters()) out.push_back(n);
  return out;
}

// The input and every parameter of `m` as gradient-check inputs (the parameters are perturbed in place).
In with_params(const Tensor& x, const Module& m) {
  In in{x};
  for (const Tensor& p : m.parameters()) in.push_back(p);
  return in;
}

}  // namespace

TEST_CASE("Linear: names, init bound, gradient") {
  Rng rng(1);
  Linear lin(5, 3, rng, DType::F64);
  CHECK(names(lin) == std::vector<std::string>{"weight", "bias"});
  CHECK(lin.weight.shape() == Shape{3, 5});
  for (double w : lin.weight.to_doubles()) CHECK(std::abs(w) <= 1 / std::sqrt(5.0));
  Tensor x = random({2, 4, 5}, rng);
  CHECK_GRADIENTS([&](const In&) { return lin.forward(x); }, with_params(x, lin));
}

TEST_CASE("Embedding and LayerNorm gradients") {
  Rng rng(2);
  Embedding emb(6, 4, rng, DType::F64);
  Tensor ids = Tensor::from(std::vector<int32_t>{0, 5, 5, 2}, {2, 2});
  CHECK_GRADIENTS([&](const In&) { return emb.forward(ids); }, (In{emb.weight}));
  LayerNorm ln(4, DType::F64);
  CHECK(names(ln) == std::vector<std::string>{"weight", "bias"});
  ln.weight.copy_from(random({4}, rng, 0.5, 1.5, false));
  ln.bias.copy_from(random({4}, rng, -1, 1, false));
  Tensor x = random({2, 3, 4}, rng);
  CHECK_GRADIENTS([&](const In&) { return ln.forward(x); }, with_params(x, ln));
}

TEST_CASE("BatchNorm: batch statistics in training, running statistics in eval, gradient") {
  Rng rng(3);
  BatchNorm bn(3, DType::F64, 1e-5, 0.1);
  Tensor x = random({2, 5, 3}, rng, -2, 2, false);
  Tensor y = bn.forward(x);
  // Per channel over (B, L): mean 0 and biased variance 1 (up to eps).
  std::vector<double> yv = y.to_doubles(), xv = x.to_doubles();
  for (int c = 0; c < 3; ++c) {
    double m = 0, v = 0, xm = 0, xv2 = 0;
    for (int i = 0; i < 10; ++i) m += yv[i * 3 + c] / 10, xm += xv[i * 3 + c] / 10;
    for (int i = 0; i < 10; ++i)
      v += (yv[i * 3 + c] - m) * (yv[i * 3 + c] - m) / 10, xv2 += (xv[i * 3 + c] - xm) * (xv[i * 3 + c] - xm) / 9;
    CHECK(std::abs(m) < 1e-12);
    CHECK(v == doctest::Approx(1.0).epsilon(1e-4));
    CHECK(bn.running_mean.to_doubles()[c] == doctest::Approx(0.1 * xm));
    CHECK(bn.running_var.to_doubles()[c] == doctest::Approx(0.9 + 0.1 * xv2));  // unbiased
  }
  CHECK(bn.named_buffers().size() == 2);
  bn.eval();
  std::vector<double> ye = bn.forward(x).to_doubles();
  const double rm = bn.running_mean.to_doubles()[0], rv = bn.running_var.to_doubles()[0];
  CHECK(ye[0] == doctest::Approx((xv[0] - rm) / std::sqrt(rv + 1e-5)));
  bn.train();
  bn.weight.copy_from(random({3}, rng, 0.5, 1.5, false));
  Tensor xg = random({2, 4, 3}, rng);
  CHECK_GRADIENTS([&](const In&) { return bn.forward(xg); }, with_params(xg, bn));
}

namespace {

// Two replicas in one process: two threads meet in sum(), and each leaves with slot 0 + slot 1, added
// in that order on both (as MPI gives every rank the same bits).
struct ReplicaPair {
  std::barrier<> meet{2};
  std::vector<double> slot[2];
  struct Side : Replicas {
    ReplicaPair* pair;
    int me;
    Side(ReplicaPair* p, int i) : pair(p), me(i) {}
    template <class T>
    void add(T* data, int64_t n) {
      pair->slot[me].assign(data, data + n);
      pair->meet.arrive_and_wait();
      for (int64_t i = 0; i < n; ++i) data[i] = static_cast<T>(pair->slot[0][i] + pair->slot[1][i]);
      pair->meet.arrive_and_wait();  // both have read before either writes its slot again
    }
    void sum(float* data, int64_t n) override { add(data, n); }
    void sum(double* data, int64_t n) override { add(data, n); }
  };
  Side side[2] = {{this, 0}, {this, 1}};
};

// Rows [begin, end) of x [B, ...] as a new leaf.
Tensor rows(const Tensor& x, int64_t begin, int64_t end) {
  const int64_t per = x.numel() / x.dim(0);
  std::vector<double> v = x.to_doubles();
  Shape s = x.shape();
  s[0] = end - begin;
  Tensor out = Tensor::from(std::vector<double>(v.begin() + begin * per, v.begin() + end * per), s);
  out.set_requires_grad(true);
  return out;
}

}  // namespace

TEST_CASE("BatchNorm synchronised over two replicas matches one BatchNorm over all their rows") {
  Rng rng(4);
  Tensor x = random({5, 4, 3}, rng, -2, 2), up = random({5, 4, 3}, rng, -1, 1, false);
  auto make = [&] {
    auto bn = std::make_unique<BatchNorm>(3, DType::F64, 1e-5, 0.1);
    bn->weight.copy_from(Tensor::from(std::vector<double>{0.5, 1.5, -1.0}, {3}));
    bn->bias.copy_from(Tensor::from(std::vector<double>{0.1, -0.2, 0.3}, {3}));
    return bn;
  };
  // One BatchNorm over rows 0..4, the loss sum(y * up).
  auto whole = make();
  Tensor y = whole->forward(x);
  sum(mul(y, up)).backward();

  // Replica 0 takes rows [0, 2), replica 1 rows [2, 5); or, as filler, replica 1 runs row 0 without
  // contributing and replica 0 has every row.
  for (bool filler : {false, true}) {
    CAPTURE(filler);
    ReplicaPair pair;
    std::unique_ptr<BatchNorm> bn[2] = {make(), make()};
    Tensor in[2] = {rows(x, 0, filler ? 5 : 2), rows(x, filler ? 0 : 2, filler ? 1 : 5)};
    Tensor out[2];
    auto run = [&](int r) {
      bn[r]->sync = std::make_shared<BatchNorm::Sync>(BatchNorm::Sync{&pair.side[r], !(filler && r == 1)});
      out[r] = bn[r]->forward(in[r]);
      const int64_t first = filler || r == 0 ? 0 : 2;
      const double weight = filler && r == 1 ? 0.0 : 1.0;  // the trainer weights a filler's loss 0
      sum(mul(mul(out[r], rows(up, first, first + in[r].dim(0)).detach()), weight)).backward();
    };
    std::thread other(run, 1);
    run(0);
    other.join();
    const std::vector<double> yv = y.to_doubles(), gx = x.grad().to_doubles();
    std::vector<double> got_y = out[0].to_doubles(), got_gx = in[0].grad().to_doubles();
    if (!filler) {
      for (double v : out[1].to_doubles()) got_y.push_back(v);
      for (double v : in[1].grad().to_doubles()) got_gx.push_back(v);
    } else {
      for (double v : in[1].grad().to_doubles()) CHECK(v == 0.0);
    }
    test::check_close(got_y, yv, 1e-12);
    test::check_close(got_gx, gx, 1e-12);
    for (int r = 0; r < 2; ++r) {
      test::check_close(bn[r]->running_mean.to_doubles(), whole->running_mean.to_doubles(), 1e-12);
      test::check_close(bn[r]->running_var.to_doubles(), whole->running_var.to_doubles(), 1e-12);
    }
    // The trainer sums the parameters' gradients over the replicas.
    auto summed = [&](Tensor BatchNorm::*p) {
      std::vector<double> g = ((*bn[0]).*p).grad().to_doubles(), g1 = ((*bn[1]).*p).grad().to_doubles();
      for (size_t i = 0; i < g.size(); ++i) g[i] += g1[i];
      return g;
    };
    test::check_close(summed(&BatchNorm::weight), whole->weight.grad().to_doubles(), 1e-12);
    test::check_close(summed(&BatchNorm::bias), whole->bias.grad().to_doubles(), 1e-12);
  }
}

TEST_CASE("Dropout: reproducible from the seed counter, identity in eval") {
  auto seeds = std::make_shared<SeedCounter>();
  seeds->seed = 42;
  Dropout drop(0.5, seeds);
  Tensor x = Tensor::full({64}, 1.0);
  std::vector<double> a = drop.forward(x).to_doubles(), b = drop.forward(x).to_doubles();
  CHECK(a != b);  // a fresh seed per call
  seeds->count = 0;
  CHECK(drop.forward(x).to_doubles() == a);  // the same counter, the same masks
  int zeros = 0;
  for (double v : a) {
    zeros += v == 0.0;
    CHECK((v == 0.0 || v == 2.0));
  }
  CHECK(zeros > 10);
  CHECK(zeros < 54);
  drop.eval();
  CHECK(drop.forward(x).to_doubles() == x.to_doubles());
  CHECK_THROWS_AS(Dropout(1.0, seeds), Error);
}

TEST_CASE("FeedForward: names and gradient") {
  Rng rng(4);
  FeedForward ff(3, 2, 0.0, std::make_shared<SeedCounter>(), rng, DType::F64);
  CHECK(names(ff) == std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
  CHECK(ff.fc1->weight.shape() == Shape{6, 3});
  Tensor x = random({2, 2, 3}, rng);
  CHECK_GRADIENTS([&](const In&) { return ff.forward(x); }, with_params(x, ff));
}

TEST_CASE("sinusoidal positions") {
  Tensor pe = sinusoidal_positions(5, 6, DType::F64, Device::CPU);
  std::vector<double> v = pe.to_doubles();
  CHECK(v[0] == 0.0);
  CHECK(v[1] == 1.0);
  CHECK(v[3 * 6 + 2] == doctest::Approx(std::sin(3 / std::pow(10000.0, 2.0 / 6))));
  CHECK(v[3 * 6 + 3] == doctest::Approx(std::cos(3 / std::pow(10000.0, 2.0 / 6))));
}

TEST_CASE("las_alphas: global head 0, geometric from alpha_min to B, explicit list, softmax zeros") {
  AttentionSettings s;
  s.heads = 4;
  s.B = 0.5;
  s.max_len = 8;  // alpha_min defaults to 1/8
  std::vector<double> a = las_alphas(s);
  CHECK(a[0] == 0.0);
  CHECK(a[1] == doctest::Approx(0.125));
  CHECK(a[2] == doctest::Approx(0.25));
  CHECK(a[3] == doctest::Approx(0.5));
  s.alpha_min = 0.05;
  CHECK(las_alphas(s)[1] == doctest::Approx(0.05));
  s.alphas = {0, 1, 2, 3};
  CHECK(las_alphas(s) == s.alphas);
  s.alphas = {0.25};  // one rate: every head's
  CHECK(las_alphas(s) == std::vector<double>(4, 0.25));
  s.alphas = {1, 2};
  CHECK_THROWS_WITH_AS(las_alphas(s), doctest::Contains("alphas lists 2 rates for 4 heads"), Error);
  s.alphas = {0, 1, -1, 3};
  CHECK_THROWS_WITH_AS(las_alphas(s), doctest::Contains("alphas must be >= 0"), Error);
  s.alphas = {};
  s.B = 1.5;
  CHECK_THROWS_AS(las_alphas(s), Error);
  s.kind = AttentionKind::Softmax;
  CHECK(las_alphas(s) == std::vector<double>(4, 0.0));
  CHECK(parse_name(kAttentionKinds, "las-chunk", "attention") == AttentionKind::LasChunk);
  CHECK_THROWS_WITH_AS(parse_name(kAttentionKinds, "linear", "attention"),
                       doctest::Contains("attention = 'linear' is not one of softmax, las, las-chunk"), Error);
}

TEST_CASE("MultiHeadAttention: every kind, fused and reference, causal and bidirectional, with padding") {
  Rng rng(5);
  Tensor x = random({2, 7, 4}, rng);
  Tensor lengths = Tensor::from(std::vector<int32_t>{7, 4}, {2});
  for (AttentionKind kind : {AttentionKind::Softmax, AttentionKind::Las, AttentionKind::LasChunk})
    for (bool causal : {true, false})
      for (bool fused : {true, false}) {
        CAPTURE(name_of(kAttentionKinds, kind));
        CAPTURE(causal);
        CAPTURE(fused);
        AttentionSettings s;
        s.kind = kind;
        s.causal = causal;
        s.heads = 2;
        s.B = 0.5;
        s.P = 3;
        s.C = 3;
        s.fused = fused;
        MultiHeadAttention mha(4, s, rng, DType::F64);
        CHECK(names(mha) == std::vector<std::string>{"qkv.weight", "qkv.bias", "out.weight", "out.bias"});
        CHECK_GRADIENTS([&](const In&) { return mha.forward(x, lengths); }, with_params(x, mha));
      }
}

TEST_CASE("MultiHeadAttention: strict re-mask runs the reference; recorded weights match the output") {
  Rng rng(6);
  AttentionSettings s;
  s.heads = 2;
  s.B = 0.5;
  s.P = 3;
  s.strict_causal = true;
  MultiHeadAttention mha(4, s, rng, DType::F64);
  Tensor x = random({1, 5, 4}, rng);
  CHECK_GRADIENTS([&](const In&) { return mha.forward(x); }, with_params(x, mha));
  Tensor w;
  mha.forward(x, Tensor(), &w);
  CHECK(w.shape() == Shape{1, 2, 5, 5});
  std::vector<double> wv = w.to_doubles();
  CHECK(wv[0 * 5 + 1] == 0.0);  // strict: no weight on the future
  s.strict_causal = false;
  MultiHeadAttention plain(4, s, rng, DType::F64);
  plain.forward(x, Tensor(), &w);
  CHECK(w.to_doubles()[0 * 5 + 1] > 0.0);                 // pooling spreads weight one column ahead
  CHECK_THROWS_AS(MultiHeadAttention(5, s, rng), Error);  // 5 is not a multiple of 2 heads
}

TEST_CASE("smoothing_weights: box, gaussian and explicit kernels; the layer passes them to the op") {
  CHECK(smoothing_weights("box", 5, 0).empty());
  // sigma 0 -> the box of width 5's standard deviation, sqrt((25 - 1) / 12) = sqrt(2); cut at 3 sigma = 4.24.
  std::vector<double> g = smoothing_weights("gaussian", 5, 0);
  REQUIRE(g.size() == 9);
  double z = 0;
  for (int t = -4; t <= 4; ++t) z += std::exp(-t * t / 4.0);
  for (int t = -4; t <= 4; ++t) CHECK(g[t + 4] == doctest::Approx(std::exp(-t * t / 4.0) / z).epsilon(1e-12));
  CHECK(smoothing_weights("gaussian", 5, 0.5).size() == 3);  // 3 sigma = 1.5: offsets -1..1
  CHECK(smoothing_weights("gaussian", 1, 0) == std::vector<double>{1.0});
  CHECK(smoothing_weights("0.25/0.5/0.25", 5, 0) == std::vector<double>{0.25, 0.5, 0.25});
  CHECK_THROWS_WITH_AS(smoothing_weights("0.5/0.5", 5, 0), doctest::Contains("odd count"), Error);
  CHECK_THROWS_WITH_AS(smoothing_weights("triangle", 5, 0), doctest::Contains("'triangle'"), Error);
  CHECK_THROWS_WITH_AS(smoothing_weights("1//1", 5, 0), doctest::Contains("bad entry ''"), Error);
  CHECK_THROWS_WITH_AS(smoothing_weights("gaussian", 5, -1), doctest::Contains("sigma >= 0"), Error);

  Rng rng(7);
  AttentionSettings s;
  s.heads = 2;
  s.P = 5;
  s.smoothing = "0.1/0.6/0.3";
  MultiHeadAttention las(4, s, rng, DType::F64);
  CHECK(las.options().P == 3);  // the kernel sets the window
  CHECK(las.options().kernel == std::vector<double>{0.1, 0.6, 0.3});
  s.kind = AttentionKind::Softmax;
  MultiHeadAttention softmax(4, s, rng, DType::F64);
  CHECK(softmax.options().P == 1);
  CHECK(softmax.options().kernel.empty());
}

TEST_CASE("Linear and multi-head attention in Precision::Bf16 round their product operands; parameters stay float32") {
  Rng init(1), rng(2);
  Linear lin(6, 4, init);
  Tensor x = random({3, 5, 6}, rng).to(DType::F32);
  x.set_requires_grad(true);
  Tensor y32 = lin.forward(x);
  lin.set_precision(Precision::Bf16);
  Tensor y = lin.forward(x);
  CHECK(test::same_bits(
      y, add(matmul(test::bf16_rounded(x), test::bf16_rounded(lin.weight), false, true), lin.bias.detach())));
  CHECK_FALSE(test::same_bits(y, y32));
  sum(y).backward();
  CHECK(lin.weight.grad().dtype() == DType::F32);
  CHECK(lin.weight.dtype() == DType::F32);

  AttentionSettings s;
  s.kind = AttentionKind::Las;
  s.heads = 2;
  s.P = 3;
  s.max_len = 12;
  MultiHeadAttention mha(8, s, init);
  const Tensor xa = random({2, 12, 8}, rng).to(DType::F32);
  Tensor a32 = mha.forward(xa, Tensor());
  mha.set_precision(Precision::Bf16);
  CHECK(mha.qkv->precision() == Precision::Bf16);  // children follow
  Tensor a16 = mha.forward(xa, Tensor());
  CHECK_FALSE(test::same_bits(a16, a32));
  const std::vector<float> p = a16.to_floats(), q = a32.to_floats();
  for (size_t i = 0; i < p.size(); ++i) REQUIRE(std::abs(p[i] - q[i]) < 3e-2);
  CHECK_FALSE(mha.options().bf16);  // the layer's own options are unchanged; each forward sets the flag
}
