#include "engine/op_checks.h"

namespace lasgrad::detail {

void fail(const char* op, const std::string& message) { throw Error(std::string(op) + ": " + message); }

void check_defined(const char* op, const Tensor& t, const char* role) {
  if (!t.defined()) fail(op, std::string(role) + " is an undefined tensor");
}

void check_floating(const char* op, const Tensor& t, const char* role) {
  check_defined(op, t, role);
  if (t.dtype() != DType::F32 && t.dtype() != DType::F64)
    fail(op, std::string(role) + " must be float32 or float64, got " + dtype_name(t.dtype()) + " " +
                 shape_str(t.shape()) + (t.dtype() == DType::BF16 ? " (cast it to float32)" : ""));
}

void check_product_operand(const char* op, const Tensor& t, const char* role) {
  check_defined(op, t, role);
  if (t.dtype() == DType::I32)
    fail(op, std::string(role) + " must be float32, float64 or bfloat16, got int32 " + shape_str(t.shape()));
}

void check_int(const char* op, const Tensor& t, const char* role) {
  check_defined(op, t, role);
  if (t.dtype() != DType::I32)
    fail(op, std::string(role) + " must be int32, got " + dtype_name(t.dtype()) + " " + shape_str(t.shape()));
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  if (a.device() != b.device())
    fail(op, "operands are on two devices: " + shape_str(a.shape()) + " on " + device_name(a.device()) + ", " +
                 shape_str(b.shape()) + " on " + device_name(b.device()));
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  check_same_device(op, a, b);
  if (a.dtype() != b.dtype())
    fail(op, std::string("operands have two dtypes: ") + dtype_name(a.dtype()) + " " + shape_str(a.shape()) + ", " +
                 dtype_name(b.dtype()) + " " + shape_str(b.shape()));
}

int normalize_axis(const char* op, int axis, int ndim) {
  int a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim)
    fail(op, "axis " + std::to_string(axis) + " is out of range for a tensor of rank " + std::to_string(ndim));
  return a;
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      fail(op, "shapes " + shape_str(a) + " and " + shape_str(b) + " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor view(const Tensor& t, const Shape& shape) {
  Tensor v = t.detach();
  v.impl()->shape = shape;
  return v;
}

Tensor pad_rank(const Tensor& t, int rank) {
  Shape s(rank - t.ndim(), 1);
  s.insert(s.end(), t.shape().begin(), t.shape().end());
  return view(t, s);
}

}  // namespace lasgrad::detail
