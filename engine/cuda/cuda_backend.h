// The CUDA backend: cuBLAS GEMMs, CUDA kernels, and a caching device allocator. Plain C++ (no CUDA
// headers), so tests and tools compiled by the host compiler can reach the few CUDA-only controls.
// Its methods are defined by concern, as on the CPU: memory, fill and convert in cuda_backend.cu,
// element-wise ops and dropout in elementwise.cu, sum_to in reduce.cu, matmul in gemm.cu,
// permute/copy_axis in layout.cu, the neural-network kernels in nn.cu, fused attention in attention.cu.
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

#include "engine/backend.h"
#include "engine/cuda/device_allocator.h"

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

class CudaBackend final : public Backend {
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

  void fill(Tensor& out, double value) override;
  void convert(const Tensor& x, Tensor& out) override;

  void unary(UnaryOp op, const Tensor& x, double scalar, Tensor& out) override;
  void unary_grad(UnaryOp op, const Tensor& x, const Tensor& dy, Tensor& dx) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override;
  void masked_fill(const Tensor& x, const Tensor& mask, double value, Tensor& out) override;
  void dropout_mask(uint64_t seed, double p, Tensor& out) override;
  void adam(const AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v) override;

  void sum_to(const Tensor& x, Tensor& out) override;

  void matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& out) override;

  void permute(const Tensor& x, const std::vector<int>& perm, Tensor& out) override;
  void copy_axis(const Tensor& src, int64_t src_start, Tensor& dst, int64_t dst_start, int axis,
                 int64_t len) override;

  void softmax(const Tensor& x, Tensor& y) override;
  void softmax_grad(const Tensor& y, const Tensor& dy, Tensor& dx) override;
  void cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Tensor& loss) override;
  void cross_entropy_grad(const Tensor& logits, const Tensor& targets, int64_t ignore_index, double scale,
                          Tensor& dlogits) override;
  void layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& y, Tensor& mean,
                  Tensor& rstd) override;
  void layer_norm_grad(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                       const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta) override;
  void embedding(const Tensor& table, const Tensor& ids, Tensor& out) override;
  void embedding_grad(const Tensor& ids, const Tensor& dout, Tensor& dtable) override;
  void avg_pool_seq(const Tensor& x, int64_t P, Tensor& out) override;

  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lengths, const AttentionOptions& p,
                 Tensor& o, Tensor& lse) override;
  void attention_grad(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                      const Tensor& dout, const Tensor& lengths, const AttentionOptions& p, Tensor& dq, Tensor& dk,
                      Tensor& dv) override;

  // A small device scratch area for kernels that report a bad input (an id or target out of range):
  // two int32 words, reset before the launch and read back after it.
  int* error_flag();

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
