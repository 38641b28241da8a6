// Adam and AdamW over a model's named parameters, global-norm gradient clipping.
//
//   Adam opt(model.named_parameters(), {.weight_decay = 0.01}, {"bias", "norm", "embed"});
//   double norm = grad_norm(model.parameters());
//   opt.step(lr_now, clip_scale(norm, 1.0));   // clip_grad_norm_(params, 1.0), then the step at rate lr_now
//
// The update of one parameter is one fused kernel per backend (adam_update): weight decay, both
// moments, bias correction and the step in a single pass over p, g, m, v, on the parameter's device.
// Semantics are PyTorch's torch.optim.Adam / AdamW.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/names.h"
#include "layers/module.h"

namespace lasgrad::train {

struct AdamConfig {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.01;  // torch.optim.AdamW's default, and the run settings'
  // true: AdamW, p -= lr * wd * p before the Adam step (decoupled). false: Adam, g += wd * p (L2).
  bool decoupled = true;
};
inline constexpr EnumName<bool> kOptimizerNames[] = {{true, "adamw"}, {false, "adam"}};

// One fused update in place through the tensors' backend (Backend::adam, AdamStep in engine/backend.h):
// p, g, m, v of one shape, floating dtype and device; throws Error naming what differs.
void adam_update(const AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v);

class Adam {
 public:
  // Parameters whose name contains one of `no_decay` (substring) get weight decay 0.
  Adam(NamedTensors params, AdamConfig config, const std::vector<std::string>& no_decay);

  // One step at learning rate lr for every parameter that has a gradient, each used as grad_scale * g.
  void step(double lr, double grad_scale = 1.0);
  int64_t steps() const { return t_; }

  // Whether weight decay applies to the parameter named `name` (for logs and tests).
  bool decays(const std::string& name) const;

  // State for checkpoints: "adam.m.<param>", "adam.v.<param>" and "adam.t" (F64 [1], exact to 2^53).
  NamedTensors state() const;
  // Restores from tensors named as state() names them; every one must be present with the right shape.
  void load_state(const NamedTensors& state);

 private:
  struct Slot {
    std::string name;
    Tensor p, m, v;
    bool decay;
  };
  std::vector<Slot> slots_;
  AdamConfig cfg_;
  int64_t t_ = 0;
};

// Global L2 norm of all gradients (computed in double; parameters without a gradient count 0).
double grad_norm(const std::vector<Tensor>& params);
// The factor clip_grad_norm_ would scale gradients by: min(1, max_norm / (norm + 1e-6)); 1 when
// max_norm <= 0 (clipping off). Apply it through Adam::step's grad_scale.
double clip_scale(double norm, double max_norm);

}  // namespace lasgrad::train
