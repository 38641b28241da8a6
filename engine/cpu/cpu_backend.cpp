// The CPU backend's instance, its memory operations, fill and convert.
#include "engine/cpu/cpu_backend.h"

#include "engine/cpu/cpu_util.h"
#include "engine/cpu/eigen.h"

namespace lasgrad {

using namespace cpu;

Backend& cpu_backend() {
  // Never destroyed: tensors held in static objects may be freed after main returns, and must still
  // find their allocator. The OS reclaims the cached blocks at exit.
  static CpuBackend* instance = [] {
    // Every Eigen product runs on one thread: lasgrad splits the work itself into pieces that do not
    // depend on the thread count (gemm.cpp), so any thread count gives the same bits.
    Eigen::setNbThreads(1);
    return new CpuBackend();
  }();
  return *instance;
}

void CpuBackend::copy_to_host(void* host_dst, const void* src, size_t bytes) { parallel_memcpy(host_dst, src, bytes); }
void CpuBackend::copy_from_host(void* dst, const void* host_src, size_t bytes) {
  parallel_memcpy(dst, host_src, bytes);
}
void CpuBackend::copy(void* dst, const void* src, size_t bytes) { parallel_memcpy(dst, src, bytes); }

// out[i] = value converted to out's dtype (any dtype).
void CpuBackend::fill(Tensor& out, double value) {
  dispatch_any(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T v = static_cast<T>(value);
    T* o = static_cast<T*>(out.raw());
    parallel_for(out.numel(), kGrain, [&](int64_t b, int64_t e) { std::fill(o + b, o + e, v); });
  });
}

// out = x converted element by element (same shape, any dtypes; float -> int32 truncates).
void CpuBackend::convert(const Tensor& x, Tensor& out) {
  if (x.dtype() == out.dtype()) return parallel_memcpy(out.raw(), x.raw(), x.nbytes());
  dispatch_any(x.dtype(), [&](auto xtag) {
    dispatch_any(out.dtype(), [&](auto otag) {
      using X = decltype(xtag);
      using O = decltype(otag);
      const X* xs = static_cast<const X*>(x.raw());
      O* o = static_cast<O*>(out.raw());
      parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) o[i] = static_cast<O>(xs[i]);
      });
    });
  });
}

}  // namespace lasgrad
