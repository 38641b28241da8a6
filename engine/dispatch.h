// dtype -> C++ type, for the backends' kernel templates (engine/cpu, engine/cuda).
#pragma once
#include <cstdint>
#include <string>

#include "engine/bf16.h"
#include "engine/tensor.h"

namespace lasgrad {

// Calls f(T{}) with T = float or double per the dtype; any other dtype is an Error naming the op.
template <class F>
void dispatch_floating(const char* op, DType dtype, const F& f) {
  switch (dtype) {
    case DType::F32: return f(float{});
    case DType::F64: return f(double{});
    default: throw Error(std::string(op) + ": the kernel needs float32 or float64, got " + dtype_name(dtype));
  }
}

// Calls f(T{}) with T = float, double, int32_t or bf16 (engine/bf16.h) per the dtype.
template <class F>
void dispatch_any(DType dtype, const F& f) {
  switch (dtype) {
    case DType::F32: return f(float{});
    case DType::F64: return f(double{});
    case DType::I32: return f(int32_t{});
    case DType::BF16: return f(bf16{});
  }
}

// Calls f(E{}) with E = uint16_t, uint32_t or uint64_t, an unsigned type of the dtype's element size:
// for kernels that move elements without looking at them (any dtype of that size).
template <class F>
void dispatch_size(DType dtype, const F& f) {
  if (dtype_size(dtype) == 8) f(uint64_t{});
  else if (dtype_size(dtype) == 2) f(uint16_t{});
  else f(uint32_t{});
}

}  // namespace lasgrad
