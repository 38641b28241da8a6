#include "train/optim.h"

#include <cmath>

#include "engine/ops.h"

namespace lasgrad::train {

void adam_update(const AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v) {
  if (p.shape() != g.shape() || p.shape() != m.shape() || p.shape() != v.shape())
    throw Error("adam_update: shapes differ: p " + shape_str(p.shape()) + ", g " + shape_str(g.shape()) + ", m " +
                shape_str(m.shape()) + ", v " + shape_str(v.shape()));
  if (g.dtype() != p.dtype() || m.dtype() != p.dtype() || v.dtype() != p.dtype())
    throw Error("adam_update: dtypes differ");
  if (p.dtype() != DType::F32 && p.dtype() != DType::F64) throw Error("adam_update: parameters must be F32 or F64");
  if (g.device() != p.device() || m.device() != p.device() || v.device() != p.device())
    throw Error(std::string("adam_update: devices differ: p on ") + device_name(p.device()) + ", g on " +
                device_name(g.device()) + ", m on " + device_name(m.device()) + ", v on " + device_name(v.device()));
  backend(p.device()).adam(s, p, g, m, v);
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
    AdamStep st{lr, cfg_.beta1, cfg_.beta2, cfg_.eps, s.decay ? cfg_.weight_decay : 0.0, cfg_.decoupled,
                t_, grad_scale};
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
  // Each gradient's sum of squares in float64 on its own device, added up there: one host copy per
  // device instead of one per parameter (each would wait for the GPU).
  NoGradGuard no_grad;
  double sq = 0;
  Tensor total;  // the running sum on the current device
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor g64 = g.to(DType::F64), s = sum(mul(g64, g64));
    if (total.defined() && total.device() == s.device()) {
      total = add(total, s);
    } else {
      if (total.defined()) sq += total.item();
      total = s;
    }
  }
  if (total.defined()) sq += total.item();
  return std::sqrt(sq);
}

double clip_scale(double norm, double max_norm) {
  if (max_norm <= 0) return 1.0;
  return std::min(1.0, max_norm / (norm + 1e-6));
}

}  // namespace lasgrad::train
