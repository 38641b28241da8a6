#include "tools/study/stats.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace lasgrad::study {

double t975(int64_t df) {
  static const double table[] = {12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
                                 2.262157,  2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
                                 2.109816,  2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
                                 2.059539,  2.055529, 2.051831, 2.048407, 2.045230, 2.042272};
  if (df < 1) throw Error("t975: degrees of freedom must be >= 1");
  if (df <= 30) return table[df - 1];
  const double z = 1.959964, n = static_cast<double>(df);
  return z + (z * z * z + z) / (4 * n) + (5 * std::pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * n * n);
}

Interval mean_interval(const std::vector<double>& values) {
  Interval r;
  double sum = 0;
  for (double v : values)
    if (std::isfinite(v)) sum += v, ++r.n;
  if (r.n == 0) return {0, NAN, NAN, NAN, NAN};
  r.mean = sum / double(r.n);
  double ss = 0;
  for (double v : values)
    if (std::isfinite(v)) ss += (v - r.mean) * (v - r.mean);
  if (r.n < 2) {
    r.lo = r.hi = NAN;
    return r;
  }
  r.sd = std::sqrt(ss / double(r.n - 1));
  const double half = t975(r.n - 1) * r.sd / std::sqrt(double(r.n));
  r.lo = r.mean - half;
  r.hi = r.mean + half;
  return r;
}

McNemar mcnemar(const std::vector<bool>& reference, const std::vector<bool>& variant) {
  if (reference.size() != variant.size()) throw Error("mcnemar: the two lists differ in length");
  McNemar m;
  for (size_t i = 0; i < reference.size(); ++i) {
    m.only_reference += reference[i] && !variant[i];
    m.only_variant += !reference[i] && variant[i];
  }
  const int64_t n = m.only_reference + m.only_variant, k = std::min(m.only_reference, m.only_variant);
  // P(X <= k), X ~ Binomial(n, 1/2), summed in log space: n may be thousands.
  const double log_all = std::lgamma(double(n) + 1) - double(n) * std::log(2.0);  // log(n! / 2^n)
  double cdf = 0;
  for (int64_t j = 0; j <= k; ++j)
    cdf += std::exp(log_all - std::lgamma(double(j) + 1) - std::lgamma(double(n - j) + 1));
  m.p = std::min(1.0, 2 * cdf);
  return m;
}

}  // namespace lasgrad::study
