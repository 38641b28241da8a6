// The trivial baselines every accuracy is read against, fitted on the training split and scored on
// any split: the majority class (always answer the training split's most common label) and, for
// ListOps, the root-operator rule (answer, for each root operator, the label most common among the
// training examples with that root). The rule never looks past the first operator of an expression,
// yet it reaches about 35% on generated ListOps: a model that scores no more has learnt nothing that
// the root alone does not tell.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "data/dataset.h"

namespace lasgrad::data {

// ListOps' four operators, in token-id order: [MIN, [MAX, [MED, [SM.
constexpr std::array<const char*, 4> kListOpsOperators = {"MIN", "MAX", "MED", "SM"};

// The root operator of ListOps example i: an index into kListOpsOperators, or -1 when the expression
// holds no operator (a bare digit). The root is the first operator in reading order (prefix notation).
int listops_root(const Dataset& d, int64_t i);

struct BaselineFit {
  int32_t majority_label = 0;
  std::optional<std::array<int32_t, 4>> root_label;  // ListOps: the rule's answer per root operator
};

// Fits both baselines on `train` (ties go to the smallest label); the root rule for ListOps only.
BaselineFit fit_baselines(const Dataset& train);

struct RootScore {
  int64_t examples = 0, right = 0;  // of the split's examples with this root, the rule's correct answers
};

struct BaselineScore {
  int64_t examples = 0;
  double majority = 0;                  // accuracy in [0, 1]
  std::optional<double> root_rule;      // ListOps only
  std::array<RootScore, 4> per_root{};  // ListOps only
};

BaselineScore score_baselines(const BaselineFit& fit, const Dataset& split);

}  // namespace lasgrad::data
