// The CUDA backend's kernels (engine/kernels.h), declared once for its two instantiations: the GPU's
// (CudaBackend, engine/cuda/cuda_backend.h: cuda::Launch, device memory, cuBLAS) and the emulator's
// (EmulatedCudaBackend, tests/cuda/emulated_backend.h: the SIMT emulator's launch, host memory, the
// GEMM by its definition). Each method (defined in cuda_kernels.cuh, which each backend's file
// instantiates) runs the kernels of its concern (*_kernels.cuh) with D's launch. D, the derived
// backend (CRTP), provides:
//   launch(op), attention_launch(op)        the launch of op's kernels (attention's take shared memory)
//   int* armed_flag(op)                      the two-word error flag of nn's checks, reset to -1
//   read_flag(f, words)                      its two words, read back after the kernel
//   gemm(plan, first, second, out)           the column-major GEMM of a GemmPlan, sizes nonzero: float
//                                            and double operands into their own type, bf16 into float
#pragma once
#include <cstdint>
#include <vector>

#include "engine/backend.h"

namespace lasgrad::cuda {

template <class D>
class Kernels : public Backend {
 public:
#define LASGRAD_CUDA_KERNEL(name, part, params, args) void name params override;
  LASGRAD_KERNELS(LASGRAD_CUDA_KERNEL)
#undef LASGRAD_CUDA_KERNEL

 private:
  D& self() { return static_cast<D&>(*this); }
  // Throws what a checking kernel recorded in flag f. `what` is "target" or "id".
  void check_flag(int* f, const char* op, const char* what, const char* where, int64_t bound);
};

}  // namespace lasgrad::cuda
