#include "layers/layers.h"

#include <cmath>
#include <vector>

namespace lasgrad {

static Tensor uniform(const Shape& s, double bound, Rng& rng, DType dtype) {
  std::vector<double> v(static_cast<size_t>(numel_of(s)));
  for (double& x : v) x = rng.uniform(-bound, bound);
  return Tensor::from(v, s, dtype);
}

Linear::Linear(int64_t in, int64_t out, Rng& rng, DType dtype, bool with_bias) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  weight = add_parameter("weight", uniform({out, in}, bound, rng, dtype));
  if (with_bias) bias = add_parameter("bias", uniform({out}, bound, rng, dtype));
}

Tensor Linear::forward(const Tensor& x) const {
  const bool bf16 = precision() == Precision::Bf16;
  Tensor y =
      bf16 ? matmul(cast(x, DType::BF16), cast(weight, DType::BF16), false, true) : matmul(x, weight, false, true);
  return bias.defined() ? add(y, bias) : y;
}

Embedding::Embedding(int64_t vocab, int64_t d, Rng& rng, DType dtype) {
  std::vector<double> v(static_cast<size_t>(vocab * d));
  for (double& x : v) x = rng.normal();
  weight = add_parameter("weight", Tensor::from(v, {vocab, d}, dtype));
}

Tensor Embedding::forward(const Tensor& ids) const { return embedding(weight, ids); }

LayerNorm::LayerNorm(int64_t d, DType dtype, double eps) : eps(eps) {
  weight = add_parameter("weight", Tensor::full({d}, 1.0, dtype));
  bias = add_parameter("bias", Tensor::zeros({d}, dtype));
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, weight, bias, eps); }

BatchNorm::BatchNorm(int64_t d, DType dtype, double eps, double momentum) : eps(eps), momentum(momentum) {
  weight = add_parameter("weight", Tensor::full({d}, 1.0, dtype));
  bias = add_parameter("bias", Tensor::zeros({d}, dtype));
  running_mean = add_buffer("running_mean", Tensor::zeros({d}, dtype));
  running_var = add_buffer("running_var", Tensor::full({d}, 1.0, dtype));
}

// x [B, L, d] -> [B, L, d].
Tensor BatchNorm::forward(const Tensor& x) {
  if (x.ndim() != 3) throw Error("BatchNorm: expects [B, L, d], got " + shape_str(x.shape()));
  Tensor mu, var;
  if (training()) {
    // Sums over (batch, positions), and over the replicas when synchronised; n counts their positions.
    double n = static_cast<double>(x.dim(0) * x.dim(1));
    auto total = [&](Tensor s) {  // [d]
      if (!sync) return s;
      if (!sync->contributes) s = mul(s, 0.0);
      return replica_sum(s, *sync->replicas);
    };
    if (sync) {
      if (!sync->contributes) n = 0;
      sync->replicas->sum(&n, 1);
    }
    mu = mul(total(sum(x, {0, 1})), 1.0 / n);  // [d]
    Tensor centred = sub(x, mu);
    var = mul(total(sum(mul(centred, centred), {0, 1})), 1.0 / n);  // biased, as the normalisation uses
    NoGradGuard no_grad;
    running_mean.copy_from(add(mul(running_mean, 1 - momentum), mul(mu.detach(), momentum)));
    running_var.copy_from(add(mul(running_var, 1 - momentum), mul(var.detach(), momentum * n / std::max(n - 1, 1.0))));
  } else {
    mu = running_mean;
    var = running_var;
  }
  Tensor inv = rdiv(1.0, sqrt(add(var, eps)));  // [d]
  return add(mul(sub(x, mu), mul(inv, weight)), bias);
}

Dropout::Dropout(double p, std::shared_ptr<SeedCounter> seeds) : p(p), seeds_(std::move(seeds)) {
  if (!(p >= 0 && p < 1)) throw Error("Dropout: p must be in [0, 1), got " + std::to_string(p));
}

Tensor Dropout::forward(const Tensor& x) const {
  if (!training() || p == 0) return x;
  return dropout(x, p, seeds_->next(), true);
}

FeedForward::FeedForward(int64_t d, int64_t expand, double p, std::shared_ptr<SeedCounter> seeds, Rng& rng,
                         DType dtype) {
  fc1 = std::make_shared<Linear>(d, expand * d, rng, dtype);
  fc2 = std::make_shared<Linear>(expand * d, d, rng, dtype);
  drop = std::make_shared<Dropout>(p, std::move(seeds));
  add_child("fc1", fc1);
  add_child("fc2", fc2);
  add_child("drop", drop);
}

Tensor FeedForward::forward(const Tensor& x) const { return fc2->forward(drop->forward(gelu(fc1->forward(x)))); }

Tensor sinusoidal_positions(int64_t L, int64_t d, DType dtype, Device device) {
  std::vector<double> pe(static_cast<size_t>(L * d));
  for (int64_t p = 0; p < L; ++p)
    for (int64_t i = 0; i < d; ++i) {
      const double angle = static_cast<double>(p) / std::pow(10000.0, static_cast<double>(i / 2 * 2) / d);
      pe[p * d + i] = i % 2 == 0 ? std::sin(angle) : std::cos(angle);
    }
  return Tensor::from(pe, {L, d}, dtype, device);
}

Tensor SinusoidalPositions::forward(const Tensor& x) {
  if (x.ndim() != 3 || x.dim(2) != d_)
    throw Error("SinusoidalPositions: expects [B, L, " + std::to_string(d_) + "], got " + shape_str(x.shape()));
  const int64_t L = x.dim(1);
  if (!table_.defined() || table_.dim(0) != L || table_.dtype() != x.dtype() || table_.device() != x.device())
    table_ = sinusoidal_positions(L, d_, x.dtype(), x.device());
  return add(x, table_);
}

}  // namespace lasgrad
