// Host-side plans that both backends execute with their own kernels: which axes a permute really
// moves, and which [A, R, B] sums a sum_to reduces to. Planning once keeps the backends' results alike.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace lasgrad {

// A permute after coalescing: size-1 axes dropped and output axes that are neighbours in x too
// merged, leaving the smallest permutation of the smallest rank that moves the same data.
// dims[i]: group i's extent, in output order; strides[i]: its element stride in x; xorder: group ids
// in x's order. An identity has at most one group.
struct PermutePlan {
  std::vector<int64_t> dims, strides;
  std::vector<int> xorder;
  int groups() const { return static_cast<int>(dims.size()); }
};
PermutePlan plan_permute(const Shape& x, const std::vector<int>& perm);

// One step of a sum_to: view the input as [A, R, B] and sum over R, giving [A, B].
struct ReduceStep {
  int64_t A, R, B;
};
// The steps that sum x (no empty axis) to out (same rank, out[i] == x[i] or 1): axes of size 1
// dropped, neighbours both kept or both reduced merged, then one step per reduced run, innermost
// first, each feeding the next. No steps: out is a copy of x.
std::vector<ReduceStep> plan_sum_to(const Shape& x, const Shape& out);

}  // namespace lasgrad
