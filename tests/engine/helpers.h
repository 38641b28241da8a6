// Shared by the engine tests: random tensors and a gradient-check assertion that prints the report.
#pragma once
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "engine/gradcheck.h"
#include "engine/ops.h"
#include "engine/rng.h"

namespace lasgrad::test {

// Uniform values in [lo, hi) as a float64 CPU tensor (a leaf that requires grad when asked).
inline Tensor random(const Shape& shape, Rng& rng, double lo = -1.0, double hi = 1.0, bool grad = true) {
  std::vector<double> v(static_cast<size_t>(numel_of(shape)));
  for (double& x : v) x = rng.uniform(lo, hi);
  Tensor t = Tensor::from(v, shape, DType::F64);
  t.set_requires_grad(grad);
  return t;
}

// CHECK_GRADIENTS(f, inputs): variadic because a lambda's capture list may hold commas.
#define CHECK_GRADIENTS(...)                                                        \
  do {                                                                              \
    GradCheckResult r_ = check_gradients(__VA_ARGS__);                              \
    INFO("gradient check failed (worst ratio " << r_.worst << "):\n" << r_.report); \
    CHECK(r_.ok);                                                                   \
    CHECK(r_.checked > 0);                                                          \
  } while (0)

// x's values rounded to bfloat16, as a float32 tensor without grad (what precision bf16 feeds a product).
inline Tensor bf16_rounded(const Tensor& x) { return x.detach().to(DType::BF16).to(DType::F32); }

// The same dtype and the same float32 values, bit for bit.
inline bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.to_floats() == b.to_floats();
}

// The message of the lasgrad::Error that f throws; empty when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Every entry of `got` within tol of `want` (absolute, plus relative to |want|).
inline void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("entry " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i])));
  }
}

}  // namespace lasgrad::test
