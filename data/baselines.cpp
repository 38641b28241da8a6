#include "data/baselines.h"

#include <algorithm>

#include "data/error.h"
#include "data/formats.h"

namespace lasgrad::data {

namespace {

const int kFirstOperatorId = listops_token_id("[MIN");  // [MAX, [MED and [SM follow it

bool is_listops(const Dataset& d) { return d.info().name == "listops"; }

// The most common value of `counts` (ties: the smallest index).
int32_t most_common(const std::vector<int64_t>& counts) {
  return static_cast<int32_t>(std::max_element(counts.begin(), counts.end()) - counts.begin());
}

}  // namespace

int listops_root(const Dataset& d, int64_t i) {
  std::vector<int32_t> t(static_cast<size_t>(d.length(i, 0)));
  d.tokens(i, 0, t.data());
  for (int32_t id : t)
    if (id >= kFirstOperatorId && id < kFirstOperatorId + 4) return id - kFirstOperatorId;
  return -1;
}

BaselineFit fit_baselines(const Dataset& train) {
  if (train.size() == 0) throw DataError("baselines: the training split has no examples to fit them on");
  const size_t C = static_cast<size_t>(train.num_classes());
  std::vector<int64_t> all(C, 0);
  std::array<std::vector<int64_t>, 4> by_root;
  by_root.fill(std::vector<int64_t>(C, 0));
  const bool listops = is_listops(train);
  for (int64_t i = 0; i < train.size(); ++i) {
    const int32_t y = train.label(i);
    ++all[static_cast<size_t>(y)];
    if (!listops) continue;
    const int root = listops_root(train, i);
    if (root >= 0) ++by_root[static_cast<size_t>(root)][static_cast<size_t>(y)];
  }
  BaselineFit fit;
  fit.majority_label = most_common(all);
  if (listops) {
    std::array<int32_t, 4> rule{};
    for (size_t r = 0; r < 4; ++r) {
      // A root never seen in training gets the majority answer.
      const bool seen = std::any_of(by_root[r].begin(), by_root[r].end(), [](int64_t n) { return n > 0; });
      rule[r] = seen ? most_common(by_root[r]) : fit.majority_label;
    }
    fit.root_label = rule;
  }
  return fit;
}

BaselineScore score_baselines(const BaselineFit& fit, const Dataset& split) {
  BaselineScore s;
  s.examples = split.size();
  if (s.examples == 0) return s;
  int64_t majority = 0, rule = 0;
  for (int64_t i = 0; i < split.size(); ++i) {
    const int32_t y = split.label(i);
    majority += y == fit.majority_label;
    if (!fit.root_label) continue;
    const int root = listops_root(split, i);
    const int32_t answer = root >= 0 ? (*fit.root_label)[static_cast<size_t>(root)] : fit.majority_label;
    rule += answer == y;
    if (root >= 0) {
      ++s.per_root[static_cast<size_t>(root)].examples;
      s.per_root[static_cast<size_t>(root)].right += answer == y;
    }
  }
  s.majority = static_cast<double>(majority) / static_cast<double>(s.examples);
  if (fit.root_label) s.root_rule = static_cast<double>(rule) / static_cast<double>(s.examples);
  return s;
}

}  // namespace lasgrad::data
