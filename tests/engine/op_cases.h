// The op-case table, in the manner of ggml's test-backend-ops: each op case is declared once, here,
// with its inputs, the op under test and an independent reference, and runs in every mode:
//   forward   float64 on the CPU against `reference`, the same function written as plain loops over
//             the inputs' values (tests/engine/test_op_cases.cpp);
//   gradient  float64 finite differences of every floating input (tests/engine/test_op_cases.cpp);
//   emulated  the CUDA kernels on the CPU emulator against the CPU, float32 and float64, the output and
//             every floating input's gradient (tests/cuda/test_op_cases_emulated.cpp);
//   bf16      for the ops that take bfloat16 operands (OpCase::bf16): float32 inputs cast to bfloat16
//             before the op, on the CPU against the reference of the rounded values (test_op_cases.cpp),
//             and on the emulator and a GPU against the CPU, as above;
//   gpu       the same on a GPU where one exists (tests/cuda/test_cuda.cpp).
// Adding an op: add its case to op_cases() below (README, "Adding an op").
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "engine/attention.h"
#include "engine/ops.h"
#include "engine/rng.h"

namespace lasgrad::test {

// One input: floating values uniform in [lo, hi), or int32 ids uniform in [0, ids) when ids > 0 (token
// ids, targets, masks). Floating inputs are the ones differentiated.
struct OpInput {
  Shape shape;
  double lo = -1, hi = 1;
  int32_t ids = 0;
};

using Values = std::vector<double>;  // a tensor's entries, row-major

struct OpCase {
  std::string name;
  std::vector<OpInput> inputs;
  std::function<Tensor(const std::vector<Tensor>&)> op;         // the op under test
  std::function<Values(const std::vector<Values>&)> reference;  // the same function, by plain loops
  double tol32 = 1e-5;  // float32 device against CPU, per entry, relative to 1 + |cpu|
  bool bf16 = false;    // the op takes bfloat16 operands: run the bf16 mode too
};

// The bf16 mode's dtype argument: float32 leaves, cast to DType::BF16 on their way into the op.
inline DType leaf_dtype(DType dt) { return compute_dtype(dt); }

// The inputs of case c, the same values for every dtype and device (floating ones as leaves that
// require grad, float32 ones for DType::BF16).
inline std::vector<Tensor> case_inputs(const OpCase& c, DType dt, Device device) {
  Rng rng(std::hash<std::string>{}(c.name));
  std::vector<Tensor> out;
  for (const OpInput& in : c.inputs) {
    const size_t n = static_cast<size_t>(numel_of(in.shape));
    if (in.ids > 0) {
      std::vector<int32_t> v(n);
      for (int32_t& x : v) x = static_cast<int32_t>(rng.uniform(0, in.ids)) % in.ids;
      out.push_back(Tensor::from(v, in.shape, device));
    } else {
      std::vector<double> v(n);
      for (double& x : v) x = rng.uniform(in.lo, in.hi);
      Tensor t = Tensor::from(v, in.shape, leaf_dtype(dt)).to(device);
      t.set_requires_grad(true);
      out.push_back(t);
    }
  }
  return out;
}

// The op of case c on its inputs, the floating ones cast to bfloat16 first in the bf16 mode.
inline Tensor case_op(const OpCase& c, const std::vector<Tensor>& in, DType dt) {
  if (dt != DType::BF16) return c.op(in);
  std::vector<Tensor> args;
  for (const Tensor& t : in) args.push_back(t.dtype() == DType::I32 ? t : cast(t, DType::BF16));
  return c.op(args);
}

// Runs case c on `device` in `dt`: the output and, after the backward of sum(out * up) for a fixed
// random `up`, every floating input's gradient (undefined for ids).
struct CaseRun {
  Tensor out;
  std::vector<Tensor> grads;
};
inline CaseRun run_case(const OpCase& c, DType dt, Device device) {
  std::vector<Tensor> in = case_inputs(c, dt, device);
  CaseRun r;
  r.out = case_op(c, in, dt);
  Rng rng(7);
  std::vector<double> up(static_cast<size_t>(r.out.numel()));
  for (double& u : up) u = rng.uniform(-1, 1);
  sum(mul(r.out, Tensor::from(up, r.out.shape(), r.out.dtype()).to(device))).backward();
  for (const Tensor& t : in) r.grads.push_back(t.dtype() == DType::I32 ? Tensor() : t.grad());
  return r;
}

// Every entry of got within tol (1 + |want|) of want, reporting the first entry off.
inline void check_entries(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  const Values g = got.to_doubles(), w = want.to_doubles();
  REQUIRE_MESSAGE(g.size() == w.size(), what);
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < g.size(); ++i)
    if (!(std::abs(g[i] - w[i]) <= tol * (1 + std::abs(w[i])))) {  // NaN counts as off
      if (bad == 0) first = i;
      ++bad;
    }
  INFO(what << ": " << bad << " of " << g.size() << " entries off; first at " << first << ": got "
            << (bad ? g[first] : 0) << ", want " << (bad ? w[first] : 0));
  CHECK(bad == 0);
}

