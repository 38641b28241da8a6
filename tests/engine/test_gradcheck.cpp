// The checker itself: it passes a correct backward and catches wrong ones, down to a 1% error in one entry.
#include "tests/engine/helpers.h"

using namespace lasgrad;
using lasgrad::test::random;

// y = x * x with a backward that scales the gradient of entry `bad` by `factor` (1 = correct).
static Tensor square_with_faulty_backward(const Tensor& x, int64_t bad, double factor) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = mul(x, x);
  }
  if (needs_grad({x}))
    record("faulty_square", y, {x}, [x, bad, factor](const Tensor& g) -> Grads {
      Tensor dx = mul(mul(g, x), 2.0);
      if (bad >= 0) dx.data<double>()[bad] *= factor;
      return {dx};
    });
  return y;
}

TEST_CASE("the checker passes a correct backward") {
  Rng rng(1);
  Tensor x = random({3, 4}, rng);
  auto r =
      check_gradients([](const std::vector<Tensor>& in) { return square_with_faulty_backward(in[0], -1, 1.0); }, {x});
  CHECK(r.ok);
  CHECK(r.checked == 12);
  CHECK(r.worst < 0.1);
}

TEST_CASE("the checker catches a 1% error in a single gradient entry") {
  Rng rng(2);
  for (int64_t bad : {0, 5, 11}) {
    Tensor x = random({3, 4}, rng, 0.05, 1.0);  // gradients 2 x w are well above the checker's floor
    auto r = check_gradients(
        [bad](const std::vector<Tensor>& in) { return square_with_faulty_backward(in[0], bad, 1.01); }, {x});
    CHECK_FALSE(r.ok);
    CHECK(r.report.find("entry " + std::to_string(bad) + ":") != std::string::npos);
  }
}

TEST_CASE("the checker catches a wrong sign and a missing gradient") {
  Rng rng(3);
  Tensor x = random({5}, rng, 0.1, 1.0);
  CHECK_FALSE(
      check_gradients([](const std::vector<Tensor>& in) { return square_with_faulty_backward(in[0], 2, -1.0); }, {x})
          .ok);
  CHECK_FALSE(
      check_gradients([](const std::vector<Tensor>& in) { return square_with_faulty_backward(in[0], 4, 0.0); }, {x})
          .ok);
}

TEST_CASE("the checker refuses float32 inputs") {
  Tensor x = Tensor::full({2}, 1.0, DType::F32);
  x.set_requires_grad();
  CHECK_THROWS_AS(check_gradients([](const std::vector<Tensor>& in) { return mul(in[0], in[0]); }, {x}), Error);
}
