// Neural-network ops with fused kernels: softmax, cross-entropy, layer norm, embedding, dropout,
// sequence average pooling.
#include "engine/backend.h"
#include "engine/op_checks.h"
#include "engine/ops.h"

namespace lasgrad {

using namespace detail;

Tensor softmax(const Tensor& x, const Tensor& mask) {
  check_floating("softmax", x, "input");
  if (x.ndim() == 0) fail("softmax", "needs at least one axis, got a scalar");
  Tensor logits = x;
  if (mask.defined()) {
    check_floating("softmax", mask, "mask");
    check_same_dtype("softmax", x, mask);
    if (broadcast_shapes("softmax", x.shape(), mask.shape()) != x.shape())
      fail("softmax", "mask " + shape_str(mask.shape()) + " must broadcast to the input " + shape_str(x.shape()));
    logits = add(x, mask);
  }
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend(x.device()).softmax(logits, y);
  if (needs_grad({logits}))
    record("softmax", y, {logits}, [y_saved = y.detach()](const Tensor& g) -> Grads {
      Tensor dx = Tensor::empty(g.shape(), g.dtype(), g.device());
      backend(g.device()).softmax_grad(y_saved, g, dx);
      return {dx};
    });
  return y;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  const char* op = "cross_entropy";
  check_floating(op, logits, "logits");
  check_int(op, targets, "targets");
  check_same_device(op, logits, targets);
  if (logits.ndim() != 2 || targets.ndim() != 1 || targets.dim(0) != logits.dim(0))
    fail(op, "expects logits [N, C] and targets [N], got " + shape_str(logits.shape()) + " and " +
                 shape_str(targets.shape()));
  int64_t n = logits.dim(0);
  Tensor losses = Tensor::empty({n}, logits.dtype(), logits.device());
  backend(logits.device()).cross_entropy(logits, targets, ignore_index, losses);
  int64_t counted = 0;
  for (double t : targets.to_doubles()) counted += static_cast<int64_t>(t) != ignore_index;
  if (counted == 0)
    fail(op, "every target equals ignore_index " + std::to_string(ignore_index) + ", so the mean is undefined");
  Tensor out;
  {
    NoGradGuard no_grad;  // the loss's backward is the fused kernel below, not sum's
    out = mul(sum(losses), 1.0 / static_cast<double>(counted));
  }
  if (needs_grad({logits}))
    record(op, out, {logits, targets}, [logits, targets, ignore_index, counted](const Tensor& g) -> Grads {
      Tensor d = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
      backend(g.device()).cross_entropy_grad(logits, targets, ignore_index, g.item() / counted, d);
      return {d, Tensor()};
    });
  return out;
}

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
  const char* op = "layer_norm";
  check_floating(op, x, "input");
  check_floating(op, gamma, "gamma");
  check_floating(op, beta, "beta");
  check_same_dtype(op, x, gamma);
  check_same_dtype(op, x, beta);
  if (x.ndim() < 1) fail(op, "needs at least one axis, got a scalar");
  int64_t d = x.dim(-1), rows = x.numel() / std::max<int64_t>(d, 1);
  if (gamma.shape() != Shape{d} || beta.shape() != Shape{d})
    fail(op, "gamma " + shape_str(gamma.shape()) + " and beta " + shape_str(beta.shape()) + " must be [" +
                 std::to_string(d) + "] for input " + shape_str(x.shape()));
  if (!(eps > 0)) fail(op, "eps must be positive, got " + std::to_string(eps));
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty({rows}, x.dtype(), x.device()), rstd = Tensor::empty({rows}, x.dtype(), x.device());
  Tensor y2 = view(y, {rows, d});
  backend(x.device()).layer_norm(view(x, {rows, d}), gamma, beta, eps, y2, mean, rstd);
  if (needs_grad({x, gamma, beta}))
    record(op, y, {x, gamma, beta}, [x, gamma, mean, rstd, rows, d](const Tensor& g) -> Grads {
      Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
      Tensor dgamma = Tensor::empty({d}, x.dtype(), x.device()), dbeta = Tensor::empty({d}, x.dtype(), x.device());
      Tensor dx2 = view(dx, {rows, d});
      backend(x.device())
          .layer_norm_grad(view(x, {rows, d}), gamma, mean, rstd, view(g, {rows, d}), dx2, dgamma, dbeta);
      return {dx, dgamma, dbeta};
    });
  return y;
}

