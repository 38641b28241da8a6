// Finite-difference gradient checks of every op, on random float64 inputs with broadcast shapes,
// size-1 axes and non-square shapes.
#include "tests/engine/helpers.h"

using namespace lasgrad;
using lasgrad::test::random;
using In = std::vector<Tensor>;

TEST_CASE("binary ops with broadcasting") {
  Rng rng(1);
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {3, 1}}, {{2, 3, 4}, {1, 4}}, {{2, 1, 4}, {3, 1}},
      {{1}, {2, 3}},          {{}, {2, 3}},        {{5, 1}, {1, 7}},    {{1, 1, 1}, {4, 1, 2}}};
  for (auto [sa, sb] : pairs) {
    CAPTURE(shape_str(sa));
    CAPTURE(shape_str(sb));
    Tensor a = random(sa, rng), b = random(sb, rng, 0.5, 2.0);  // b away from 0 for div
    CHECK_GRADIENTS([](const In& in) { return add(in[0], in[1]); }, (In{a, b}));
    CHECK_GRADIENTS([](const In& in) { return sub(in[0], in[1]); }, (In{a, b}));
    CHECK_GRADIENTS([](const In& in) { return mul(in[0], in[1]); }, (In{a, b}));
    CHECK_GRADIENTS([](const In& in) { return div(in[0], in[1]); }, (In{a, b}));
    Tensor a_pos = random(sa, rng, 0.5, 2.0);  // the broadcast operand as the denominator
    CHECK_GRADIENTS([](const In& in) { return div(in[1], in[0]); }, (In{a_pos, b}));
  }
}

TEST_CASE("a gradient reaches only the inputs that require it") {
  Rng rng(2);
  Tensor a = random({3, 2}, rng), c = random({2}, rng, -1, 1, false);
  CHECK_GRADIENTS([](const In& in) { return mul(in[0], in[1]); }, (In{a, c}));
  CHECK_FALSE(c.grad().defined());
}

TEST_CASE("scalar forms and unary ops") {
  Rng rng(3);
  Tensor x = random({3, 5}, rng), pos = random({4, 1, 3}, rng, 0.2, 3.0);
  CHECK_GRADIENTS([](const In& in) { return add(in[0], 1.5); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return sub(in[0], 1.5); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return mul(in[0], -2.5); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return div(in[0], 4.0); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return rsub(2.0, in[0]); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return rdiv(2.0, in[0]); }, (In{pos}));
  CHECK_GRADIENTS([](const In& in) { return neg(in[0]); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return exp(in[0]); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return log(in[0]); }, (In{pos}));
  CHECK_GRADIENTS([](const In& in) { return sqrt(in[0]); }, (In{pos}));
  CHECK_GRADIENTS([](const In& in) { return tanh(in[0]); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return gelu(in[0], Gelu::Erf); }, (In{mul(x, 3.0).detach().set_requires_grad()}));
  CHECK_GRADIENTS([](const In& in) { return gelu(in[0], Gelu::Tanh); }, (In{mul(x, 3.0).detach().set_requires_grad()}));
  // relu: keep inputs away from the kink at 0, where the central difference is not the derivative.
  std::vector<double> v = x.to_doubles();
  for (double& e : v) e = e < 0 ? e - 0.1 : e + 0.1;
  Tensor away = Tensor::from(v, x.shape()).set_requires_grad();
  CHECK_GRADIENTS([](const In& in) { return relu(in[0]); }, (In{away}));
}

TEST_CASE("matmul: 2-D, batched, transposed, and batched times a weight") {
  Rng rng(4);
  CHECK_GRADIENTS([](const In& in) { return matmul(in[0], in[1]); }, (In{random({3, 5}, rng), random({5, 2}, rng)}));
  CHECK_GRADIENTS([](const In& in) { return matmul(in[0], in[1]); }, (In{random({1, 1}, rng), random({1, 4}, rng)}));
  CHECK_GRADIENTS([](const In& in) { return matmul(in[0], in[1]); },
                  (In{random({2, 3, 4, 5}, rng), random({2, 3, 5, 2}, rng)}));
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      Tensor a = random(ta ? Shape{2, 5, 3} : Shape{2, 3, 5}, rng),
             b = random(tb ? Shape{2, 4, 5} : Shape{2, 5, 4}, rng);
      CHECK_GRADIENTS([ta, tb](const In& in) { return matmul(in[0], in[1], ta, tb); }, (In{a, b}));
    }
  CHECK_GRADIENTS([](const In& in) { return matmul(in[0], in[1]); }, (In{random({2, 3, 4}, rng), random({4, 6}, rng)}));
  CHECK_GRADIENTS([](const In& in) { return matmul(in[0], in[1], false, true); },
                  (In{random({2, 3, 4}, rng), random({6, 4}, rng)}));
}

TEST_CASE("shape ops") {
  Rng rng(5);
  Tensor x = random({2, 3, 4}, rng);
  CHECK_GRADIENTS([](const In& in) { return reshape(in[0], {4, -1}); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return permute(in[0], {2, 0, 1}); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return transpose(in[0], -1, -2); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return slice(in[0], 1, 1, 2); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return slice(in[0], -1, 3, 1); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return concat({in[0], in[1], in[0]}, 1); }, (In{x, random({2, 1, 4}, rng)}));
  CHECK_GRADIENTS(
      [](const In& in) {
        auto parts = split(in[0], 2, {1, 3});
        return mul(sum(parts[0]), sum(parts[1]));  // both parts matter, and they interact
      },
      (In{x}));
}

