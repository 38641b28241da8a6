// Element-wise kernels of the GPU backend: unary ops and their derivatives, broadcasting binary ops,
// masked_fill, the dropout mask, the fused Adam update, fill and dtype conversion. All are memory-bound
// grid-stride loops; the op is a runtime switch that every thread of a launch takes the same way (no
// divergence), which keeps one kernel per dtype instead of one per op.
//
// Kernels and launch plans live in this header, free of CUDA headers, so that the same code runs on the
// GPU (elementwise.cu) and on the CPU emulator of the thread model in the tests (test_cuda_emulated.cpp).
// `launch(kernel, name, grid, block, smem_bytes, args...)` runs a kernel; `launch.copy(dst, src, bytes)`
// copies device memory.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/kernel_common.cuh"
#include "engine/dispatch.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace lasgrad::cuda {
inline namespace LASGRAD_CUDA_ABI {
namespace elementwise {

// x, y [n]: y[i] = op(x[i], s); y may be x. Grid-stride, kThreads per block.
template <class T>
__global__ void unary_kernel(UnaryOp op, const T* x, T s, T* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const T v = x[i];
    T r;
    switch (op) {
      case UnaryOp::Neg: r = -v; break;
      case UnaryOp::Exp: r = dexp(v); break;
      case UnaryOp::Log: r = dlog(v); break;
      case UnaryOp::Sqrt: r = dsqrt(v); break;
      case UnaryOp::Tanh: r = dtanh(v); break;
      case UnaryOp::Relu: r = v < T(0) ? T(0) : v; break;  // keeps NaN visible, as on the CPU
      case UnaryOp::GeluErf: r = T(0.5) * v * (T(1) + derf(v * T(kSqrt1_2))); break;
      case UnaryOp::GeluTanh: r = T(0.5) * v * (T(1) + dtanh(T(kSqrt2OverPi) * (v + T(kGeluCubic) * v * v * v))); break;
      case UnaryOp::AddScalar: r = v + s; break;
      case UnaryOp::MulScalar: r = v * s; break;
      case UnaryOp::RsubScalar: r = s - v; break;
      case UnaryOp::RdivScalar: r = s / v; break;
      default: r = v; break;
    }
    y[i] = r;
  }
}

// x, dy, dx [n]: dx[i] = dy[i] * f'(x[i]); dx may alias x or dy. Grid-stride.
template <class T>
__global__ void unary_grad_kernel(UnaryOp op, const T* x, const T* dy, T* dx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const T v = x[i], g = dy[i];
    T d;
    switch (op) {
      case UnaryOp::Tanh: {
        const T t = dtanh(v);
        d = g * (T(1) - t * t);
        break;
      }
      case UnaryOp::Relu: d = v > T(0) ? g : T(0); break;  // f'(0) = 0
      case UnaryOp::GeluErf:                               // Phi(x) + x phi(x)
        d = g * (T(0.5) * (T(1) + derf(v * T(kSqrt1_2))) + v * T(kInvSqrt2Pi) * dexp(T(-0.5) * v * v));
        break;
      case UnaryOp::GeluTanh: {
        const T t = dtanh(T(kSqrt2OverPi) * (v + T(kGeluCubic) * v * v * v));
        d = g *
            (T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * T(kSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * v * v));
        break;
      }
      default: d = g; break;  // rejected on the host before the launch
    }
    dx[i] = d;
  }
}

// Two operands broadcast to a contiguous output, with the axes coalesced as on the CPU: size-1 output
// axes dropped, neighbours merged while each operand is broadcast on both or on neither. Passed by
// value to the kernel; sa/sb are element strides (0 = broadcast).
constexpr int kMaxDims = 8;
struct Bcast {
  int ndim = 0;
  int64_t dims[kMaxDims], sa[kMaxDims], sb[kMaxDims];
  int64_t n = 1;
};

