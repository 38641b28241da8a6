// Shape ops. reshape shares storage; permute, slice and concat copy through the backend.
#include <numeric>

#include "engine/backend.h"
#include "engine/op_checks.h"
#include "engine/ops.h"

namespace lasgrad {

using namespace detail;

Tensor reshape(const Tensor& x, const Shape& shape) {
  check_defined("reshape", x, "input");
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0) fail("reshape", "more than one -1 in " + shape_str(shape));
      infer = static_cast<int>(i);
    } else if (s[i] < 0) {
      fail("reshape", "negative size in " + shape_str(shape));
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known != 0)
      fail("reshape", "cannot infer -1 in " + shape_str(shape) + " for " + shape_str(x.shape()));
    s[infer] = x.numel() / known;
  }
  if (numel_of(s) != x.numel())
    fail("reshape",
         "cannot view " + shape_str(x.shape()) + " (" + std::to_string(x.numel()) + " entries) as " + shape_str(shape));
  Tensor out = view(x, s);
  if (needs_grad({x}))
    record("reshape", out, {x}, [sx = x.shape()](const Tensor& g) -> Grads { return {reshape(g, sx)}; });
  return out;
}

Tensor permute(const Tensor& x, const std::vector<int>& perm) {
  check_defined("permute", x, "input");
  int n = x.ndim();
  if (static_cast<int>(perm.size()) != n)
    fail("permute", "permutation of " + std::to_string(perm.size()) + " axes for shape " + shape_str(x.shape()));
  std::vector<int> p(n), inverse(n, -1);
  for (int i = 0; i < n; ++i) {
    p[i] = normalize_axis("permute", perm[i], n);
    if (inverse[p[i]] != -1) fail("permute", "axis " + std::to_string(perm[i]) + " appears twice");
    inverse[p[i]] = i;
  }
  Shape s(n);
  for (int i = 0; i < n; ++i) s[i] = x.shape()[p[i]];
  Tensor out = Tensor::empty(s, x.dtype(), x.device());
  backend(x.device()).permute(x, p, out);
  if (needs_grad({x}))
    record("permute", out, {x}, [inverse](const Tensor& g) -> Grads { return {permute(g, inverse)}; });
  return out;
}

Tensor transpose(const Tensor& x, int axis0, int axis1) {
  check_defined("transpose", x, "input");
  std::vector<int> perm(x.ndim());
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[normalize_axis("transpose", axis0, x.ndim())], perm[normalize_axis("transpose", axis1, x.ndim())]);
  return permute(x, perm);
}

Tensor slice(const Tensor& x, int axis, int64_t start, int64_t length) {
  check_defined("slice", x, "input");
  int a = normalize_axis("slice", axis, x.ndim());
  if (start < 0 || length < 0 || start + length > x.shape()[a])
    fail("slice", "range [" + std::to_string(start) + ", " + std::to_string(start + length) + ") along axis " +
                      std::to_string(axis) + " of " + shape_str(x.shape()));
  Shape s = x.shape();
  s[a] = length;
  Tensor out = Tensor::empty(s, x.dtype(), x.device());
  backend(x.device()).copy_axis(x, start, out, 0, a, length);
  if (needs_grad({x}))
    record("slice", out, {x}, [sx = x.shape(), a, start, length](const Tensor& g) -> Grads {
      Tensor dx = Tensor::zeros(sx, g.dtype(), g.device());
      backend(g.device()).copy_axis(g, 0, dx, start, a, length);
      return {dx};
    });
  return out;
}

Tensor concat(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) fail("concat", "no tensors to join");
  const Tensor& first = xs[0];
  check_defined("concat", first, "tensor 0");
  int a = normalize_axis("concat", axis, first.ndim());
  Shape s = first.shape();
  s[a] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    check_defined("concat", xs[i], "a tensor");
    check_same_dtype("concat", first, xs[i]);
    Shape si = xs[i].shape();
    bool fits = static_cast<int>(si.size()) == first.ndim();
    if (fits) {
      si[a] = first.shape()[a];
      fits = si == first.shape();
    }
    if (!fits)
      fail("concat", "tensor " + std::to_string(i) + " has shape " + shape_str(xs[i].shape()) +
                         ", which differs from " + shape_str(first.shape()) + " outside axis " + std::to_string(axis));
    s[a] += xs[i].shape()[a];
  }
  Tensor out = Tensor::empty(s, first.dtype(), first.device());
  std::vector<int64_t> sizes;
  int64_t offset = 0;
  for (const Tensor& x : xs) {
    backend(x.device()).copy_axis(x, 0, out, offset, a, x.shape()[a]);
    offset += x.shape()[a];
    sizes.push_back(x.shape()[a]);
  }
  if (needs_grad(xs)) record("concat", out, xs, [a, sizes](const Tensor& g) -> Grads { return split(g, a, sizes); });
  return out;
}

std::vector<Tensor> split(const Tensor& x, int axis, const std::vector<int64_t>& sizes) {
  check_defined("split", x, "input");
  int a = normalize_axis("split", axis, x.ndim());
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  if (total != x.shape()[a])
    fail("split", "sizes add up to " + std::to_string(total) + " but axis " + std::to_string(axis) + " of " +
                      shape_str(x.shape()) + " has " + std::to_string(x.shape()[a]));
  std::vector<Tensor> parts;
  int64_t start = 0;
  for (int64_t s : sizes) {
    parts.push_back(slice(x, a, start, s));
    start += s;
  }
  return parts;
}

}  // namespace lasgrad
