// The tensor-core instructions the kernels use, one function each: the PTX on a GPU, the emulator's
// warp-collective step in the tests (tests/cuda/simt_emulator.h), which follows the PTX ISA's fragment
// layouts and is tested against a plain matrix product there.
#pragma once
#include <cstdint>

#include "engine/cuda/kernel_common.cuh"

namespace lasgrad::cuda {
inline namespace LASGRAD_CUDA_ABI {

// D = A B + C over one 16 x 8 x 16 tile, by the whole warp: bfloat16 A (16 x 16, row-major) and B
// (16 x 8, column-major) in pairs per register (bf16x2, engine/bf16.h), float32 C and D, each lane
// holding its fragments in the layout of the PTX ISA's mma.m16n8k16 (floating point), with
// g = lane / 4 and t = lane % 4:
//   a[j] = A[g + 8 (j % 2)][2t + 8 (j / 2) .. + 1];  b[j] = B[2t + 8 j .. + 1][g];
//   c[i], d[i] = C[g + 8 (i / 2)][2t + i % 2].
// sm_80 and later.
__device__ inline void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                         const float (&c)[4]) {
#if defined(LASGRAD_SIMT)
  ::simt::mma_m16n8k16_bf16(d, a, b, c);
#elif defined(__CUDA_ARCH__)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#endif
}

}  // namespace LASGRAD_CUDA_ABI
}  // namespace lasgrad::cuda
