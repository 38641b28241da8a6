// The CUDA backend's kernels on the CPU emulator of CUDA's thread model (simt_emulator.h), as a
// Backend over host memory: under a CudaStandIn (engine/backend.h) every op on a Device::CUDA tensor
// runs the same device code as on a GPU, in any build, so the op-case table (tests/engine/op_cases.h)
// runs on it as on a GPU. Not emulated: matmul, which is cuBLAS's on a GPU, runs the CPU's GEMM here
// (test_gemm_plan checks the cuBLAS arguments instead).
//
//   EmulatedCudaBackend emulated;
//   CudaStandIn stand_in(emulated);
//   Tensor y = gelu(x.to(Device::CUDA));   // the CUDA gelu kernel, emulated
#pragma once
#include "engine/cuda/cuda_kernels.h"
#include "engine/cuda/gemm_plan.h"

namespace lasgrad::emulated {

class EmulatedCudaBackend final : public cuda::Kernels<EmulatedCudaBackend> {
 public:
  const char* name() const override { return "cuda (emulated)"; }
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  void copy_to_host(void* host_dst, const void* src, size_t bytes) override;
  void copy_from_host(void* dst, const void* host_src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;

  // What cuda::Kernels asks of its device (engine/cuda/cuda_kernels.h).
  struct Launch;
  Launch launch(const char* op) const;
  Launch attention_launch(const char* op) const;
  int* armed_flag(const char* op);
  void read_flag(const int* f, int* words) const { words[0] = f[0], words[1] = f[1]; }
  template <class In, class Out>
  void gemm(const cuda::GemmPlan& plan, const In* first, const In* second, Out* out) const;

 private:
  int flag_[2] = {-1, -1};
};

}  // namespace lasgrad::emulated
