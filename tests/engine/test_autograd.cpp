// The tape: accumulation, fan-out, deep graphs, freeing, no-grad scopes and the error messages.
#include "tests/engine/helpers.h"

using namespace lasgrad;
using lasgrad::test::error_of;
using lasgrad::test::random;

TEST_CASE("gradients accumulate into leaves until zeroed") {
  Tensor x = Tensor::from(std::vector<double>{1, 2, 3}, {3}).set_requires_grad();
  sum(mul(x, 2.0)).backward();
  sum(mul(x, 2.0)).backward();
  CHECK(x.grad().to_doubles() == std::vector<double>{4, 4, 4});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  sum(mul(x, 3.0)).backward();
  CHECK(x.grad().to_doubles() == std::vector<double>{3, 3, 3});
}

TEST_CASE("a tensor used twice receives both contributions") {
  Tensor x = Tensor::from(std::vector<double>{1, -2}, {2}).set_requires_grad();
  Tensor h = exp(x);
  sum(add(mul(h, x), h)).backward();  // d/dx (e^x x + e^x) = e^x (x + 2)
  auto g = x.grad().to_doubles();
  CHECK(g[0] == doctest::Approx(std::exp(1.0) * 3));
  CHECK(g[1] == doctest::Approx(std::exp(-2.0) * 0));
  Tensor y = Tensor::from(std::vector<double>{3}, {1}).set_requires_grad();
  sum(mul(y, y)).backward();  // the same leaf twice in one op
  CHECK(y.grad().item() == doctest::Approx(6));
}

TEST_CASE("a 10,000-node chain runs backward without recursion") {
  Tensor x = Tensor::from(std::vector<double>{1.0}, {1}).set_requires_grad();
  Tensor h = x;
  for (int i = 0; i < 10000; ++i) h = add(h, 0.5);
  sum(h).backward();
  CHECK(x.grad().item() == 1.0);
  CHECK(h.item() == 5001.0);
}

TEST_CASE("backward frees the graph and its saved tensors") {
  Tensor x = Tensor::from(std::vector<double>{0.5, 1.5}, {2}).set_requires_grad();
  Tensor h = exp(x);
  std::weak_ptr<Storage> saved = h.impl()->storage;
  Tensor loss = sum(mul(h, h));
  h = Tensor();
  CHECK_FALSE(saved.expired());  // held by the graph
  loss.backward();
  CHECK(saved.expired());  // released with the nodes that saved it
  std::string e = error_of([&] { loss.backward(); });
  CHECK(e.find("already freed") != std::string::npos);
}

TEST_CASE("a no-grad scope records nothing") {
  Tensor x = Tensor::from(std::vector<double>{1, 2}, {2}).set_requires_grad();
  Tensor y;
  {
    NoGradGuard guard;
    CHECK_FALSE(grad_enabled());
    y = mul(x, x);
  }
  CHECK(grad_enabled());
  CHECK_FALSE(y.requires_grad());
  CHECK(y.is_leaf());
  CHECK(error_of([&] { sum(y).backward(); }).find("does not require grad") != std::string::npos);
}

TEST_CASE("errors name the op and the shapes") {
  Rng rng(1);
  Tensor a = random({2, 3}, rng), b = random({4, 3}, rng);
  std::string e = error_of([&] { add(a, b); });
  CHECK(e.find("add") == 0);
  CHECK(e.find("[2, 3]") != std::string::npos);
  CHECK(e.find("[4, 3]") != std::string::npos);
  e = error_of([&] { matmul(a, b); });
  CHECK(e.find("matmul") == 0);
  CHECK(e.find("inner sizes") != std::string::npos);

  e = error_of([&] { mul(a, 2.0).backward(); });
  CHECK(e.find("[2, 3]") != std::string::npos);
  CHECK(e.find("seed") != std::string::npos);

  // Two devices: an empty CUDA tensor needs no allocation, so this runs on a CPU-only build too.
  Tensor on_gpu = Tensor::empty({0}, DType::F32, Device::CUDA), on_cpu = Tensor::empty({0}, DType::F32);
  e = error_of([&] { add(on_cpu, on_gpu); });
  CHECK(e.find("add: operands are on two devices") == 0);

  Tensor ids = Tensor::from(std::vector<int32_t>{1}, {1});
  CHECK(error_of([&] { exp(ids); }).find("exp: input must be float32 or float64") == 0);
}

TEST_CASE("backward with an explicit seed on a non-scalar output") {
  Tensor x = Tensor::from(std::vector<double>{1, 2, 3}, {3}).set_requires_grad();
  Tensor y = mul(x, x);
  y.backward(Tensor::from(std::vector<double>{1, 0, 2}, {3}));
  CHECK(x.grad().to_doubles() == std::vector<double>{2, 0, 12});
  CHECK(error_of([&] { mul(x, 1.0).backward(Tensor::zeros({2}, DType::F64)); }).find("seed gradient") !=
        std::string::npos);
}

TEST_CASE("reshape shares storage; detach drops the graph") {
  Tensor x = Tensor::from(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}).set_requires_grad();
  Tensor r = reshape(x, {3, -1});
  CHECK(r.shape() == Shape{3, 2});
  CHECK(r.raw() == x.raw());
  CHECK(r.requires_grad());
  Tensor d = r.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.raw() == x.raw());
  CHECK(error_of([&] { reshape(x, {4, -1}); }).find("reshape") == 0);
}

TEST_CASE("determinism: the same computation gives the same bits") {
  auto run = [] {
    Rng rng(7);
    Tensor a = random({33, 17}, rng), b = random({17, 9}, rng);
    Tensor loss = sum(tanh(matmul(a, b)));
    loss.backward();
    return a.grad().to_doubles();
  };
  CHECK(run() == run());
}
