// Shared by the emulated-kernel tests (test_cuda_emulated*.cpp): the emulator of CUDA's thread model,
// random inputs, and the comparison of an emulated kernel's output with the CPU backend's.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"
#include "tests/cuda/simt_emulator.h"

namespace lasgrad::emulated {

// Uniform values in [lo, hi) of dtype dt on the CPU.
inline Tensor random(const Shape& shape, Rng& rng, DType dt, double lo = -1, double hi = 1) {
  std::vector<double> v(static_cast<size_t>(numel_of(shape)));
  for (double& x : v) x = rng.uniform(lo, hi);
  return Tensor::from(v, shape, dt);
}

// |got - want| <= tol (1 + |want|) for every entry; infinities must be equal. On failure it reports how
// many entries are off, the first one and the worst error (NaN, as from an unwritten output, counts as off).
inline void expect_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  const std::vector<double> g = got.to_doubles(), w = want.to_doubles();
  REQUIRE(g.size() == w.size());
  size_t bad = 0, first = 0;
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const bool same_inf = std::isinf(w[i]) && g[i] == w[i];
    const double err = same_inf ? 0 : std::abs(g[i] - w[i]) / (1 + std::abs(w[i]));
    if (!(err <= tol)) {
      if (!bad++) first = i;
      worst = std::isnan(err) ? err : std::max(worst, err);
    }
  }
  INFO(what << ": " << bad << " of " << g.size() << " entries off; first at " << first << " (emulated "
            << (bad ? g[first] : 0) << ", cpu " << (bad ? w[first] : 0) << "), worst relative error " << worst);
  CHECK(bad == 0);
}

// A tensor whose entries stay NaN unless a kernel writes them.
inline Tensor unwritten(const Shape& shape, DType dt) { return Tensor::full(shape, std::nan(""), dt); }

}  // namespace lasgrad::emulated
