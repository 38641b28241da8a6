// The CUDA backend's instance, error reporting, the caching allocator, memory operations, the launches
// and error flag its kernels use, and the instantiation of those kernels (cuda_kernels.cuh).
#include <cstdlib>
#include <cstring>

#include "engine/cuda/cuda_util.cuh"  // before the kernels: CUDA's own headers
#include "engine/cuda/cuda_kernels.cuh"

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
    if (why)
      *why = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
    return false;
  }
  if (n == 0) {
    if (why) *why = "cudaGetDeviceCount reports 0 devices";
    return false;
  }
  return true;
}

void cuda_use_device(int index) {
  int n = 0;
  LASGRAD_CUDA_CHECK(cudaGetDeviceCount(&n), "use_cuda_device");
  if (n == 0 || index < 0) throw Error("use_cuda_device(" + std::to_string(index) + "): no GPU here");
  LASGRAD_CUDA_CHECK(cudaSetDevice(index % n), "use_cuda_device");
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

void* CudaMemory::malloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not sticky: clear it, the allocator retries or reports
    return nullptr;
  }
  if (e != cudaSuccess) throw_cuda(e, "cudaMalloc", "allocate", __FILE__, __LINE__);
  return p;
}

void CudaMemory::free(void* p) { cudaFree(p); }

void CudaMemory::synchronize() { LASGRAD_CUDA_CHECK(cudaDeviceSynchronize(), "allocate"); }

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
    LASGRAD_CUBLAS_CHECK(
        cublasSetMathMode(static_cast<cublasHandle_t>(cublas_), on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
        "set_tf32");
}

// ---- what cuda::Kernels asks of the device ----

cuda::Launch CudaBackend::launch(const char* op) const { return cuda::Launch{op}; }
cuda::Launch CudaBackend::attention_launch(const char* op) const { return cuda::Launch{op}; }

// Resets the two-word error flag to "none" (-1) before a checking kernel.
int* CudaBackend::armed_flag(const char* op) {
  if (!flag_) LASGRAD_CUDA_CHECK(cudaMalloc(&flag_, 2 * sizeof(int)), op);
  LASGRAD_CUDA_CHECK(cudaMemsetAsync(flag_, 0xff, 2 * sizeof(int), 0), op);
  return flag_;
}

void CudaBackend::read_flag(const int* f, int* words) const {
  LASGRAD_CUDA_CHECK(cudaMemcpy(words, f, 2 * sizeof(int), cudaMemcpyDeviceToHost), "read_flag");
}

}  // namespace lasgrad

namespace lasgrad::cuda {
template class Kernels<CudaBackend>;  // every kernel method (cuda_kernels.cuh), compiled here by nvcc
}  // namespace lasgrad::cuda
