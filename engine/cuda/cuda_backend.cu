// The CUDA backend's instance, error reporting, the caching allocator, memory operations, fill and convert.
#include <cstdlib>
#include <cstring>

#include "engine/cuda/cuda_util.cuh"

namespace lasgrad {

namespace cuda {

void throw_cuda(cudaError_t e, const char* call, const char* op, const char* file, int line) {
  cudaGetLastError();  // clear a non-sticky error so that the next call does not report it again
  throw Error(std::string(op) + ": " + call + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
              ") at " + file + ":" + std::to_string(line));
}

void throw_cublas(cublasStatus_t s, const char* call, const char* op, const char* file, int line) {
  throw Error(std::string(op) + ": " + call + " failed: " + cublasGetStatusName(s) + " (" + cublasGetStatusString(s) +
              ") at " + file + ":" + std::to_string(line));
}

static bool sync_after_launch() {
  static const bool on = [] {
    const char* s = std::getenv("LASGRAD_CUDA_SYNC");
    return s && std::strcmp(s, "1") == 0;
  }();
  return on;
}

void check_launch(const char* op, const char* kernel) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess && sync_after_launch()) e = cudaDeviceSynchronize();
  if (e != cudaSuccess)
    throw Error(std::string(op) + ": launching " + kernel + " failed: " + cudaGetErrorName(e) + " (" +
                cudaGetErrorString(e) + ")");
}

}  // namespace cuda

using namespace cuda;

bool cuda_device_available(std::string* why) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (why) *why = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
    return false;
  }
  if (n == 0) {
    if (why) *why = "cudaGetDeviceCount reports 0 devices";
    return false;
  }
  return true;
}

Backend& cuda_backend() { return cuda_backend_impl(); }

CudaBackend& cuda_backend_impl() {
  // Never destroyed, like the CPU backend: tensors in static objects may be freed after main returns
  // and must still find their allocator (which then only files the block; the driver reclaims it at exit).
  static CudaBackend* instance = new CudaBackend();
  return *instance;
}

CudaBackend::CudaBackend() {
  const char* s = std::getenv("LASGRAD_TF32");
  tf32_ = s && std::strcmp(s, "1") == 0;
}

// ---- allocator ----

size_t CudaAllocator::bucket_size(size_t bytes) {
  if (bytes <= 4096) return (bytes + 511) / 512 * 512;
  // Eight buckets per power of two: round up to a multiple of 2^(floor(log2 bytes) - 3).
  int top = 63 - __builtin_clzll(static_cast<unsigned long long>(bytes));
  size_t step = size_t{1} << (top - 3);
  return (bytes + step - 1) / step * step;
}

void CudaAllocator::free_cached_locked() {
  for (auto& [size, blocks] : free_)
    for (void* p : blocks) {
      cudaFree(p);
      stats_.cached_bytes -= size;
      stats_.reserved_bytes -= size;
    }
  free_.clear();
}

void* CudaAllocator::allocate(size_t bytes) {
  const size_t size = bucket_size(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = free_.find(size);
  void* p = nullptr;
  if (it != free_.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    stats_.cached_bytes -= size;
    ++stats_.hits;
  } else {
    cudaError_t e = cudaMalloc(&p, size);
    if (e == cudaErrorMemoryAllocation) {  // out of memory: give the cache back and try once more
      cudaGetLastError();
      cudaDeviceSynchronize();  // queued kernels may still use cached blocks: let them finish first
      free_cached_locked();
      e = cudaMalloc(&p, size);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      throw Error("cuda allocator: cudaMalloc(" + std::to_string(size) + " bytes) failed: " + cudaGetErrorName(e) +
                  " (" + cudaGetErrorString(e) + "); lasgrad holds " + std::to_string(stats_.in_use_bytes) +
                  " bytes in tensors");
    }
    ++stats_.misses;
    stats_.reserved_bytes += size;
  }
  stats_.in_use_bytes += size;
  if (stats_.in_use_bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.in_use_bytes;
  return p;
}

void CudaAllocator::deallocate(void* ptr, size_t bytes) {
  const size_t size = bucket_size(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  free_[size].push_back(ptr);  // reusable at once: all work is on one stream (see cuda_backend.h)
  stats_.in_use_bytes -= size;
  stats_.cached_bytes += size;
}

void CudaAllocator::release_cached() {
  cudaDeviceSynchronize();
  std::lock_guard<std::mutex> lock(mutex_);
  free_cached_locked();
}

void CudaAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes = stats_.in_use_bytes;
}

CudaAllocator::Stats CudaAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

// ---- memory ----

void CudaBackend::copy_to_host(void* host_dst, const void* src, size_t bytes) {
  if (bytes) LASGRAD_CUDA_CHECK(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost), "copy_to_host");
}
void CudaBackend::copy_from_host(void* dst, const void* host_src, size_t bytes) {
  if (bytes) LASGRAD_CUDA_CHECK(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice), "copy_from_host");
}
void CudaBackend::copy(void* dst, const void* src, size_t bytes) { Launch{"copy"}.copy(dst, src, bytes); }

void CudaBackend::synchronize() { LASGRAD_CUDA_CHECK(cudaDeviceSynchronize(), "synchronize"); }

void* CudaBackend::cublas_handle() {
  std::lock_guard<std::mutex> lock(handle_mutex_);
  if (!cublas_) {
    cublasHandle_t h;
    LASGRAD_CUBLAS_CHECK(cublasCreate(&h), "matmul");
    LASGRAD_CUBLAS_CHECK(cublasSetMathMode(h, tf32_ ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH), "matmul");
    cublas_ = h;
  }
  return cublas_;
}

void CudaBackend::set_tf32(bool on) {
  std::lock_guard<std::mutex> lock(handle_mutex_);
  tf32_ = on;
  if (cublas_)
    LASGRAD_CUBLAS_CHECK(cublasSetMathMode(static_cast<cublasHandle_t>(cublas_),
                                           on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
                         "set_tf32");
}

int* CudaBackend::error_flag() {
  if (!flag_) LASGRAD_CUDA_CHECK(cudaMalloc(&flag_, 2 * sizeof(int)), "error_flag");
  return flag_;
}

}  // namespace lasgrad
