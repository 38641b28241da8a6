// Reductions and broadcasting, each the other's backward: sum reduces through Backend::sum_to, and
// broadcast_to expands through Backend::binary (adding a broadcast zero).
#include <algorithm>

#include "engine/backend.h"
#include "engine/op_checks.h"
#include "engine/ops.h"

namespace lasgrad {

using namespace detail;

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  check_floating("broadcast_to", x, "input");
  if (static_cast<int>(shape.size()) < x.ndim() || broadcast_shapes("broadcast_to", x.shape(), shape) != shape)
    fail("broadcast_to", "cannot broadcast " + shape_str(x.shape()) + " to " + shape_str(shape));
  if (x.shape() == shape) return x;
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  int rank = static_cast<int>(shape.size());
  Tensor zero = Tensor::zeros(Shape(rank, 1), x.dtype(), x.device());
  backend(x.device()).binary(BinaryOp::Add, pad_rank(x, rank), zero, out);
  if (needs_grad({x}))
    record("broadcast_to", out, {x}, [sx = x.shape()](const Tensor& g) -> Grads { return {sum_to_shape(g, sx)}; });
  return out;
}

Tensor sum_to_shape(const Tensor& g, const Shape& shape) {
  check_floating("sum_to_shape", g, "input");
  if (g.shape() == shape) return g;
  int rank = g.ndim();
  if (static_cast<int>(shape.size()) > rank || broadcast_shapes("sum_to_shape", shape, g.shape()) != g.shape())
    fail("sum_to_shape", "cannot reduce " + shape_str(g.shape()) + " to " + shape_str(shape));
  Tensor out = Tensor::empty(shape, g.dtype(), g.device());
  Tensor padded = pad_rank(out, rank);
  backend(g.device()).sum_to(g, padded);
  if (needs_grad({g}))
    record("sum_to_shape", out, {g}, [sg = g.shape()](const Tensor& d) -> Grads { return {broadcast_to(d, sg)}; });
  return out;
}

Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  check_floating("sum", x, "input");
  Shape kept = x.shape(), dropped;
  std::vector<bool> reduce(x.ndim(), false);
  for (int axis : axes) reduce[normalize_axis("sum", axis, x.ndim())] = true;
  for (int i = 0; i < x.ndim(); ++i) {
    if (reduce[i]) kept[i] = 1;
    else dropped.push_back(x.shape()[i]);
  }
  Tensor out = sum_to_shape(x, kept);
  return keepdim ? out : reshape(out, dropped);
}

Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  check_floating("mean", x, "input");
  int64_t count = 1;
  std::vector<bool> reduce(x.ndim(), false);
  for (int axis : axes) reduce[normalize_axis("mean", axis, x.ndim())] = true;
  for (int i = 0; i < x.ndim(); ++i)
    if (reduce[i]) count *= x.shape()[i];
  if (count == 0) fail("mean", "mean over an empty axis of " + shape_str(x.shape()));
  return mul(sum(x, axes, keepdim), 1.0 / static_cast<double>(count));
}

static std::vector<int> all_axes(const Tensor& x) {
  std::vector<int> axes(x.ndim());
  for (int i = 0; i < x.ndim(); ++i) axes[i] = i;
  return axes;
}

Tensor sum(const Tensor& x) { return sum(x, all_axes(x), false); }
Tensor mean(const Tensor& x) { return mean(x, all_axes(x), false); }

}  // namespace lasgrad
