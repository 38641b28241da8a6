// The sm_80 instructions the tensor-core kernels use, one function each: the PTX on a GPU, the emulator's
// step in the tests (tests/cuda/simt_emulator.h). mma and ldmatrix are warp-collective there and follow
// the PTX ISA's fragment layouts (tested against a plain matrix product); cp.async copies happen at the
// latest moment the ISA allows, so that a missing wait shows.
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

// Four 8 x 8 matrices of bfloat16 from shared memory into the fragments of a warp: lane l gives `row`,
// the address of row l % 8 of matrix l / 8 (16-byte aligned), and receives in r[m] matrix m's elements at
// row lane / 4, columns 2 (lane % 4) .. + 1 (an mma B fragment of a row-major K-major tile, or a row of
// an A fragment); with `trans`, column lane / 4 of rows 2 (lane % 4) .. + 1 (a B fragment from a
// row-major [k][n] tile). ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16; sm_75 and later.
template <bool trans>
__device__ inline void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
#if defined(LASGRAD_SIMT)
  ::simt::ldmatrix_x4(r, row, trans);
#elif defined(__CUDA_ARCH__)
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(row));
  if constexpr (trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
#endif
}

// 16 bytes from global to shared memory, asynchronously (cp.async.cg.shared.global, sm_80 and later):
// the first src_bytes (16 or 0) of src, zeros after them. Both addresses 16-byte aligned. The copy is
// done once cp_async_wait lets its group complete (and a barrier shows it to the other threads).
__device__ inline void cp_async16(void* dst, const void* src, unsigned src_bytes) {
#if defined(LASGRAD_SIMT)
  ::simt::cp_async(dst, src, 16, src_bytes);
#elif defined(__CUDA_ARCH__)
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(src_bytes));
#endif
}
// cp.async.commit_group: the copies issued since the last commit form a group.
__device__ inline void cp_async_commit() {
#if defined(LASGRAD_SIMT)
  ::simt::cp_async_commit();
#elif defined(__CUDA_ARCH__)
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
// cp.async.wait_group n: waits until at most the newest n committed groups are still in flight.
template <int n>
__device__ inline void cp_async_wait() {
#if defined(LASGRAD_SIMT)
  ::simt::cp_async_wait(n);
#elif defined(__CUDA_ARCH__)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(n));
#endif
}

}  // namespace LASGRAD_CUDA_ABI
}  // namespace lasgrad::cuda
