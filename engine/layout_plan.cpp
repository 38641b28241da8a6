#include "engine/layout_plan.h"

#include <algorithm>

namespace lasgrad {

PermutePlan plan_permute(const Shape& xs, const std::vector<int>& perm) {
  std::vector<int> compact(xs.size(), -1);  // x axis -> its index among x's axes of size > 1
  std::vector<int64_t> cdim;
  for (size_t p = 0; p < xs.size(); ++p)
    if (xs[p] != 1) compact[p] = static_cast<int>(cdim.size()), cdim.push_back(xs[p]);
  std::vector<int> first, last;  // each group: a run of consecutive compact x axes, in output order
  for (int p : perm) {
    int c = compact[p];
    if (c < 0) continue;
    if (!last.empty() && last.back() + 1 == c) last.back() = c;
    else first.push_back(c), last.push_back(c);
  }
  const int g = static_cast<int>(first.size());
  PermutePlan plan;
  plan.xorder.resize(g);
  for (int i = 0; i < g; ++i) plan.xorder[i] = i;
  std::sort(plan.xorder.begin(), plan.xorder.end(), [&](int i, int j) { return first[i] < first[j]; });
  plan.dims.assign(g, 1);
  plan.strides.resize(g);
  for (int i = 0; i < g; ++i)
    for (int c = first[i]; c <= last[i]; ++c) plan.dims[i] *= cdim[c];
  int64_t s = 1;
  for (int k = g - 1; k >= 0; --k) plan.strides[plan.xorder[k]] = s, s *= plan.dims[plan.xorder[k]];
  return plan;
}

std::vector<ReduceStep> plan_sum_to(const Shape& x, const Shape& out) {
  std::vector<int64_t> dims;
  std::vector<bool> reduced;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] == 1) continue;
    const bool red = out[i] == 1;
    if (!dims.empty() && reduced.back() == red) dims.back() *= x[i];
    else dims.push_back(x[i]), reduced.push_back(red);
  }
  std::vector<ReduceStep> steps;
  for (;;) {
    int j = static_cast<int>(dims.size()) - 1;
    while (j >= 0 && !reduced[j]) --j;
    if (j < 0) return steps;
    int64_t A = 1, B = 1;
    for (int k = 0; k < j; ++k) A *= dims[k];
    for (size_t k = j + 1; k < dims.size(); ++k) B *= dims[k];
    steps.push_back({A, dims[j], B});
    // The reduced axis is gone: its kept neighbours, if both exist, become one axis.
    dims.erase(dims.begin() + j);
    reduced.erase(reduced.begin() + j);
    if (j > 0 && j < static_cast<int>(dims.size())) {
      dims[j - 1] *= dims[j];
      dims.erase(dims.begin() + j);
      reduced.erase(reduced.begin() + j);
    }
  }
}

}  // namespace lasgrad
