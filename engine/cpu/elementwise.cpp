// Element-wise kernels: unary ops and their derivatives, broadcasting binary ops, masked_fill, the
// dropout mask and the fused Adam update. Transcendentals go through Eigen arrays, which vectorise
// exp/log/tanh/erf (the compiler cannot vectorise std::exp without -ffast-math).
#include <cmath>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_util.h"
#include "engine/cpu/eigen.h"
#include "engine/rng.h"

#include <unsupported/Eigen/SpecialFunctions>  // erf

namespace lasgrad {

using namespace cpu;

// ---- unary ----

// y[0..n) = op(x[0..n)); y may be x.
template <class T>
static void unary_run(UnaryOp op, const T* xp, T s, T* yp, int64_t n) {
  CVec<T> x(xp, n);
  Vec<T> y(yp, n);
  switch (op) {
    case UnaryOp::Neg: y = -x; break;
    case UnaryOp::Exp: y = x.exp(); break;
    case UnaryOp::Log: y = x.log(); break;
    case UnaryOp::Sqrt: y = x.sqrt(); break;
    case UnaryOp::Tanh: y = x.tanh(); break;
    case UnaryOp::Relu:  // x < 0 ? 0 : x keeps NaN visible
      for (int64_t i = 0; i < n; ++i) yp[i] = xp[i] < T(0) ? T(0) : xp[i];
      break;
    case UnaryOp::GeluErf: y = T(0.5) * x * (T(1) + (x * T(kSqrt1_2)).erf()); break;
    case UnaryOp::GeluTanh: y = T(0.5) * x * (T(1) + (T(kSqrt2OverPi) * (x + T(kGeluCubic) * x.cube())).tanh()); break;
    case UnaryOp::AddScalar: y = x + s; break;
    case UnaryOp::MulScalar: y = x * s; break;
    case UnaryOp::RsubScalar: y = s - x; break;
    case UnaryOp::RdivScalar: y = s / x; break;
  }
}

// x, out: same shape.
void CpuBackend::unary(UnaryOp op, const Tensor& x, double scalar, Tensor& out) {
  dispatch_floating("unary", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* yp = out.data<T>();
    parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) { unary_run<T>(op, xp + b, T(scalar), yp + b, e - b); });
  });
}

// dx[0..n) = dy * f'(x); dx may be x or dy (each entry reads only its own inputs).
template <class T>
static void unary_grad_run(UnaryOp op, const T* xp, const T* dyp, T* dxp, int64_t n) {
  CVec<T> x(xp, n), dy(dyp, n);
  Vec<T> dx(dxp, n);
  switch (op) {
    case UnaryOp::Tanh: dx = dy * (T(1) - x.tanh().square()); break;
    case UnaryOp::Relu:  // f'(0) = 0
      for (int64_t i = 0; i < n; ++i) dxp[i] = xp[i] > T(0) ? dyp[i] : T(0);
      break;
    case UnaryOp::GeluErf:  // Phi(x) + x phi(x)
      dx = dy * (T(0.5) * (T(1) + (x * T(kSqrt1_2)).erf()) + x * T(kInvSqrt2Pi) * (T(-0.5) * x.square()).exp());
      break;
    case UnaryOp::GeluTanh: {  // u = c (x + a x^3): 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) c (1 + 3 a x^2)
      for (int64_t b = 0; b < n; b += 1024) {  // a stack tile holds tanh u, computed once
        int64_t m = std::min<int64_t>(1024, n - b);
        T tile[1024];
        CVec<T> xs(xp + b, m), dys(dyp + b, m);
        Vec<T> t(tile, m);
        t = (T(kSqrt2OverPi) * (xs + T(kGeluCubic) * xs.cube())).tanh();
        Vec<T>(dxp + b, m) = dys * (T(0.5) * (T(1) + t) + T(0.5) * xs * (T(1) - t.square()) * T(kSqrt2OverPi) *
                                                              (T(1) + T(3 * kGeluCubic) * xs.square()));
      }
      break;
    }
    default: break;  // rejected by unary_grad before any work
  }
}

