// Finite-difference gradient checking: the ground truth that every op's backward is tested against.
//
// f maps the inputs to a tensor of any shape. The checker contracts that output with a fixed random
// tensor W to a scalar loss = sum(f(x) * W), so every output entry's gradient is exercised, computes
// the analytic gradient of each input that requires grad with backward(), and compares every entry with
// the central difference (loss(x + eps) - loss(x - eps)) / 2eps. An entry fails when
//   |analytic - numeric| > atol + rtol * max(|analytic|, |numeric|).
// Use float64 CPU inputs: with the defaults a 1% error in any single entry whose gradient is larger
// than about 1e-5 is caught (tests/engine/test_gradcheck.cpp proves it).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace lasgrad {

struct GradCheckOptions {
  double eps = 1e-6;
  double rtol = 1e-5;
  double atol = 1e-7;
  uint64_t seed = 1234;  // for W
};

struct GradCheckResult {
  bool ok = true;
  int checked = 0;     // entries compared
  double worst = 0.0;  // largest |analytic - numeric| / (atol + rtol * max(|a|, |n|)); ok when <= 1
  std::string report;  // the failing entries (at most 10), one per line
};

using GradCheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

GradCheckResult check_gradients(const GradCheckFn& f, const std::vector<Tensor>& inputs,
                                const GradCheckOptions& options = {});

}  // namespace lasgrad
