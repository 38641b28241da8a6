// `lasgrad demo`: the engine end to end on a generated task, with nothing but ops and autodiff.
// Three interleaved spirals in 2-D (a classic that a linear model cannot separate), a two-layer GELU
// network, full-batch gradient descent with momentum, accuracy on a held-out set drawn separately.
#include <cmath>
#include <cstdio>

#include "engine/ops.h"
#include "engine/rng.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace lasgrad::tools {

// n points per class on `classes` spiral arms with Gaussian noise: x [n*classes, 2], y [n*classes].
static void spirals(int64_t n, int classes, double noise, Rng& rng, std::vector<float>& x, std::vector<int32_t>& y) {
  for (int c = 0; c < classes; ++c)
    for (int64_t i = 0; i < n; ++i) {
      double r = static_cast<double>(i + 1) / n, t = 4.0 * r + 2 * M_PI * c / classes + noise * rng.normal();
      x.push_back(static_cast<float>(r * std::sin(t)));
      x.push_back(static_cast<float>(r * std::cos(t)));
      y.push_back(c);
    }
}

static double accuracy(const Tensor& logits, const std::vector<int32_t>& y) {
  auto v = logits.to_floats();
  int64_t classes = logits.dim(1), right = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    int64_t best = 0;
    for (int64_t c = 1; c < classes; ++c)
      if (v[i * classes + c] > v[i * classes + best]) best = c;
    right += best == y[i];
  }
  return static_cast<double>(right) / static_cast<double>(y.size());
}

int cmd_demo(int argc, char** argv) {
  cli::Flags flags("lasgrad demo", "Train a two-layer GELU network on three generated spirals and print the loss falling.");
  flags.option("steps", "600", "gradient steps")
      .option("hidden", "64", "hidden width")
      .option("lr", "0.5", "learning rate")
      .option("seed", "1", "random seed for data and weights");
  if (!flags.parse(argc, argv)) return 0;
  int64_t steps = flags.integer("steps"), hidden = flags.integer("hidden");
  double lr = flags.number("lr");
  if (steps < 1 || hidden < 1) throw cli::UsageError("--steps and --hidden must be positive");

  Rng rng(static_cast<uint64_t>(flags.integer("seed")));
  std::vector<float> xs, xt;
  std::vector<int32_t> ys, yt;
  spirals(200, 3, 0.15, rng, xs, ys);
  spirals(100, 3, 0.15, rng, xt, yt);
  Tensor x = Tensor::from(xs, {static_cast<int64_t>(ys.size()), 2}), y = Tensor::from(ys, {static_cast<int64_t>(ys.size())});
  Tensor x_test = Tensor::from(xt, {static_cast<int64_t>(yt.size()), 2});

  auto init = [&](const Shape& shape, double scale) {
    std::vector<float> v(static_cast<size_t>(numel_of(shape)));
    for (float& e : v) e = static_cast<float>(scale * rng.normal());
    return Tensor::from(v, shape).set_requires_grad();
  };
  std::vector<Tensor> params = {init({2, hidden}, 1.0), Tensor::zeros({hidden}).set_requires_grad(),
                                init({hidden, 3}, 1.0 / std::sqrt(static_cast<double>(hidden))),
                                Tensor::zeros({3}).set_requires_grad()};
  std::vector<Tensor> velocity;
  for (const Tensor& p : params) velocity.push_back(Tensor::zeros(p.shape()));
  auto forward = [&](const Tensor& in) {
    return add(matmul(gelu(add(matmul(in, params[0]), params[1])), params[2]), params[3]);
  };

  std::printf("lasgrad demo: 3 spirals, %zu training and %zu held-out points, 2 -> %lld -> 3 GELU network\n",
              ys.size(), yt.size(), static_cast<long long>(hidden));
  for (int64_t step = 0; step <= steps; ++step) {
    for (Tensor& p : params) p.zero_grad();
    Tensor loss = cross_entropy(forward(x), y);
    if (!std::isfinite(loss.item())) throw Error("loss is not finite at step " + std::to_string(step));
    if (step % (steps / 10 > 0 ? steps / 10 : 1) == 0) std::printf("step %5lld  loss %.4f\n", static_cast<long long>(step), loss.item());
    if (step == steps) break;
    loss.backward();
    NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) {  // v = 0.9 v + g;  p -= lr v
      velocity[i] = add(mul(velocity[i], 0.9), params[i].grad());
      params[i].copy_from(sub(params[i], mul(velocity[i], lr)));
    }
  }
  NoGradGuard no_grad;
  std::printf("held-out accuracy %.1f%% (chance 33.3%%)\n", 100 * accuracy(forward(x_test), yt));
  return 0;
}

}  // namespace lasgrad::tools