// x, dy, dx: same shape.
void CpuBackend::unary_grad(UnaryOp op, const Tensor& x, const Tensor& dy, Tensor& dx) {
  if (op != UnaryOp::Tanh && op != UnaryOp::Relu && op != UnaryOp::GeluErf && op != UnaryOp::GeluTanh)
    throw Error("unary_grad: the cpu kernel covers tanh, relu and gelu only (op " + std::to_string(int(op)) + ")");
  dispatch_floating("unary_grad", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    const T* dyp = dy.data<T>();
    T* dxp = dx.data<T>();
    parallel_for(x.numel(), kGrain,
                 [&](int64_t b, int64_t e) { unary_grad_run<T>(op, xp + b, dyp + b, dxp + b, e - b); });
  });
}

// ---- broadcasting ----

// Two operands broadcast to a contiguous output, with the axes coalesced: size-1 output axes are
// dropped and neighbouring axes merged while each operand is broadcast on both or on neither. After
// that the common cases are one or two axes: same shape is [n] with unit strides; a bias add
// [N, D] + [1, D] is [N, D] with b's row stride 0; a scalar operand has stride 0 everywhere. The
// innermost stride of an operand is 1 or 0, which picks one of four vectorisable inner loops.
struct Broadcast {
  std::vector<int64_t> dims, sa, sb;  // output extents; element strides of a and b (0 = broadcast)

  Broadcast(const Shape& out, const Shape& a, const Shape& b) {
    std::vector<std::pair<bool, bool>> kind;  // (a broadcast, b broadcast) per kept axis
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i] == 1) continue;
      std::pair<bool, bool> k{a[i] == 1, b[i] == 1};
      if (!dims.empty() && kind.back() == k) {
        dims.back() *= out[i];
      } else {
        dims.push_back(out[i]);
        kind.push_back(k);
      }
    }
    if (dims.empty()) {  // a single element
      dims = {1};
      kind = {{false, false}};
    }
    size_t r = dims.size();
    sa.assign(r, 0);
    sb.assign(r, 0);
    int64_t ca = 1, cb = 1;  // contiguous strides within each operand
    for (size_t i = r; i-- > 0;) {
      if (!kind[i].first) sa[i] = ca, ca *= dims[i];
      if (!kind[i].second) sb[i] = cb, cb *= dims[i];
    }
  }

  // Calls run(out_offset, a_offset, b_offset, len) over maximal runs along the innermost axis,
  // split across threads by output element.
  template <class F>
  void for_each_run(const F& run) const {
    const int r = static_cast<int>(dims.size());
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    parallel_for(n, kGrain, [&](int64_t begin, int64_t end) {
      std::vector<int64_t> idx(r);
      int64_t oa = 0, ob = 0, rem = begin;
      for (int k = r - 1; k >= 0; --k) {
        idx[k] = rem % dims[k];
        rem /= dims[k];
        oa += idx[k] * sa[k];
        ob += idx[k] * sb[k];
      }
      for (int64_t pos = begin; pos < end;) {
        int64_t len = std::min(dims[r - 1] - idx[r - 1], end - pos);
        run(pos, oa, ob, len);
        pos += len;
        idx[r - 1] += len;
        oa += len * sa[r - 1];
        ob += len * sb[r - 1];
        for (int k = r - 1; k > 0 && idx[k] == dims[k]; --k) {  // carry into outer axes
          oa += sa[k - 1] - dims[k] * sa[k];
          ob += sb[k - 1] - dims[k] * sb[k];
          idx[k] = 0;
          ++idx[k - 1];
        }
      }
    });
  }

  int64_t inner_a() const { return sa.back(); }
  int64_t inner_b() const { return sb.back(); }
};

