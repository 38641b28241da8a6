// Element-wise ops: forward through Backend::unary / binary / masked_fill, backward beside each.
#include "engine/backend.h"
#include "engine/op_checks.h"
#include "engine/ops.h"

namespace lasgrad {

using namespace detail;

// a op b with broadcasting; both operands floating, same dtype and device.
static Tensor binary_forward(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  check_floating(name, a, "left operand");
  check_floating(name, b, "right operand");
  check_same_dtype(name, a, b);
  Shape shape = broadcast_shapes(name, a.shape(), b.shape());
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  int rank = static_cast<int>(shape.size());
  backend(a.device()).binary(op, pad_rank(a, rank), pad_rank(b, rank), out);
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Add, "add", a, b);
  if (needs_grad({a, b}))
    record("add", out, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) -> Grads {
      return {sum_to_shape(g, sa), sum_to_shape(g, sb)};
    });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Sub, "sub", a, b);
  if (needs_grad({a, b}))
    record("sub", out, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) -> Grads {
      return {sum_to_shape(g, sa), sum_to_shape(neg(g), sb)};
    });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Mul, "mul", a, b);
  if (needs_grad({a, b}))
    record("mul", out, {a, b}, [a, b, ga = a.requires_grad(), gb = b.requires_grad()](const Tensor& g) -> Grads {
      return {ga ? sum_to_shape(mul(g, b), a.shape()) : Tensor(), gb ? sum_to_shape(mul(g, a), b.shape()) : Tensor()};
    });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Div, "div", a, b);
  if (needs_grad({a, b}))
    record("div", out, {a, b}, [a, b, ga = a.requires_grad(), gb = b.requires_grad()](const Tensor& g) -> Grads {
      Tensor ga_ = ga ? sum_to_shape(div(g, b), a.shape()) : Tensor();
      // d(a/b)/db = -a / b^2
      Tensor gb_ = gb ? sum_to_shape(neg(div(mul(g, a), mul(b, b))), b.shape()) : Tensor();
      return {ga_, gb_};
    });
  return out;
}

static Tensor unary_forward(UnaryOp op, const char* name, const Tensor& x, double scalar = 0.0) {
  check_floating(name, x, "input");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend(x.device()).unary(op, x, scalar, out);
  return out;
}

Tensor add(const Tensor& a, double s) {
  Tensor out = unary_forward(UnaryOp::AddScalar, "add", a, s);
  if (needs_grad({a})) record("add_scalar", out, {a}, [](const Tensor& g) -> Grads { return {g}; });
  return out;
}

Tensor sub(const Tensor& a, double s) { return add(a, -s); }

Tensor mul(const Tensor& a, double s) {
  Tensor out = unary_forward(UnaryOp::MulScalar, "mul", a, s);
  if (needs_grad({a})) record("mul_scalar", out, {a}, [s](const Tensor& g) -> Grads { return {mul(g, s)}; });
  return out;
}

Tensor div(const Tensor& a, double s) {
  if (s == 0.0) fail("div", "division of a tensor by the scalar 0");
  return mul(a, 1.0 / s);
}

Tensor rsub(double s, const Tensor& a) {
  Tensor out = unary_forward(UnaryOp::RsubScalar, "rsub", a, s);
  if (needs_grad({a})) record("rsub_scalar", out, {a}, [](const Tensor& g) -> Grads { return {neg(g)}; });
  return out;
}

Tensor rdiv(double s, const Tensor& a) {
  Tensor out = unary_forward(UnaryOp::RdivScalar, "rdiv", a, s);
  if (needs_grad({a}))  // d(s/a)/da = -s / a^2
    record("rdiv_scalar", out, {a}, [a, s](const Tensor& g) -> Grads { return {div(mul(g, -s), mul(a, a))}; });
  return out;
}

Tensor neg(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Neg, "neg", x);
  if (needs_grad({x})) record("neg", out, {x}, [](const Tensor& g) -> Grads { return {neg(g)}; });
  return out;
}

Tensor exp(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Exp, "exp", x);
  if (needs_grad({x})) record("exp", out, {x}, [y = out.detach()](const Tensor& g) -> Grads { return {mul(g, y)}; });
  return out;
}

Tensor log(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Log, "log", x);
  if (needs_grad({x})) record("log", out, {x}, [x](const Tensor& g) -> Grads { return {div(g, x)}; });
  return out;
}

Tensor sqrt(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Sqrt, "sqrt", x);
  if (needs_grad({x}))
    record("sqrt", out, {x}, [y = out.detach()](const Tensor& g) -> Grads { return {div(mul(g, 0.5), y)}; });
  return out;
}

// Ops whose derivative the backend computes from x: dx = dy * f'(x).
static Tensor unary_with_grad_kernel(UnaryOp op, const char* name, const Tensor& x) {
  Tensor out = unary_forward(op, name, x);
  if (needs_grad({x}))
    record(name, out, {x}, [op, x](const Tensor& g) -> Grads {
      Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
      backend(x.device()).unary_grad(op, x, g, dx);
      return {dx};
    });
  return out;
}

Tensor tanh(const Tensor& x) { return unary_with_grad_kernel(UnaryOp::Tanh, "tanh", x); }
Tensor relu(const Tensor& x) { return unary_with_grad_kernel(UnaryOp::Relu, "relu", x); }
Tensor gelu(const Tensor& x, Gelu kind) {
  return kind == Gelu::Erf ? unary_with_grad_kernel(UnaryOp::GeluErf, "gelu", x)
                           : unary_with_grad_kernel(UnaryOp::GeluTanh, "gelu_tanh", x);
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_floating("masked_fill", x, "input");
  check_int("masked_fill", mask, "mask");
  check_same_device("masked_fill", x, mask);
  if (broadcast_shapes("masked_fill", x.shape(), mask.shape()) != x.shape())
    fail("masked_fill", "mask " + shape_str(mask.shape()) + " must broadcast to the input " + shape_str(x.shape()));
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor m = pad_rank(mask, x.ndim());
  backend(x.device()).masked_fill(x, m, value, out);
  if (needs_grad({x}))
    record("masked_fill", out, {x, mask}, [mask](const Tensor& g) -> Grads {
      return {masked_fill(g, mask, 0.0), Tensor()};
    });
  return out;
}

Tensor cast(const Tensor& x, DType dtype) {
  const char* op = "cast";
  check_product_operand(op, x, "input");
  if (dtype == DType::I32) fail(op, "casts between floating dtypes; int32 is not one");
  if (dtype == x.dtype()) return x;
  Tensor out = x.to(dtype);
  if (needs_grad({x}))
    record(op, out, {x}, [to = compute_dtype(x.dtype())](const Tensor& g) -> Grads { return {cast(g, to)}; });
  return out;
}

}  // namespace lasgrad
