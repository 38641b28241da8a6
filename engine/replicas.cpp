#include "engine/replicas.h"

#include "engine/autograd.h"
#include "engine/op_checks.h"

namespace lasgrad {

Tensor replica_sum(const Tensor& x, Replicas& replicas) {
  detail::check_floating("replica_sum", x, "input");
  Tensor host = x.device() == Device::CPU ? x.clone() : x.to(Device::CPU);
  if (host.dtype() == DType::F32) replicas.sum(host.data<float>(), host.numel());
  else replicas.sum(host.data<double>(), host.numel());
  Tensor out = host.to(x.device());
  if (needs_grad({x}))
    record("replica_sum", out, {x}, [r = &replicas](const Tensor& g) -> Grads { return {replica_sum(g, *r)}; });
  return out;
}

}  // namespace lasgrad
