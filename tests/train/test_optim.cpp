// Adam/AdamW against torch.optim (tests/reference/make_adamw_fixture.py), clipping, schedules.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>

#include "engine/safetensors.h"
#include "train/optim.h"
#include "train/schedule.h"

using namespace lasgrad;
using namespace lasgrad::train;

static std::vector<double> numbers(const std::string& csv) {
  std::vector<double> out;
  std::stringstream in(csv);
  for (std::string x; std::getline(in, x, ',');) out.push_back(std::stod(x));
  return out;
}

// Replays the fixture's gradients through our optimizer and compares every parameter after every step.
static void replay(const SafeTensors& f, const std::string& prefix, bool decoupled) {
  const std::vector<std::string> names = {"proj.weight", "proj.bias", "embed.weight"};
  NamedTensors params;
  for (const auto& n : names) params.emplace_back(n, f.at(prefix + ".init." + n).clone().set_requires_grad());
  const auto& meta = f.metadata;
  AdamConfig cfg{std::stod(meta.at("beta1")), std::stod(meta.at("beta2")), std::stod(meta.at("eps")),
                 std::stod(meta.at("weight_decay")), decoupled};
  Adam opt(params, cfg, {"bias", "embed"});
  CHECK(opt.decays("proj.weight"));
  CHECK_FALSE(opt.decays("proj.bias"));
  CHECK_FALSE(opt.decays("embed.weight"));
  std::vector<double> lrs = numbers(meta.at("lrs"));
  double max_norm = std::stod(meta.at("max_norm"));
  for (int t = 1; t <= std::stoi(meta.at("steps")); ++t) {
    std::vector<Tensor> ps;
    for (auto& [n, p] : params) {
      p.impl()->grad = f.at(prefix + ".grad." + std::to_string(t) + "." + n).clone();
      ps.push_back(p);
    }
    opt.step(lrs[t - 1], clip_scale(grad_norm(ps), max_norm));
    for (auto& [n, p] : params) {
      auto got = p.to_doubles(), want = f.at(prefix + ".after." + std::to_string(t) + "." + n).to_doubles();
      for (size_t i = 0; i < got.size(); ++i) {
        INFO(prefix << " step " << t << " " << n << "[" << i << "]: got " << got[i] << ", torch " << want[i]);
        CHECK(std::abs(got[i] - want[i]) <= 2e-6 * (1 + std::abs(want[i])));
      }
    }
  }
  CHECK(opt.steps() == 4);
}

TEST_CASE("AdamW and Adam match torch.optim step for step, with clipping and no-decay groups") {
  SafeTensors f = load_safetensors(LASGRAD_REFERENCE_DIR "/adamw_fixture.safetensors");
  SUBCASE("adamw") { replay(f, "adamw", true); }
  SUBCASE("adam") { replay(f, "adam", false); }
}

TEST_CASE("the optimizer state round-trips and is checked") {
  Tensor p = Tensor::from(std::vector<float>{1, 2, 3}, {3}).set_requires_grad();
  Adam a({{"w", p}}, {}, {});
  p.impl()->grad = Tensor::from(std::vector<float>{0.1f, -0.2f, 0.3f}, {3});
  a.step(0.1);
  Tensor q = Tensor::from(std::vector<float>{1, 2, 3}, {3}).set_requires_grad();
  Adam b({{"w", q}}, {}, {});
  b.load_state(a.state());
  CHECK(b.steps() == 1);
  CHECK(b.state()[0].second.to_doubles() == a.state()[0].second.to_doubles());
  Adam c({{"other", q}}, {}, {});
  CHECK_THROWS_WITH_AS(c.load_state(a.state()), doctest::Contains("adam.m.other"), Error);
}

TEST_CASE("adam_update refuses mismatched tensors") {
  Tensor p = Tensor::zeros({3}), g = Tensor::zeros({4}), m = Tensor::zeros({3}), v = Tensor::zeros({3});
  AdamStep s{1e-3, 0.9, 0.999, 1e-8, 0, true, 1};
  CHECK_THROWS_WITH_AS(adam_update(s, p, g, m, v), doctest::Contains("shapes differ"), Error);
  Tensor g64 = Tensor::zeros({3}, DType::F64);
  CHECK_THROWS_WITH_AS(adam_update(s, p, g64, m, v), doctest::Contains("dtypes differ"), Error);
  Tensor i = Tensor::zeros({3}, DType::I32);
  CHECK_THROWS_WITH_AS(adam_update(s, i, i, i, i), doctest::Contains("F32 or F64"), Error);
}

TEST_CASE("global-norm clipping follows clip_grad_norm_") {
  Tensor a = Tensor::zeros({2}).set_requires_grad(), b = Tensor::zeros({1}).set_requires_grad();
  a.impl()->grad = Tensor::from(std::vector<float>{3, 0}, {2});
  b.impl()->grad = Tensor::from(std::vector<float>{4}, {1});
  Tensor none = Tensor::zeros({4}).set_requires_grad();  // no gradient: counts 0
  double n = grad_norm({a, none, b});
  CHECK(n == doctest::Approx(5.0));
  CHECK(clip_scale(n, 1.0) == doctest::Approx(1.0 / (5.0 + 1e-6)));
  CHECK(clip_scale(n, 10.0) == 1.0);
  CHECK(clip_scale(n, 0.0) == 1.0);  // off
  b.impl()->grad = Tensor::from(std::vector<float>{std::nanf("")}, {1});
  CHECK(std::isnan(grad_norm({a, b})));  // the trainer stops on it
}

TEST_CASE("schedules: constant, warm-up + cosine, reduce-on-plateau") {
  Schedule c({.kind = ScheduleKind::Constant, .lr = 0.1, .warmup = 4});
  CHECK(c.lr(0) == doctest::Approx(0.025));
  CHECK(c.lr(3) == doctest::Approx(0.1));
  CHECK(c.lr(1000) == doctest::Approx(0.1));

  Schedule cos({.kind = ScheduleKind::Cosine, .lr = 1.0, .warmup = 10, .total = 110, .min_lr = 0.1});
  CHECK(cos.lr(9) == doctest::Approx(1.0));
  CHECK(cos.lr(10) == doctest::Approx(1.0));
  CHECK(cos.lr(60) == doctest::Approx(0.55));  // half way: the mean of peak and floor
  CHECK(cos.lr(110) == doctest::Approx(0.1));
  CHECK(cos.lr(500) == doctest::Approx(0.1));
  for (int s = 11; s <= 110; ++s) CHECK(cos.lr(s) <= cos.lr(s - 1));

  // torch ReduceLROnPlateau(mode="min", factor=0.5, patience=2): drops after the 3rd bad evaluation.
  Schedule p({.kind = ScheduleKind::Plateau, .lr = 1.0, .factor = 0.5, .patience = 2});
  CHECK_FALSE(p.on_eval(1.0));
  CHECK_FALSE(p.on_eval(0.5));
  CHECK_FALSE(p.on_eval(0.6));
  CHECK_FALSE(p.on_eval(0.6));
  CHECK(p.on_eval(0.6));
  CHECK(p.lr(0) == doctest::Approx(0.5));
  CHECK_FALSE(p.on_eval(0.4));  // an improvement resets the count
  CHECK(p.state().best == doctest::Approx(0.4));

  CHECK_THROWS_AS(Schedule({.kind = ScheduleKind::Cosine, .warmup = 10, .total = 10}), Error);
}
