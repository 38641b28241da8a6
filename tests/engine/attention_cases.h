// The attention case table: every case of the fused LaS attention op declared once, here, and run in
// every mode:
//   reference  on the CPU, the fused op against las_attention_reference (the spec's steps with L x L
//              matrices), float64 and float32, forward and every gradient (tests/engine/test_attention.cpp);
//   gradient   float64 finite differences of the fused op, with each case's options on a small shape
//              (tests/engine/test_attention.cpp);
//   emulated   the CUDA kernels on the CPU emulator against the CPU, float32, float64 and bf16 (float32
//              with options.bf16) (tests/cuda/test_op_cases_emulated.cpp);
//   gpu        the same on a GPU where one exists (tests/cuda/test_cuda.cpp).
// The cases cover every kind (softmax, LaS, LaS-Chunk, causal and bidirectional, box and other smoothing
// kernels), head widths 16 to 128 (at and between the kernels' instantiations), chunks shorter than a
// tile, sequences of one position, below one tile and across several, and key padding with a full, a
// partial and an empty example.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/attention.h"
#include "engine/ops.h"
#include "engine/rng.h"

namespace lasgrad::test {

struct AttentionCase {
  std::string name;
  int64_t B, H, L, dh;
  AttentionOptions opt;          // alpha is filled by case_options
  std::vector<int32_t> lengths;  // per example; empty: no key padding
};

// The one decay formula of every case: head 0 global (alpha 0), heads 1..H-1 evenly up to 0.5; softmax
// cases (P = 1, no kernel) decay nowhere.
inline AttentionOptions case_options(const AttentionCase& c, bool softmax) {
  AttentionOptions o = c.opt;
  o.alpha.assign(static_cast<size_t>(c.H), 0.0);
  if (!softmax)
    for (int64_t h = 1; h < c.H; ++h) o.alpha[h] = 0.5 * double(h) / double(c.H - 1);
  return o;
}

inline std::vector<AttentionCase> attention_cases() {
  auto opt = [](bool causal, int64_t P, int64_t C, std::vector<double> kernel = {}) {
    AttentionOptions o;
    o.causal = causal, o.P = kernel.empty() ? P : static_cast<int64_t>(kernel.size()), o.C = C, o.kernel = kernel;
    return o;
  };
  const std::vector<double> skewed = {0.1, 0.3, 0.4, 0.15, 0.05};  // non-symmetric: a missing mirror shows
  return {
      {"softmax, padded", 2, 3, 70, 16, opt(true, 1, 0), {70, 35}},
      {"softmax, bidirectional, one position", 1, 2, 1, 128, opt(false, 1, 0), {}},
      {"softmax, chunked C = 7", 1, 2, 20, 24, opt(true, 1, 7), {}},
      {"las, several tiles, an empty example", 2, 3, 130, 64, opt(true, 5, 0), {130, 0}},
      {"las, head width 128", 1, 2, 100, 128, opt(true, 5, 0), {}},
      {"las, L < P", 1, 2, 3, 16, opt(true, 7, 0), {}},
      {"las bidirectional, padded", 2, 2, 70, 32, opt(false, 3, 0), {70, 33}},
      {"las bidirectional, head width 100", 1, 3, 40, 100, opt(false, 3, 0), {}},
      {"las-chunk C = 37, padded", 2, 3, 100, 48, opt(true, 3, 37), {100, 50}},
      {"las-chunk C = 16", 1, 2, 70, 16, opt(true, 3, 16), {}},
      {"las-chunk C = 80, a chunk across tiles", 1, 2, 150, 32, opt(true, 5, 80), {}},
      {"las-chunk bidirectional C = 50, padded", 2, 2, 130, 64, opt(false, 3, 50), {130, 65}},
      {"las-chunk bidirectional C = 7", 1, 2, 40, 24, opt(false, 3, 7), {}},
      {"las-chunk, one position", 1, 1, 1, 64, opt(true, 3, 1), {}},
      {"las, smoothing kernel, chunked, padded", 2, 2, 100, 32, opt(true, 5, 37, skewed), {100, 41}},
      {"las bidirectional, smoothing kernel", 1, 3, 70, 128, opt(false, 5, 0, skewed), {}},
      {"las, a kernel wider than L", 1, 2, 5, 16, opt(true, 9, 0, {1, 2, 3, 4, 5, 6, 7, 8, 9}), {}},
  };
}

inline bool is_softmax(const AttentionCase& c) { return c.opt.P == 1 && c.opt.kernel.empty(); }

// q, k, v [B, H, L, dh] of case c, the same values for every dtype and device (leaves that require
// grad), and its lengths (undefined without padding) on `device`.
inline std::vector<Tensor> attention_inputs(const AttentionCase& c, DType dt, Device device, Tensor& lengths) {
  Rng rng(std::hash<std::string>{}(c.name));
  std::vector<Tensor> out;
  for (int i = 0; i < 3; ++i) {
    // Logits of O(3): softmax rows are far from uniform, so errors in masking or decay would show.
    const double r = i < 2 ? 2 : 1;
    std::vector<double> v(static_cast<size_t>(c.B * c.H * c.L * c.dh));
    for (double& x : v) x = rng.uniform(-r, r);
    Tensor t = Tensor::from(v, {c.B, c.H, c.L, c.dh}, dt).to(device);
    t.set_requires_grad(true);
    out.push_back(t);
  }
  lengths = c.lengths.empty() ? Tensor() : Tensor::from(c.lengths, {c.B}, device);
  return out;
}

// max |got - want| / (1 + max |want|).
inline double attention_error(const Tensor& got, const Tensor& want) {
  const std::vector<double> g = got.to_doubles(), w = want.to_doubles();
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    num = std::max(num, std::abs(g[i] - w[i]));
    den = std::max(den, std::abs(w[i]));
  }
  return num / (1 + den);
}

