// The CPU backend: Eigen GEMM, OpenMP kernels, and a caching allocator. Its methods are defined by
// concern: memory and conversions in cpu_backend.cpp, element-wise ops and dropout in elementwise.cpp,
// sum_to in reduce.cpp, matmul in gemm.cpp, permute/copy_axis in layout.cpp, and the neural-network
// kernels (softmax, cross-entropy, layer norm, embedding, pooling) in nn.cpp.
#pragma once
#include "engine/backend.h"
#include "engine/cpu/allocator.h"

namespace lasgrad {

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }

  void* allocate(size_t bytes) override { return allocator_.allocate(bytes); }
  void deallocate(void* ptr, size_t bytes) override { allocator_.deallocate(ptr, bytes); }
  void copy_to_host(void* host_dst, const void* src, size_t bytes) override;
  void copy_from_host(void* dst, const void* host_src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  CachingAllocator& allocator() { return allocator_; }

  // Each in the file of its concern; fused LaS attention in attention.cpp.
#define LASGRAD_CPU_KERNEL(name, part, params, args) void name params override;
  LASGRAD_KERNELS(LASGRAD_CPU_KERNEL)
#undef LASGRAD_CPU_KERNEL

 private:
  CachingAllocator allocator_;
};

}  // namespace lasgrad
