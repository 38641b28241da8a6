// The CUDA backend: cuBLAS GEMMs, CUDA kernels, and a caching device allocator. Plain C++ (no CUDA
// headers), so tests and tools compiled by the host compiler can reach the few CUDA-only controls.
// Its kernels are cuda::Kernels' (cuda_kernels.h), shared with the emulated twin the tests run; this
// class gives them the GPU: memory, launches, the error flag and cuBLAS (cuda_backend.cu, gemm.cu).
//
// Execution model: every kernel, cuBLAS call and device-to-device copy goes on one stream (the legacy
// default stream), so they run in issue order. That is what makes the caching allocator safe without
// events: a block freed on the host while a queued kernel still reads it can only be handed to a kernel
// queued later on the same stream. Host copies (cudaMemcpy) wait for the queued work.
#pragma once
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include "engine/cuda/cuda_kernels.h"
#include "engine/cuda/device_allocator.h"
#include "engine/cuda/gemm_plan.h"

namespace lasgrad {

// True when the CUDA runtime sees at least one device; otherwise false with the reason in *why
// (no driver, no device, ...). Never throws: tests call it to decide whether to skip.
bool cuda_device_available(std::string* why = nullptr);

// use_cuda_device (engine/backend.h): cudaSetDevice(index mod the number of GPUs).
void cuda_use_device(int index);

// DeviceAllocator's memory on the GPU (cuda_backend.cu): cudaMalloc (nullptr when out of memory),
// cudaFree, cudaDeviceSynchronize.
struct CudaMemory {
  void* malloc(size_t bytes);
  void free(void* p);
  void synchronize();
  const char* name() const { return "cudaMalloc"; }
};
using CudaAllocator = DeviceAllocator<CudaMemory>;

namespace cuda {
struct Launch;  // cuda_util.cuh
}

class CudaBackend final : public cuda::Kernels<CudaBackend> {
 public:
  CudaBackend();
  const char* name() const override { return "cuda"; }

  void* allocate(size_t bytes) override { return allocator_.allocate(bytes); }
  void deallocate(void* ptr, size_t bytes) override { allocator_.deallocate(ptr, bytes); }
  void copy_to_host(void* host_dst, const void* src, size_t bytes) override;
  void copy_from_host(void* dst, const void* host_src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  CudaAllocator& allocator() { return allocator_; }

  // TF32 tensor cores for float32 GEMMs (10-bit mantissa products, FP32 accumulation): off by default,
  // on when the environment has LASGRAD_TF32=1 at start-up, or through this setter.
  void set_tf32(bool on);
  bool tf32() const { return tf32_; }
  // Waits for all queued work (timing; surfacing asynchronous kernel faults at a known point).
  void synchronize();
  // The cuBLAS handle (a cublasHandle_t), created on first use.
  void* cublas_handle();

  // What cuda::Kernels asks of its device (cuda_kernels.h).
  cuda::Launch launch(const char* op) const;
  cuda::Launch attention_launch(const char* op) const;
  // A two-word device scratch area for kernels that report a bad input (an id or target out of range),
  // reset before the launch and read back after it.
  int* armed_flag(const char* op);
  void read_flag(const int* f, int* words) const;
  template <class In, class Out>
  void gemm(const cuda::GemmPlan& plan, const In* first, const In* second, Out* out);  // gemm.cu: cuBLAS

 private:
  CudaAllocator allocator_;
  std::mutex handle_mutex_;
  void* cublas_ = nullptr;
  bool tf32_ = false;
  int* flag_ = nullptr;
};

// The instance behind backend(Device::CUDA), as its concrete type.
CudaBackend& cuda_backend_impl();

}  // namespace lasgrad