inline Bcast make_bcast(const char* op, const Shape& out, const Shape& a, const Shape& b) {
  std::vector<int64_t> dims;
  std::vector<std::pair<bool, bool>> kind;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 1) continue;
    std::pair<bool, bool> k{a[i] == 1, b[i] == 1};
    if (!dims.empty() && kind.back() == k) dims.back() *= out[i];
    else dims.push_back(out[i]), kind.push_back(k);
  }
  if (dims.empty()) dims = {1}, kind = {{false, false}};
  if (dims.size() > kMaxDims)
    throw Error(std::string(op) + ": the cuda kernel broadcasts over at most " + std::to_string(kMaxDims) +
                " distinct axes, the shapes " + shape_str(a) + " and " + shape_str(b) + " need " +
                std::to_string(dims.size()));
  Bcast bc;
  bc.ndim = static_cast<int>(dims.size());
  int64_t ca = 1, cb = 1;
  for (int i = bc.ndim - 1; i >= 0; --i) {
    bc.dims[i] = dims[i];
    bc.sa[i] = kind[i].first ? 0 : ca;
    bc.sb[i] = kind[i].second ? 0 : cb;
    if (!kind[i].first) ca *= dims[i];
    if (!kind[i].second) cb *= dims[i];
    bc.n *= dims[i];
  }
  return bc;
}

// out [bc.n] (contiguous), a and b read at their broadcast offsets: out[i] = f(a[.], b[.]). Grid-stride;
// the offsets come from the output index by one div/mod per coalesced axis (usually one or two).
template <class O, class A, class B, class F>
__global__ void broadcast_kernel(Bcast bc, const A* a, const B* b, O* out, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < bc.n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rem = i, oa = 0, ob = 0;
    for (int k = bc.ndim - 1; k >= 0; --k) {
      const int64_t idx = rem % bc.dims[k];
      rem /= bc.dims[k];
      oa += idx * bc.sa[k];
      ob += idx * bc.sb[k];
    }
    out[i] = f(a[oa], b[ob]);
  }
}

template <class T>
struct BinaryFn {
  BinaryOp op;
  __device__ T operator()(T x, T y) const {
    switch (op) {
      case BinaryOp::Add: return x + y;
      case BinaryOp::Sub: return x - y;
      case BinaryOp::Mul: return x * y;
      default: return x / y;
    }
  }
};

template <class T>
struct MaskFn {
  T v;
  __device__ T operator()(T x, int32_t m) const { return m != 0 ? v : x; }
};

// out [n]: 0 where counter_uniform(seed, i) < p, else keep. Grid-stride; the same draws as the CPU.
template <class T>
__global__ void dropout_kernel(uint64_t seed, double p, T keep, T* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = counter_uniform(seed, static_cast<uint64_t>(i)) < p ? T(0) : keep;
}

// p, g, m, v [n]: one Adam update per element, AdamCoefficients' steps in T (engine/backend.h), in the
// CPU kernel's order. Grid-stride.
template <class T>
__global__ void adam_kernel(AdamCoefficients<T> c, T* p, const T* g, T* m, T* v, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    T gi = g[i] * c.scale, pi = p[i];
    if (c.decoupled) pi *= c.decay;
    else gi += c.wd * pi;
    const T mi = m[i] * c.b1 + (T(1) - c.b1) * gi;
    const T vi = v[i] * c.b2 + (T(1) - c.b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - c.step_size * mi / (dsqrt(vi) / c.bc2_sqrt + c.eps);
  }
}

// out [n]: out[i] = v. Grid-stride, kThreads per block.
template <class T>
__global__ void fill_kernel(T* out, T v, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = v;
}

// x, out [n]: out[i] = O(x[i]) (float -> int32 truncates, as on the CPU). Grid-stride.
template <class X, class O>
__global__ void convert_kernel(const X* x, O* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = static_cast<O>(x[i]);
}

// ---- launch plans ----

// out = op(x, scalar), any floating dtype.
template <class Launch>
void unary(UnaryOp op, const Tensor& x, double scalar, Tensor& out, const Launch& launch) {
  const int64_t n = x.numel();
  if (n == 0) return;
  dispatch_floating("unary", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    launch(unary_kernel<T>, "unary_kernel", Extent{blocks_for(n)}, Extent{kThreads}, size_t{0}, op, x.data<T>(),
           static_cast<T>(scalar), out.data<T>(), n);
  });
}