// The output of `f` on case c's inputs, and the gradients of q, k, v after one backward of sum(O * W),
// W fixed per case: {o, dq, dk, dv}, on the CPU.
template <class F>
std::vector<Tensor> attention_run(const AttentionCase& c, DType dt, Device device, const F& f) {
  Tensor lengths;
  std::vector<Tensor> in = attention_inputs(c, dt, device, lengths);
  const AttentionOptions o = case_options(c, is_softmax(c));
  Tensor out = f(in[0], in[1], in[2], o, lengths);
  Rng rng(7);
  std::vector<double> w(static_cast<size_t>(out.numel()));
  for (double& x : w) x = rng.uniform(-1, 1);
  sum(mul(out, Tensor::from(w, out.shape(), dt).to(device))).backward();
  return {out.to(Device::CPU), in[0].grad().to(Device::CPU), in[1].grad().to(Device::CPU),
          in[2].grad().to(Device::CPU)};
}

// The bf16 mode's tolerance on a CUDA device against the CPU, a quarter of a bfloat16 step (2^-8). Both
// round q, k, V~, dO, P and G at the same points; but the forward's P is relative to a row's running
// maximum, which depends on the tiles (the CPU's and the GPU's differ, and the GPU packs short chunks), so
// a P can round to the neighbouring bfloat16. The emulator measures up to 3.6e-4 on these cases (1.9e-3
// before the CPU rounded P and G too); an indexing error gives errors near 1.
constexpr double kTolBf16 = 1e-3;

// Case c's fused op on `device` against the CPU's, output and gradients, within tol (relative to
// 1 + max |cpu|). DType::BF16: float32 inputs with options.bf16 (the bf16 precision's rounding).
inline void check_attention_on_device(const AttentionCase& c, DType dt, Device device, double tol) {
  const bool bf16 = dt == DType::BF16;
  if (bf16) dt = DType::F32;
  auto fused = [bf16](const Tensor& q, const Tensor& k, const Tensor& v, AttentionOptions o, const Tensor& len) {
    o.bf16 = bf16;
    return las_attention(q, k, v, o, len);
  };
  const std::vector<Tensor> cpu = attention_run(c, dt, Device::CPU, fused), dev = attention_run(c, dt, device, fused);
  const char* what[] = {"o", "dq", "dk", "dv"};
  for (int i = 0; i < 4; ++i) {
    INFO(c.name << " " << std::string(bf16 ? "bf16" : dtype_name(dt)) << ": " << std::string(what[i]));
    CHECK(attention_error(dev[i], cpu[i]) < tol);
  }
}

}  // namespace lasgrad::test
