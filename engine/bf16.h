// bfloat16 (DType::BF16) as bits: the upper half of a float32 (8 exponent bits, 7 mantissa bits). Conversion from
// float rounds to nearest, ties to even, as CUDA's __float2bfloat16_rn and PyTorch do; NaN stays NaN.
// Plain C++, also compiled for the device (the tensor-core kernels pack their operands with it) and by
// the emulator of the CUDA thread model.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define LASGRAD_HOST_DEVICE __host__ __device__
#else
#define LASGRAD_HOST_DEVICE
#endif

namespace lasgrad {

LASGRAD_HOST_DEVICE inline uint32_t float_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

LASGRAD_HOST_DEVICE inline uint16_t bf16_from_float(float x) {
  const uint32_t u = float_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // a quiet NaN
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

LASGRAD_HOST_DEVICE inline float bf16_to_float(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

// x rounded to the nearest bfloat16, as a float.
LASGRAD_HOST_DEVICE inline float bf16_round(float x) { return bf16_to_float(bf16_from_float(x)); }

// Two bfloat16 in one 32-bit register, as the tensor-core instructions take them: `lo` in bits 0-15.
LASGRAD_HOST_DEVICE inline uint32_t bf16x2(float lo, float hi) {
  return static_cast<uint32_t>(bf16_from_float(lo)) | static_cast<uint32_t>(bf16_from_float(hi)) << 16;
}
LASGRAD_HOST_DEVICE inline float bf16x2_lo(uint32_t r) { return bf16_to_float(static_cast<uint16_t>(r & 0xffffu)); }
LASGRAD_HOST_DEVICE inline float bf16x2_hi(uint32_t r) { return bf16_to_float(static_cast<uint16_t>(r >> 16)); }

// A bfloat16 element, the C++ type of DType::BF16 in the kernels that store or convert elements of
// any dtype (fill, convert): from and to the other dtypes' types through float (double rounds to
// float first, as PyTorch's conversion does; to int32 truncates the float).
struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  LASGRAD_HOST_DEVICE explicit bf16(float x) : bits(bf16_from_float(x)) {}
  LASGRAD_HOST_DEVICE explicit bf16(double x) : bits(bf16_from_float(static_cast<float>(x))) {}
  LASGRAD_HOST_DEVICE explicit bf16(int32_t x) : bits(bf16_from_float(static_cast<float>(x))) {}
  LASGRAD_HOST_DEVICE explicit operator float() const { return bf16_to_float(bits); }
  LASGRAD_HOST_DEVICE explicit operator double() const { return bf16_to_float(bits); }
  LASGRAD_HOST_DEVICE explicit operator int32_t() const { return static_cast<int32_t>(bf16_to_float(bits)); }
};

}  // namespace lasgrad
