#include "engine/gradcheck.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/rng.h"

namespace lasgrad {

GradCheckResult check_gradients(const GradCheckFn& f, const std::vector<Tensor>& inputs,
                                const GradCheckOptions& options) {
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad() && (x.dtype() != DType::F64 || x.device() != Device::CPU))
      throw Error("check_gradients: inputs that require grad must be float64 CPU tensors");

  // W: fixed random weights that turn the output into a scalar.
  Tensor y0 = f(inputs);
  Rng rng(options.seed);
  std::vector<double> w(static_cast<size_t>(y0.numel()));
  for (double& v : w) v = rng.normal();
  Tensor weights = Tensor::from(w, y0.shape(), y0.dtype(), y0.device());
  auto loss_of = [&](const Tensor& y) { return sum(mul(y, weights)); };

  for (Tensor x : inputs)
    if (x.defined()) x.zero_grad();
  loss_of(y0).backward();

  GradCheckResult result;
  std::ostringstream report;
  int reported = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    std::vector<double> analytic = x.grad().defined() ? x.grad().to_doubles() : std::vector<double>(x.numel(), 0.0);
    double* values = x.data<double>();
    for (int64_t j = 0; j < x.numel(); ++j) {
      double saved = values[j], plus, minus;
      {
        NoGradGuard no_grad;
        values[j] = saved + options.eps;
        plus = loss_of(f(inputs)).item();
        values[j] = saved - options.eps;
        minus = loss_of(f(inputs)).item();
        values[j] = saved;
      }
      double numeric = (plus - minus) / (2 * options.eps), a = analytic[j];
      double bound = options.atol + options.rtol * std::max(std::fabs(a), std::fabs(numeric));
      double ratio = std::fabs(a - numeric) / bound;
      if (!std::isfinite(ratio)) ratio = INFINITY;
      result.worst = std::max(result.worst, ratio);
      ++result.checked;
      if (ratio > 1.0) {
        result.ok = false;
        if (reported++ < 10)
          report << "input " << i << " " << shape_str(x.shape()) << " entry " << j << ": analytic " << a << ", numeric "
                 << numeric << "\n";
      }
    }
  }
  result.report = report.str();
  return result;
}

}  // namespace lasgrad