// The device mode: case c on `device` against the CPU, in `dt`, output and gradients, within 1e-10
// (float64) or the case's tol32 (float32, and bf16, whose products both devices sum in float32 from the
// same rounded operands), times `slack` (a GPU's sums round in other orders than the emulator's).
inline void check_case_on_device(const OpCase& c, DType dt, Device device, double slack = 1) {
  const double tol = (dt == DType::F64 ? 1e-10 : c.tol32) * slack;
  const CaseRun want = run_case(c, dt, Device::CPU), got = run_case(c, dt, device);
  const std::string what = c.name + " (" + dtype_name(dt) + ", " + device_name(device) + ")";
  check_entries(got.out.to(Device::CPU), want.out, tol, what + " output");
  for (size_t i = 0; i < want.grads.size(); ++i)
    if (want.grads[i].defined())
      check_entries(got.grads[i].to(Device::CPU), want.grads[i], tol, what + " gradient of input " + std::to_string(i));
}

namespace ref {  // plain-loop helpers for the references

// The LaS operator of engine/attention.h by its definition, for q, k, v [B, H, L, dh] without padding:
// decayed scaled logits inside chunks of C, the causal mask, a softmax per row, each row box-pooled
// over P (zeros beyond the chunk; strict: then zero again right of the diagonal), then A_p V.
inline Values las(const Values& q, const Values& k, const Values& v, int64_t B, int64_t H, int64_t L, int64_t dh,
                  const std::vector<double>& alpha, int64_t P, int64_t C, bool causal, bool strict = false) {
  Values o(static_cast<size_t>(B * H * L * dh), 0.0);
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const double a = alpha[bh % H];
    auto at = [&](const Values& x, int64_t i, int64_t d) { return x[(bh * L + i) * dh + d]; };
    for (int64_t i = 0; i < L; ++i) {
      const int64_t c0 = i / C * C, c1 = std::min(L, c0 + C);
      std::vector<double> A(static_cast<size_t>(L), 0.0);
      double mx = -INFINITY, z = 0;
      for (int64_t j = c0; j < c1; ++j) {
        if (causal && j > i) continue;
        double s = 0;
        for (int64_t d = 0; d < dh; ++d) s += at(q, i, d) * at(k, j, d);
        A[j] = s / std::sqrt(double(dh)) * std::exp(-a * std::abs(double(i - j)));
        mx = std::max(mx, A[j]);
      }
      for (int64_t j = c0; j < c1; ++j)
        if (!(causal && j > i)) z += std::exp(A[j] - mx);
      for (int64_t j = c0; j < c1; ++j) A[j] = causal && j > i ? 0.0 : std::exp(A[j] - mx) / z;
      for (int64_t j = c0; j < c1; ++j) {
        if (strict && j > i) continue;
        double ap = 0;
        for (int64_t t = -P / 2; t <= P / 2; ++t)
          if (j + t >= c0 && j + t < c1) ap += A[j + t] / double(P);
        for (int64_t d = 0; d < dh; ++d) o[(bh * L + i) * dh + d] += ap * at(v, j, d);
      }
    }
  }
  return o;
}