TEST_CASE("reductions and broadcasting") {
  Rng rng(6);
  Tensor x = random({2, 3, 4}, rng);
  CHECK_GRADIENTS([](const In& in) { return sum(in[0], {1}); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return sum(in[0], {0, 2}, true); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return sum(in[0], {-1}); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return mean(in[0], {0, 1}); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return sum(in[0]); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return mean(in[0]); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return broadcast_to(in[0], {2, 3, 4}); }, (In{random({3, 1}, rng)}));
  CHECK_GRADIENTS([](const In& in) { return sum_to_shape(in[0], {3, 1}); }, (In{x}));
}

TEST_CASE("softmax, with and without an additive mask") {
  Rng rng(7);
  Tensor x = random({2, 3, 5}, rng, -3, 3);
  CHECK_GRADIENTS([](const In& in) { return softmax(in[0]); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return softmax(in[0]); }, (In{random({4, 1}, rng)}));
  std::vector<double> m(15, 0.0);
  m[1] = m[7] = m[14] = -INFINITY;  // masked entries, broadcast over the batch axis
  Tensor mask = Tensor::from(m, {3, 5});
  CHECK_GRADIENTS([mask](const In& in) { return softmax(in[0], mask); }, (In{x}));
  CHECK_GRADIENTS([](const In& in) { return softmax(in[0], in[1]); }, (In{x, random({1, 5}, rng)}));
}

TEST_CASE("cross-entropy, including an ignored target") {
  Rng rng(8);
  Tensor logits = random({5, 7}, rng, -2, 2);
  Tensor targets = Tensor::from(std::vector<int32_t>{3, 0, -100, 6, 3}, {5});
  CHECK_GRADIENTS([targets](const In& in) { return cross_entropy(in[0], targets); }, (In{logits}));
  Tensor one = Tensor::from(std::vector<int32_t>{1}, {1});
  CHECK_GRADIENTS([one](const In& in) { return cross_entropy(in[0], one); }, (In{random({1, 2}, rng)}));
}

TEST_CASE("layer norm: input, gain and bias") {
  Rng rng(9);
  CHECK_GRADIENTS([](const In& in) { return layer_norm(in[0], in[1], in[2]); },
                  (In{random({2, 3, 6}, rng), random({6}, rng, 0.5, 1.5), random({6}, rng)}));
  CHECK_GRADIENTS([](const In& in) { return layer_norm(in[0], in[1], in[2], 1e-3); },
                  (In{random({4, 2}, rng), random({2}, rng, 0.5, 1.5), random({2}, rng)}));
}

TEST_CASE("embedding scatter-adds repeated ids") {
  Rng rng(10);
  Tensor ids = Tensor::from(std::vector<int32_t>{2, 0, 2, 4, 2, 1}, {2, 3});
  CHECK_GRADIENTS([ids](const In& in) { return embedding(in[0], ids); }, (In{random({5, 3}, rng)}));
}

TEST_CASE("dropout, masked fill and sequence pooling") {
  Rng rng(11);
  Tensor x = random({2, 7, 3}, rng);
  CHECK_GRADIENTS([](const In& in) { return dropout(in[0], 0.3, 42, true); }, (In{x}));
  Tensor mask = Tensor::from(std::vector<int32_t>{0, 1, 0, 0, 1, 0, 0}, {7, 1});
  CHECK_GRADIENTS([mask](const In& in) { return masked_fill(in[0], mask, -5.0); }, (In{x}));
  for (int64_t p : {1, 3, 5, 9}) {  // 9 > L: the window covers the whole sequence and the padding
    CAPTURE(p);
    CHECK_GRADIENTS([p](const In& in) { return avg_pool_seq(in[0], p); }, (In{x}));
  }
  CHECK_GRADIENTS([](const In& in) { return avg_pool_seq(in[0], 3); }, (In{random({2, 2, 1, 4}, rng)}));
  // A non-symmetric kernel: the backward must mirror it. 11 weights over L = 7 reach past both ends.
  for (const std::vector<double>& w :
       {std::vector<double>{0.1, 0.7, -0.3}, std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}}) {
    CAPTURE(w.size());
    CHECK_GRADIENTS([w](const In& in) { return conv_seq(in[0], w); }, (In{x}));
  }
}

TEST_CASE("a composed expression: a two-layer network with a loss") {
  Rng rng(12);
  Tensor x = random({4, 3}, rng, -1, 1, false);
  Tensor targets = Tensor::from(std::vector<int32_t>{0, 1, 1, 2}, {4});
  CHECK_GRADIENTS(
      [x, targets](const In& in) {
        Tensor h = gelu(add(matmul(x, in[0]), in[1]));
        return cross_entropy(add(matmul(layer_norm(h, in[2], in[3]), in[4]), in[5]), targets);
      },
      (In{random({3, 5}, rng), random({5}, rng), random({5}, rng, 0.5, 1.5), random({5}, rng), random({5, 3}, rng),
          random({3}, rng)}));
}
