// The replicas of a data-parallel job (the ranks of docs/distributed.md), as far as an op needs them:
// a sum of every replica's copy of a buffer. train::Group implements it over MPI; the engine knows
// nothing more of MPI than this.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace lasgrad {

class Replicas {
 public:
  virtual ~Replicas() = default;
  // In place: every replica ends with the sum over all of them. A collective: every replica calls
  // it, in the same order.
  virtual void sum(float* data, int64_t n) = 0;
  virtual void sum(double* data, int64_t n) = 0;
};

// x [any shape] -> the sum of every replica's x, the same tensor on each (synchronised BatchNorm's
// batch sums). Its backward sums the gradient over the replicas likewise: every replica's loss
// depends on every replica's x, so dL/dx_r = sum_s dL_s/dy. A collective in both directions; on a
// CUDA tensor it goes through a host copy.
Tensor replica_sum(const Tensor& x, Replicas& replicas);

}  // namespace lasgrad