inline Values map(const Values& x, const std::function<double(double)>& f) {
  Values y(x.size());
  std::transform(x.begin(), x.end(), y.begin(), f);
  return y;
}

}  // namespace ref

inline const std::vector<OpCase>& op_cases() {
  using In = std::vector<Tensor>;
  using V = std::vector<Values>;
  // The table keeps one case per paragraph (its name, inputs and op on the first line), unformatted.
  // clang-format off
  static const std::vector<OpCase> cases = {
      {"add, b broadcast over rows", {{{3, 4}}, {{4}}}, [](const In& x) { return add(x[0], x[1]); },
       [](const V& x) {
         Values y(12);
         for (int i = 0; i < 12; ++i) y[i] = x[0][i] + x[1][i % 4];
         return y;
       }},
      {"sub, both broadcast", {{{2, 1, 3}}, {{4, 1}}}, [](const In& x) { return sub(x[0], x[1]); },
       [](const V& x) {
         Values y(24);
         for (int a = 0; a < 2; ++a)
           for (int b = 0; b < 4; ++b)
             for (int c = 0; c < 3; ++c) y[(a * 4 + b) * 3 + c] = x[0][a * 3 + c] - x[1][b];
         return y;
       }},
      {"mul, a column", {{{3, 4}}, {{3, 1}}}, [](const In& x) { return mul(x[0], x[1]); },
       [](const V& x) {
         Values y(12);
         for (int i = 0; i < 12; ++i) y[i] = x[0][i] * x[1][i / 4];
         return y;
       }},
      {"div", {{{3, 4}}, {{1, 4}, 0.5, 2}}, [](const In& x) { return div(x[0], x[1]); },
       [](const V& x) {
         Values y(12);
         for (int i = 0; i < 12; ++i) y[i] = x[0][i] / x[1][i % 4];
         return y;
       }},
      {"neg", {{{2, 5}}}, [](const In& x) { return neg(x[0]); },
       [](const V& x) { return ref::map(x[0], [](double a) { return -a; }); }},
      {"add a scalar", {{{2, 5}}}, [](const In& x) { return add(x[0], 0.7); },
       [](const V& x) { return ref::map(x[0], [](double a) { return a + 0.7; }); }},
      {"a scalar over x (rdiv)", {{{2, 5}, 0.5, 2}}, [](const In& x) { return rdiv(1.5, x[0]); },
       [](const V& x) { return ref::map(x[0], [](double a) { return 1.5 / a; }); }},
      {"exp", {{{2, 5}}}, [](const In& x) { return exp(x[0]); },
       [](const V& x) { return ref::map(x[0], [](double a) { return std::exp(a); }); }},
      {"log", {{{2, 5}, 0.2, 3}}, [](const In& x) { return log(x[0]); },
       [](const V& x) { return ref::map(x[0], [](double a) { return std::log(a); }); }},
      {"sqrt", {{{2, 5}, 0.2, 3}}, [](const In& x) { return sqrt(x[0]); },
       [](const V& x) { return ref::map(x[0], [](double a) { return std::sqrt(a); }); }},
      {"tanh", {{{2, 5}, -2, 2}}, [](const In& x) { return tanh(x[0]); },
       [](const V& x) { return ref::map(x[0], [](double a) { return std::tanh(a); }); }},
      {"relu", {{{2, 5}}}, [](const In& x) { return relu(x[0]); },
       [](const V& x) { return ref::map(x[0], [](double a) { return a > 0 ? a : 0.0; }); }},
      {"gelu erf", {{{2, 5}, -3, 3}}, [](const In& x) { return gelu(x[0], Gelu::Erf); },
       [](const V& x) { return ref::map(x[0], [](double a) { return 0.5 * a * (1 + std::erf(a / std::sqrt(2.0))); }); }},
      {"gelu tanh", {{{2, 5}, -3, 3}}, [](const In& x) { return gelu(x[0], Gelu::Tanh); },
       [](const V& x) {
         return ref::map(x[0], [](double a) {
           return 0.5 * a * (1 + std::tanh(std::sqrt(2 / M_PI) * (a + 0.044715 * a * a * a)));
         });
       }},
      {"sum over the middle axis", {{{2, 3, 4}}}, [](const In& x) { return sum(x[0], {1}); },
       [](const V& x) {
         Values y(8, 0.0);
         for (int a = 0; a < 2; ++a)
           for (int b = 0; b < 3; ++b)
             for (int c = 0; c < 4; ++c) y[a * 4 + c] += x[0][(a * 3 + b) * 4 + c];
         return y;
       }},
      {"mean over the outer axes, kept", {{{2, 3, 4}}}, [](const In& x) { return mean(x[0], {0, 2}, true); },
       [](const V& x) {
         Values y(3, 0.0);
         for (int a = 0; a < 2; ++a)
           for (int b = 0; b < 3; ++b)
             for (int c = 0; c < 4; ++c) y[b] += x[0][(a * 3 + b) * 4 + c] / 8;
         return y;
       }},
      {"matmul, batched, b transposed", {{{2, 3, 4}}, {{2, 5, 4}}}, [](const In& x) { return matmul(x[0], x[1], false, true); },
       [](const V& x) {
         Values y(30, 0.0);
         for (int b = 0; b < 2; ++b)
           for (int m = 0; m < 3; ++m)
             for (int n = 0; n < 5; ++n)
               for (int k = 0; k < 4; ++k) y[(b * 3 + m) * 5 + n] += x[0][(b * 3 + m) * 4 + k] * x[1][(b * 5 + n) * 4 + k];
         return y;
       },
       1e-5,
       true},
      {"matmul, a transposed, 2-D", {{{4, 3}}, {{4, 5}}}, [](const In& x) { return matmul(x[0], x[1], true); },
       [](const V& x) {
         Values y(15, 0.0);
         for (int m = 0; m < 3; ++m)
           for (int n = 0; n < 5; ++n)
             for (int k = 0; k < 4; ++k) y[m * 5 + n] += x[0][k * 3 + m] * x[1][k * 5 + n];
         return y;
       },
       1e-5,
       true},
      {"matmul, a 2-D b shared by the batch", {{{2, 3, 4}}, {{4, 5}}}, [](const In& x) { return matmul(x[0], x[1]); },
       [](const V& x) {
         Values y(30, 0.0);
         for (int b = 0; b < 2; ++b)
           for (int m = 0; m < 3; ++m)
             for (int n = 0; n < 5; ++n)
               for (int k = 0; k < 4; ++k) y[(b * 3 + m) * 5 + n] += x[0][(b * 3 + m) * 4 + k] * x[1][k * 5 + n];
         return y;
       },
       1e-5,
       true},
      {"permute", {{{2, 3, 4}}}, [](const In& x) { return permute(x[0], {2, 0, 1}); },
       [](const V& x) {
         Values y(24);
         for (int a = 0; a < 2; ++a)
           for (int b = 0; b < 3; ++b)
             for (int c = 0; c < 4; ++c) y[(c * 2 + a) * 3 + b] = x[0][(a * 3 + b) * 4 + c];
         return y;
       }},
      {"slice and concat", {{{2, 5}}, {{2, 3}}},
       [](const In& x) { return concat({slice(x[0], 1, 1, 3), x[1]}, 1); },
       [](const V& x) {
         Values y(12);
         for (int r = 0; r < 2; ++r)
           for (int c = 0; c < 6; ++c) y[r * 6 + c] = c < 3 ? x[0][r * 5 + 1 + c] : x[1][r * 3 + c - 3];
         return y;
       }},
      {"softmax", {{{3, 5}, -2, 2}}, [](const In& x) { return softmax(x[0]); },
       [](const V& x) {
         Values y(15);
         for (int r = 0; r < 3; ++r) {
           double z = 0;
           for (int c = 0; c < 5; ++c) z += std::exp(x[0][r * 5 + c]);
           for (int c = 0; c < 5; ++c) y[r * 5 + c] = std::exp(x[0][r * 5 + c]) / z;
         }
         return y;
       }},
      {"softmax with an additive mask", {{{2, 3, 4}, -2, 2}, {{3, 4}, -1, 0}},
       [](const In& x) { return softmax(x[0], x[1]); },
       [](const V& x) {
         Values y(24);
         for (int r = 0; r < 6; ++r) {
           double z = 0;
           for (int c = 0; c < 4; ++c) z += std::exp(x[0][r * 4 + c] + x[1][(r % 3) * 4 + c]);
           for (int c = 0; c < 4; ++c) y[r * 4 + c] = std::exp(x[0][r * 4 + c] + x[1][(r % 3) * 4 + c]) / z;
         }
         return y;
       }},
      {"cross_entropy", {{{4, 5}, -2, 2}, {{4}, 0, 0, 5}}, [](const In& x) { return cross_entropy(x[0], x[1]); },
       [](const V& x) {
         double loss = 0;
         for (int r = 0; r < 4; ++r) {
           double z = 0;
           for (int c = 0; c < 5; ++c) z += std::exp(x[0][r * 5 + c]);
           loss += (std::log(z) - x[0][r * 5 + int(x[1][r])]) / 4;
         }
         return Values{loss};
       }},
      {"layer_norm", {{{3, 6}}, {{6}, 0.5, 1.5}, {{6}}}, [](const In& x) { return layer_norm(x[0], x[1], x[2]); },
       [](const V& x) {
         Values y(18);
         for (int r = 0; r < 3; ++r) {
           double m = 0, var = 0;
           for (int c = 0; c < 6; ++c) m += x[0][r * 6 + c] / 6;
           for (int c = 0; c < 6; ++c) var += (x[0][r * 6 + c] - m) * (x[0][r * 6 + c] - m) / 6;
           for (int c = 0; c < 6; ++c) y[r * 6 + c] = (x[0][r * 6 + c] - m) / std::sqrt(var + 1e-5) * x[1][c] + x[2][c];
         }
         return y;
       }},
      {"embedding", {{{6, 4}}, {{5}, 0, 0, 6}}, [](const In& x) { return embedding(x[0], x[1]); },
       [](const V& x) {
         Values y(20);
         for (int n = 0; n < 5; ++n)
           for (int d = 0; d < 4; ++d) y[n * 4 + d] = x[0][int(x[1][n]) * 4 + d];
         return y;
       }},
      {"masked_fill", {{{3, 4}}, {{3, 4}, 0, 0, 2}}, [](const In& x) { return masked_fill(x[0], x[1], -3.0); },
       [](const V& x) {
         Values y(12);
         for (int i = 0; i < 12; ++i) y[i] = x[1][i] != 0 ? -3.0 : x[0][i];
         return y;
       }},
      {"avg_pool_seq, P = 3", {{{2, 7, 3}}}, [](const In& x) { return avg_pool_seq(x[0], 3); },
       [](const V& x) {
         Values y(42, 0.0);
         for (int b = 0; b < 2; ++b)
           for (int l = 0; l < 7; ++l)
             for (int t = -1; t <= 1; ++t)
               if (l + t >= 0 && l + t < 7)
                 for (int d = 0; d < 3; ++d) y[(b * 7 + l) * 3 + d] += x[0][(b * 7 + l + t) * 3 + d] / 3;
         return y;
       }},
      {"conv_seq, 3 weights", {{{2, 6, 2}}}, [](const In& x) { return conv_seq(x[0], {0.2, 0.5, 0.3}); },
       [](const V& x) {
         const double w[3] = {0.2, 0.5, 0.3};
         Values y(24, 0.0);
         for (int b = 0; b < 2; ++b)
           for (int l = 0; l < 6; ++l)
             for (int t = -1; t <= 1; ++t)
               if (l + t >= 0 && l + t < 6)
                 for (int d = 0; d < 2; ++d) y[(b * 6 + l) * 2 + d] += w[t + 1] * x[0][(b * 6 + l + t) * 2 + d];
         return y;
       }},
  };
  // clang-format on
  return cases;
}

}  // namespace lasgrad::test