Tensor embedding(const Tensor& table, const Tensor& ids) {
  const char* op = "embedding";
  check_floating(op, table, "table");
  check_int(op, ids, "ids");
  check_same_device(op, table, ids);
  if (table.ndim() != 2) fail(op, "table must be [V, D], got " + shape_str(table.shape()));
  Shape s = ids.shape();
  s.push_back(table.dim(1));
  Tensor out = Tensor::empty(s, table.dtype(), table.device());
  Tensor out2 = view(out, {ids.numel(), table.dim(1)});
  backend(table.device()).embedding(table, view(ids, {ids.numel()}), out2);
  if (needs_grad({table}))
    record(op, out, {table, ids}, [ids, st = table.shape()](const Tensor& g) -> Grads {
      Tensor dtable = Tensor::zeros(st, g.dtype(), g.device());
      backend(g.device()).embedding_grad(view(ids, {ids.numel()}), view(g, {ids.numel(), st[1]}), dtable);
      return {dtable, Tensor()};
    });
  return out;
}

Tensor dropout(const Tensor& x, double p, uint64_t seed, bool training) {
  check_floating("dropout", x, "input");
  if (!(p >= 0.0 && p < 1.0)) fail("dropout", "p must be in [0, 1), got " + std::to_string(p));
  if (!training || p == 0.0) return x;
  Tensor keep = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend(x.device()).dropout_mask(seed, p, keep);
  return mul(x, keep);
}

Tensor avg_pool_seq(const Tensor& x, int64_t P) {
  const char* op = "avg_pool_seq";
  check_floating(op, x, "input");
  if (x.ndim() < 2) fail(op, "expects [..., L, D], got " + shape_str(x.shape()));
  if (P < 1 || P % 2 == 0) fail(op, "window P must be odd and positive, got " + std::to_string(P));
  int64_t l = x.dim(-2), d = x.dim(-1), b = x.numel() / std::max<int64_t>(l * d, 1);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor out3 = view(out, {b, l, d});
  backend(x.device()).avg_pool_seq(view(x, {b, l, d}), P, out3);
  if (needs_grad({x}))  // the zero-padded, always-divided-by-P window is its own adjoint
    record(op, out, {x}, [P](const Tensor& g) -> Grads { return {avg_pool_seq(g, P)}; });
  return out;
}

Tensor conv_seq(const Tensor& x, const std::vector<double>& w) {
  const char* op = "conv_seq";
  check_floating(op, x, "input");
  if (x.ndim() < 2) fail(op, "expects [..., L, D], got " + shape_str(x.shape()));
  if (w.size() % 2 == 0) fail(op, "needs an odd number of weights, got " + std::to_string(w.size()));
  for (double v : w)
    if (!std::isfinite(v)) fail(op, "weights must be finite, got " + std::to_string(v));
  const int64_t R = static_cast<int64_t>(w.size()) / 2, L = x.dim(-2);
  Shape pad = x.shape();
  pad[pad.size() - 2] = std::min(R, L);  // offsets beyond L only ever read zeros
  Tensor zeros = Tensor::zeros(pad, x.dtype(), x.device());
  const int64_t r = pad[pad.size() - 2];
  Tensor xp = r > 0 ? concat({zeros, x, zeros}, -2) : x;  // xp[l + r] = x[l]
  Tensor out;
  for (int64_t t = -r; t <= r; ++t) {
    const double wt = w[static_cast<size_t>(t + R)];
    if (wt == 0.0) continue;
    Tensor term = mul(slice(xp, -2, r + t, L), wt);
    out = out.defined() ? add(out, term) : term;
  }
  return out.defined() ? out : mul(x, 0.0);
}

}  // namespace lasgrad