// dx = dy * op'(x), for the ops whose backward needs a kernel.
template <class Launch>
void unary_grad(UnaryOp op, const Tensor& x, const Tensor& dy, Tensor& dx, const Launch& launch) {
  if (op != UnaryOp::Tanh && op != UnaryOp::Relu && op != UnaryOp::GeluErf && op != UnaryOp::GeluTanh)
    throw Error("unary_grad: the cuda kernel covers tanh, relu and gelu only (op " + std::to_string(int(op)) + ")");
  const int64_t n = x.numel();
  if (n == 0) return;
  dispatch_floating("unary_grad", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    launch(unary_grad_kernel<T>, "unary_grad_kernel", Extent{blocks_for(n)}, Extent{kThreads}, size_t{0}, op,
           x.data<T>(), dy.data<T>(), dx.data<T>(), n);
  });
}

template <class Launch>
void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out, const Launch& launch) {
  if (out.numel() == 0) return;
  dispatch_floating("binary", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Bcast bc = make_bcast("binary", out.shape(), a.shape(), b.shape());
    launch(broadcast_kernel<T, T, T, BinaryFn<T>>, "broadcast_kernel", Extent{blocks_for(bc.n)}, Extent{kThreads},
           size_t{0}, bc, a.data<T>(), b.data<T>(), out.data<T>(), BinaryFn<T>{op});
  });
}

template <class Launch>
void masked_fill(const Tensor& x, const Tensor& mask, double value, Tensor& out, const Launch& launch) {
  if (out.numel() == 0) return;
  dispatch_floating("masked_fill", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Bcast bc = make_bcast("masked_fill", out.shape(), x.shape(), mask.shape());
    launch(broadcast_kernel<T, T, int32_t, MaskFn<T>>, "broadcast_kernel", Extent{blocks_for(bc.n)}, Extent{kThreads},
           size_t{0}, bc, x.data<T>(), mask.data<int32_t>(), out.data<T>(), MaskFn<T>{static_cast<T>(value)});
  });
}

template <class Launch>
void dropout_mask(uint64_t seed, double p, Tensor& out, const Launch& launch) {
  const int64_t n = out.numel();
  if (n == 0) return;
  dispatch_floating("dropout_mask", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T keep = p >= 1 ? T(0) : static_cast<T>(1.0 / (1.0 - p));
    launch(dropout_kernel<T>, "dropout_kernel", Extent{blocks_for(n)}, Extent{kThreads}, size_t{0}, seed, p, keep,
           out.data<T>(), n);
  });
}

template <class Launch>
void adam(const AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v, const Launch& launch) {
  const int64_t n = p.numel();
  if (n == 0) return;
  dispatch_floating("adam", p.dtype(), [&](auto tag) {
    using T = decltype(tag);
    launch(adam_kernel<T>, "adam_kernel", Extent{blocks_for(n)}, Extent{kThreads}, size_t{0}, AdamCoefficients<T>(s),
           p.data<T>(), g.data<T>(), m.data<T>(), v.data<T>(), n);
  });
}

template <class Launch>
void fill(Tensor& out, double value, const Launch& launch) {
  const int64_t n = out.numel();
  if (n == 0) return;
  dispatch_any(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    launch(fill_kernel<T>, "fill_kernel", Extent{blocks_for(n)}, Extent{kThreads}, size_t{0},
           static_cast<T*>(out.raw()), static_cast<T>(value), n);
  });
}

template <class Launch>
void convert(const Tensor& x, Tensor& out, const Launch& launch) {
  const int64_t n = x.numel();
  if (n == 0) return;
  if (x.dtype() == out.dtype()) return launch.copy(out.raw(), x.raw(), x.nbytes());
  dispatch_any(x.dtype(), [&](auto xtag) {
    dispatch_any(out.dtype(), [&](auto otag) {
      using X = decltype(xtag);
      using O = decltype(otag);
      launch(convert_kernel<X, O>, "convert_kernel", Extent{blocks_for(n)}, Extent{kThreads}, size_t{0},
             static_cast<const X*>(x.raw()), static_cast<O*>(out.raw()), n);
    });
  });
}

}  // namespace elementwise
}  // namespace LASGRAD_CUDA_ABI
}  // namespace lasgrad::cuda
