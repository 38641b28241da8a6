#include "train/optim.h"

#include <cmath>

namespace lasgrad::train {

template <class T>
static void adam_loop(const AdamStep& s, T* p, const T* g, T* m, T* v, int64_t n) {
  // PyTorch's order of operations (torch/optim/adamw.py, single-tensor path), in the parameter's type.
  const T b1 = T(s.beta1), b2 = T(s.beta2), scale = T(s.grad_scale), wd = T(s.weight_decay);
  const T decay = T(1.0 - s.lr * s.weight_decay);
  const T step_size = T(s.lr / (1.0 - std::pow(s.beta1, double(s.t))));
  const T bc2_sqrt = T(std::sqrt(1.0 - std::pow(s.beta2, double(s.t))));
  const T eps = T(s.eps);
  for (int64_t i = 0; i < n; ++i) {
    T gi = g[i] * scale;
    if (s.decoupled)
      p[i] *= decay;
    else
      gi += wd * p[i];
    m[i] = m[i] * b1 + (T(1) - b1) * gi;  // torch: m.lerp_(g, 1 - b1)
    v[i] = v[i] * b2 + (T(1) - b2) * gi * gi;
    p[i] -= step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps);
  }
}

void adam_update(const AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v) {
  if (p.shape() != g.shape() || p.shape() != m.shape() || p.shape() != v.shape())
    throw Error("adam_update: shapes differ: p " + shape_str(p.shape()) + ", g " + shape_str(g.shape()));
  if (g.dtype() != p.dtype() || m.dtype() != p.dtype() || v.dtype() != p.dtype())
    throw Error("adam_update: dtypes differ");
  if (p.device() != Device::CPU || g.device() != Device::CPU || m.device() != Device::CPU || v.device() != Device::CPU)
    throw Error(std::string("adam_update: no fused kernel for ") + device_name(p.device()) + " tensors yet");
  if (p.dtype() == DType::F32)
    adam_loop<float>(s, p.data<float>(), g.data<float>(), m.data<float>(), v.data<float>(), p.numel());
  else if (p.dtype() == DType::F64)
    adam_loop<double>(s, p.data<double>(), g.data<double>(), m.data<double>(), v.data<double>(), p.numel());
  else
    throw Error("adam_update: parameters must be F32 or F64");
}

Adam::Adam(NamedTensors params, AdamConfig config, const std::vector<std::string>& no_decay) : cfg_(config) {
  for (auto& [name, p] : params) {
    bool decay = true;
    for (const auto& pattern : no_decay)
      if (!pattern.empty() && name.find(pattern) != std::string::npos) decay = false;
    slots_.push_back({name, p, Tensor::zeros(p.shape(), p.dtype(), p.device()),
                      Tensor::zeros(p.shape(), p.dtype(), p.device()), decay});
  }
}

bool Adam::decays(const std::string& name) const {
  for (const auto& s : slots_)
    if (s.name == name) return s.decay;
  throw Error("Adam: no parameter named '" + name + "'");
}

void Adam::step(double lr, double grad_scale) {
  ++t_;
  for (auto& s : slots_) {
    Tensor g = s.p.grad();
    if (!g.defined()) continue;
    AdamStep st{lr, cfg_.beta1, cfg_.beta2, cfg_.eps, s.decay ? cfg_.weight_decay : 0.0, cfg_.decoupled, t_, grad_scale};
    adam_update(st, s.p, g, s.m, s.v);
  }
}

NamedTensors Adam::state() const {
  NamedTensors out;
  for (const auto& s : slots_) out.emplace_back("adam.m." + s.name, s.m);
  for (const auto& s : slots_) out.emplace_back("adam.v." + s.name, s.v);
  out.emplace_back("adam.t", Tensor::from(std::vector<double>{double(t_)}, {1}));
  return out;
}

void Adam::load_state(const NamedTensors& state) {
  auto find = [&](const std::string& name) -> const Tensor& {
    for (const auto& [n, t] : state)
      if (n == name) return t;
    throw Error("Adam::load_state: the optimizer state has no tensor '" + name + "'");
  };
  for (auto& s : slots_)
    for (auto [key, dst] : {std::pair{"adam.m.", &s.m}, std::pair{"adam.v.", &s.v}}) {
      const Tensor& src = find(key + s.name);
      if (src.shape() != dst->shape())
        throw Error("Adam::load_state: '" + std::string(key) + s.name + "' has shape " + shape_str(src.shape()) +
                    ", the parameter has " + shape_str(dst->shape()));
      dst->copy_from(src);
    }
  t_ = static_cast<int64_t>(find("adam.t").item());
}

double grad_norm(const std::vector<Tensor>& params) {
  double sq = 0;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    for (double x : g.to_doubles()) sq += x * x;
  }
  return std::sqrt(sq);
}

double clip_scale(double norm, double max_norm) {
  if (max_norm <= 0) return 1.0;
  return std::min(1.0, max_norm / (norm + 1e-6));
}

}  // namespace lasgrad::train
