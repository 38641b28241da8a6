// Input validation shared by the ops in engine/ops_*.cpp. Every failure throws lasgrad::Error with a
// message that starts with the op's name.
#pragma once
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace lasgrad::detail {

[[noreturn]] void fail(const char* op, const std::string& message);

// Defined, and floating (F32/F64) where the op computes in floating point; check_product_operand also
// takes BF16 (the operands of matmul, whose products accumulate in float32).
void check_defined(const char* op, const Tensor& t, const char* role);
void check_floating(const char* op, const Tensor& t, const char* role);
void check_product_operand(const char* op, const Tensor& t, const char* role);
void check_int(const char* op, const Tensor& t, const char* role);
// Same device (and for check_same_dtype, same dtype) as the first operand; errors show both.
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);

int normalize_axis(const char* op, int axis, int ndim);
// NumPy broadcasting of two shapes; fails naming both.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
// A view of t's storage with another shape of the same size; no autodiff (for kernel calls).
Tensor view(const Tensor& t, const Shape& shape);
// t viewed with leading size-1 axes up to `rank`.
Tensor pad_rank(const Tensor& t, int rank);

}  // namespace lasgrad::detail
