// matmul: batched GEMM through Backend::matmul, with the transposes folded into the GEMM in backward.
#include "engine/backend.h"
#include "engine/op_checks.h"
#include "engine/ops.h"

namespace lasgrad {

using namespace detail;

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  const char* op = "matmul";
  check_product_operand(op, a, "left operand");
  check_product_operand(op, b, "right operand");
  check_same_dtype(op, a, b);
  if (a.ndim() < 2 || b.ndim() < 2)
    fail(op, "operands need rank >= 2, got " + shape_str(a.shape()) + " and " + shape_str(b.shape()));

  // A batched left operand times a 2-D weight: fold the batch into M, one large GEMM. The reshapes are
  // ops, so the backward (including the weight gradient summed over the batch) follows by itself.
  if (a.ndim() > 2 && b.ndim() == 2) {
    if (trans_a)
      fail(op, "trans_a with a batched left operand " + shape_str(a.shape()) + " needs a batched right operand");
    Shape out_shape(a.shape().begin(), a.shape().end() - 1);
    out_shape.push_back(trans_b ? b.dim(0) : b.dim(1));
    return reshape(matmul(reshape(a, {-1, a.dim(-1)}), b, false, trans_b), out_shape);
  }

  Shape batch(a.shape().begin(), a.shape().end() - 2);
  if (Shape(b.shape().begin(), b.shape().end() - 2) != batch)
    fail(op, "batch axes differ: " + shape_str(a.shape()) + " and " + shape_str(b.shape()) +
                 " (they must be equal, or the right operand 2-D)");
  int64_t m = trans_a ? a.dim(-1) : a.dim(-2), k = trans_a ? a.dim(-2) : a.dim(-1);
  int64_t kb = trans_b ? b.dim(-1) : b.dim(-2), n = trans_b ? b.dim(-2) : b.dim(-1);
  if (k != kb)
    fail(op, "inner sizes differ: " + shape_str(a.shape()) + (trans_a ? "^T" : "") + " @ " + shape_str(b.shape()) +
                 (trans_b ? "^T" : ""));
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor out = Tensor::empty(out_shape, compute_dtype(a.dtype()), a.device());
  int64_t nb = numel_of(batch);
  Tensor out3 = view(out, {nb, m, n});
  backend(a.device())
      .matmul(view(a, {nb, a.dim(-2), a.dim(-1)}), trans_a, view(b, {nb, b.dim(-2), b.dim(-1)}), trans_b, out3);
  if (needs_grad({a, b}))
    record(op, out, {a, b},
           [a, b, trans_a, trans_b, ga = a.requires_grad(), gb = b.requires_grad()](const Tensor& grad) -> Grads {
             // out = op(a) op(b): d op(a) = g op(b)^T and d op(b) = op(a)^T g, transposed back where op is.
             // bfloat16 operands take g in bfloat16 too, as a mixed-precision GEMM does.
             const Tensor g = cast(grad, a.dtype());
             Tensor da, db;
             if (ga) da = trans_a ? matmul(b, g, trans_b, true) : matmul(g, b, false, !trans_b);
             if (gb) db = trans_b ? matmul(g, a, true, trans_a) : matmul(a, g, !trans_a, false);
             return {da, db};
           });
  return out;
}

}  // namespace lasgrad