// o[i] = f(a[i * ua], b[i * ub]) for i < n, with ua, ub in {0, 1}; o may be a or b.
template <class O, class A, class B, class F>
static inline void run_strided(O* o, const A* a, const B* b, int64_t n, bool ua, bool ub, const F& f) {
  if (ua && ub) {
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]);
  } else if (ua) {
    const B bv = b[0];
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], bv);
  } else if (ub) {
    const A av = a[0];
    for (int64_t i = 0; i < n; ++i) o[i] = f(av, b[i]);
  } else {
    std::fill(o, o + n, f(a[0], b[0]));
  }
}

// a, b: padded to out's rank, each axis equal to out's or 1; out may alias a or b.
void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  dispatch_floating("binary", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* outp = out.data<T>();
    Broadcast bc(out.shape(), a.shape(), b.shape());
    bool ua = bc.inner_a() != 0, ub = bc.inner_b() != 0;
    auto launch = [&](auto f) {
      bc.for_each_run(
          [&](int64_t o, int64_t oa, int64_t ob, int64_t n) { run_strided(outp + o, ap + oa, bp + ob, n, ua, ub, f); });
    };
    switch (op) {
      case BinaryOp::Add: return launch([](T x, T y) { return x + y; });
      case BinaryOp::Sub: return launch([](T x, T y) { return x - y; });
      case BinaryOp::Mul: return launch([](T x, T y) { return x * y; });
      case BinaryOp::Div: return launch([](T x, T y) { return x / y; });
    }
  });
}

// x, out: same shape; mask I32 padded to x's rank and broadcast.
void CpuBackend::masked_fill(const Tensor& x, const Tensor& mask, double value, Tensor& out) {
  dispatch_floating("masked_fill", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    const int32_t* mp = mask.data<int32_t>();
    T* outp = out.data<T>();
    const T v = static_cast<T>(value);
    Broadcast bc(out.shape(), x.shape(), mask.shape());
    bool ux = bc.inner_a() != 0, um = bc.inner_b() != 0;
    bc.for_each_run([&](int64_t o, int64_t ox, int64_t om, int64_t n) {
      run_strided(outp + o, xp + ox, mp + om, n, ux, um, [v](T xv, int32_t m) { return m != 0 ? v : xv; });
    });
  });
}

// ---- dropout ----

// out (any shape, F32/F64): 0 where counter_uniform(seed, i) < p, else 1/(1-p). Each draw is a pure
// function of (seed, i) (engine/rng.h), so the mask is the same for any thread count and on the GPU.
void CpuBackend::dropout_mask(uint64_t seed, double p, Tensor& out) {
  dispatch_floating("dropout_mask", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* o = out.data<T>();
    const T keep = p >= 1 ? T(0) : static_cast<T>(1.0 / (1.0 - p));
    parallel_for(out.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) o[i] = counter_uniform(seed, static_cast<uint64_t>(i)) < p ? T(0) : keep;
    });
  });
}

// ---- Adam ----

// p, g, m, v [n]: one update per element, AdamCoefficients' steps in T. Element-independent, so any
// thread count gives the same bits.
void CpuBackend::adam(const AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v) {
  dispatch_floating("adam", p.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const AdamCoefficients<T> c(s);
    T* pp = p.data<T>();
    const T* gp = g.data<T>();
    T* mp = m.data<T>();
    T* vp = v.data<T>();
    parallel_for(p.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        T gi = gp[i] * c.scale;
        if (c.decoupled) pp[i] *= c.decay;
        else gi += c.wd * pp[i];
        mp[i] = mp[i] * c.b1 + (T(1) - c.b1) * gi;  // torch: m.lerp_(g, 1 - b1)
        vp[i] = vp[i] * c.b2 + (T(1) - c.b2) * gi * gi;
        pp[i] -= c.step_size * mp[i] / (std::sqrt(vp[i]) / c.bc2_sqrt + c.eps);
      }
    });
  });
}

}  // namespace lasgrad
