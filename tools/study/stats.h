// The statistics of a sweep's summary: how sure a difference between variants is. Accuracies over seeds
// get a mean with a 95% confidence interval (Student's t); a variant against a reference gets the
// per-seed paired difference with its interval, and McNemar's exact test over the test examples of
// the paired runs pooled (is one variant right where the other is wrong more often than chance?).
#pragma once
#include <cstdint>
#include <vector>

namespace lasgrad::study {

// Student's t quantile at 0.975 for `df` degrees of freedom (>= 1): a table to df 30, then the
// Cornish-Fisher expansion around the normal's 1.959964, within 1e-4 there.
double t975(int64_t df);

struct Interval {
  int64_t n = 0;            // finite values used
  double mean = 0, sd = 0;  // sample standard deviation (n - 1); 0 for one value
  double lo = 0, hi = 0;    // mean -+ t975(n - 1) sd / sqrt(n); NaN for fewer than two values
};

// Over the finite values; n = 0 gives NaN everywhere.
Interval mean_interval(const std::vector<double>& values);

struct McNemar {
  int64_t only_reference = 0;  // examples the reference got right and the variant wrong
  int64_t only_variant = 0;    // the variant right, the reference wrong
  double p = 1;                // exact two-sided p: 2 P(X <= min) for X ~ Binomial(discordant, 1/2), at most 1
};

// From paired correctness: reference[i] and variant[i] say whether each model got example i right.
McNemar mcnemar(const std::vector<bool>& reference, const std::vector<bool>& variant);

}  // namespace lasgrad::study
