// las_attention (fused: smoothing moved onto V, then the tiled kernel) and las_attention_reference
// (the spec's steps literally, composed from ops), side by side. See engine/attention.h.
#include "engine/attention.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/backend.h"
#include "engine/op_checks.h"
#include "engine/ops.h"

namespace lasgrad {

using namespace detail;

namespace {

// The checks both implementations share; returns the chunk length (L without chunking).
int64_t check_attention(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& o,
                        const Tensor& lengths) {
  check_floating(op, q, "q");
  check_floating(op, k, "k");
  check_floating(op, v, "v");
  check_same_dtype(op, q, k);
  check_same_dtype(op, q, v);
  check_same_device(op, q, k);
  check_same_device(op, q, v);
  if (q.ndim() != 4 || k.shape() != q.shape() || v.shape() != q.shape())
    fail(op, "q, k, v must all be [B, H, L, dh], got " + shape_str(q.shape()) + ", " + shape_str(k.shape()) + ", " +
                 shape_str(v.shape()));
  const int64_t B = q.dim(0), H = q.dim(1), L = q.dim(2);
  if (static_cast<int64_t>(o.alpha.size()) != H)
    fail(op, std::to_string(o.alpha.size()) + " decay rates for " + std::to_string(H) + " heads");
  for (double a : o.alpha)
    if (!(a >= 0.0) || !std::isfinite(a)) fail(op, "decay rates must be finite and >= 0, got " + std::to_string(a));
  if (o.P < 1 || o.P % 2 == 0) fail(op, "pooling window P must be odd and positive, got " + std::to_string(o.P));
  if (!o.kernel.empty() && static_cast<int64_t>(o.kernel.size()) != o.P)
    fail(op, "a smoothing kernel of " + std::to_string(o.kernel.size()) +
                 " weights for the window P = " + std::to_string(o.P));
  for (double w : o.kernel)
    if (!std::isfinite(w)) fail(op, "smoothing weights must be finite, got " + std::to_string(w));
  if (o.C < 0) fail(op, "chunk size C must be >= 0 (0: no chunking), got " + std::to_string(o.C));
  if (o.strict_causal && !o.causal) fail(op, "strict_causal re-masking needs causal attention");
  if (o.bf16 && q.dtype() != DType::F32)
    fail(op, std::string("bfloat16 rounding needs float32 q, k, v, got ") + dtype_name(q.dtype()));
  if (lengths.defined()) {
    check_int(op, lengths, "lengths");
    check_same_device(op, q, lengths);
    if (lengths.shape() != Shape{B})
      fail(op, "lengths must be [B] = [" + std::to_string(B) + "], got " + shape_str(lengths.shape()));
    for (double n : lengths.to_doubles())
      if (n < 0 || n > static_cast<double>(L))
        fail(op,
             "a length " + std::to_string(static_cast<int64_t>(n)) + " is outside [0, L = " + std::to_string(L) + "]");
  }
  return chunk_length(o, L);
}

// I32 [B, 1, L, 1]: 1 at positions >= lengths[b] (padding), for masked_fill.
Tensor padding_mask(const Tensor& lengths, int64_t L) {
  std::vector<double> n = lengths.to_doubles();
  std::vector<int32_t> m(n.size() * L);
  for (size_t b = 0; b < n.size(); ++b)
    for (int64_t j = 0; j < L; ++j) m[b * L + j] = j >= static_cast<int64_t>(n[b]);
  return Tensor::from(m, {static_cast<int64_t>(n.size()), 1, L, 1}, lengths.device());
}

// x [B, H, L, ...] -> [B, H, n, C, ...] with L zero-padded to n * C, n = ceil(L / C).
Tensor to_chunks(const Tensor& x, int64_t C) {
  const int64_t L = x.dim(2), n = (L + C - 1) / C;
  Tensor padded = x;
  if (n * C != L) {
    Shape s = x.shape();
    s[2] = n * C - L;
    padded = concat({x, Tensor::zeros(s, x.dtype(), x.device())}, 2);
  }
  Shape s = x.shape();
  s[2] = C;
  s.insert(s.begin() + 2, n);
  return reshape(padded, s);
}

// The inverse of to_chunks: [B, H, n, C, ...] -> [B, H, L, ...].
Tensor from_chunks(const Tensor& x, int64_t L) {
  Shape s = x.shape();
  s[2] = s[2] * s[3];
  s.erase(s.begin() + 3);
  Tensor flat = reshape(x, s);
  return flat.dim(2) == L ? flat : slice(flat, 2, 0, L);
}

// The output of attention over no positions (or no batch, heads or width): zeros of q's shape, still
// recorded against q, k and v, so that backward gives them (empty) zero gradients instead of failing.
Tensor empty_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
  return add(add(mul(q, 0.0), mul(k, 0.0)), mul(v, 0.0));
}

// x [..., L, D] smoothed along positions by the row kernel of `o` (box: avg_pool_seq), as given or mirrored.
Tensor smooth_seq(const Tensor& x, const AttentionOptions& o, bool mirror) {
  if (o.kernel.empty()) return avg_pool_seq(x, o.P);
  std::vector<double> w = o.kernel;
  if (mirror) std::reverse(w.begin(), w.end());
  return conv_seq(x, w);
}

}  // namespace

int64_t chunk_length(const AttentionOptions& o, int64_t L) {
  const int64_t whole = std::max<int64_t>(L, 1);
  return o.C == 0 ? whole : std::min(o.C, whole);
}

Tensor las_smooth_values(const Tensor& v, const AttentionOptions& o, const Tensor& lengths) {
  if (o.P == 1 && o.kernel.empty()) return v;  // the padded rows are never weighted without smoothing: no mask needed
  const int64_t L = v.dim(2), C = o.C;
  Tensor x = lengths.defined() ? masked_fill(v, padding_mask(lengths, L), 0.0) : v;
  // sum_j conv_row(A, w)[i,j] V[j] = sum_k A[i,k] sum_t w[t] V[k-t]: V takes the mirrored kernel.
  if (C == 0 || C >= L) return smooth_seq(x, o, true);
  return from_chunks(smooth_seq(to_chunks(x, C), o, true), L);  // windows restart at each chunk
}

Tensor las_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options,
                     const Tensor& lengths) {
  const char* op = "las_attention";
  check_attention(op, q, k, v, options, lengths);
  if (options.strict_causal)
    fail(op,
         "strict causal re-masking is not fused (pooling after the mask does not move onto V); use "
         "las_attention_reference");
  if (q.numel() == 0) return empty_attention(q, k, v);
  // Spec §2: AP_row(A) V = A V~. The smoothing is ops (its backward pools dV~); the kernel sees V~.
  // Mixed precision rounds the kernel's operands (casts: their gradients pass through unrounded).
  const DType dt = options.bf16 ? DType::BF16 : q.dtype();
  const Tensor qr = cast(q, dt), kr = cast(k, dt), vt = cast(las_smooth_values(v, options, lengths), dt);
  const int64_t B = q.dim(0), H = q.dim(1), L = q.dim(2);
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  Tensor lse = Tensor::empty({B, H, L}, q.dtype(), q.device());
  backend(q.device()).attention(qr, kr, vt, lengths, options, out, lse);
  if (needs_grad({qr, kr, vt}))
    record(op, out, {qr, kr, vt}, [qr, kr, vt, o = out.detach(), lse, lengths, options](const Tensor& g) -> Grads {
      const DType gt = compute_dtype(qr.dtype());
      Tensor dq = Tensor::empty(qr.shape(), gt, qr.device());
      Tensor dk = Tensor::empty(qr.shape(), gt, qr.device());
      Tensor dv = Tensor::empty(qr.shape(), gt, qr.device());
      backend(qr.device()).attention_grad(qr, kr, vt, o, lse, cast(g, qr.dtype()), lengths, options, dq, dk, dv);
      return {dq, dk, dv};
    });
  return out;
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& o, const Tensor& lengths,
                 Tensor* weights) {
  if (o.fused && !o.strict_causal && !weights) return las_attention(q, k, v, o, lengths);
  return las_attention_reference(q, k, v, o, lengths, weights);
}

Tensor las_attention_reference(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options,
                               const Tensor& lengths, Tensor* weights) {
  const char* op = "las_attention_reference";
  const int64_t C = check_attention(op, q, k, v, options, lengths);
  const int64_t B = q.dim(0), H = q.dim(1), L = q.dim(2), dh = q.dim(3), n = (L + C - 1) / C;
  if (q.numel() == 0) return empty_attention(q, k, v);
  // Mixed precision: the operands rounded to bfloat16, the steps in float32.
  auto rounded = [&](const Tensor& x) { return options.bf16 ? cast(cast(x, DType::BF16), DType::F32) : x; };
  // Chunks as a batch axis: [B, H, n, C, dh]; without chunking n = 1 and C = L.
  Tensor qc = to_chunks(rounded(q), C), kc = to_chunks(rounded(k), C), vc = to_chunks(rounded(v), C);

  // Constants over (chunk-local) positions: the decay E [H, 1, C, C], the additive mask [B, 1, n, C, C]
  // (causal, and keys past lengths[b] or past L), and `keep` [B, 1, n, C, C], 1 where a key is valid.
  std::vector<double> e(H * C * C), mask(B * n * C * C), keep(B * n * C * C);
  std::vector<double> len = lengths.defined() ? lengths.to_doubles() : std::vector<double>(B, static_cast<double>(L));
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < C; ++i)
      for (int64_t j = 0; j < C; ++j)
        e[(h * C + i) * C + j] = std::exp(-options.alpha[h] * std::abs(static_cast<double>(i - j)));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < n; ++c)
      for (int64_t i = 0; i < C; ++i)
        for (int64_t j = 0; j < C; ++j) {
          const size_t at = static_cast<size_t>(((b * n + c) * C + i) * C + j);
          const bool valid_key = c * C + j < static_cast<int64_t>(len[b]);
          mask[at] = valid_key && !(options.causal && j > i) ? 0.0 : -INFINITY;
          keep[at] = valid_key && !(options.strict_causal && j > i);
        }
  const DType dt = q.dtype();
  const Device dev = q.device();
  Tensor E = Tensor::from(e, {H, 1, C, C}, dt, dev);
  Tensor M = Tensor::from(mask, {B, 1, n, C, C}, dt, dev);
  Tensor K = Tensor::from(keep, {B, 1, n, C, C}, dt, dev);

  Tensor s = mul(matmul(qc, kc, false, true), logit_scale(dh));  // 1. S = Q K^T / sqrt(dh)
  s = mul(s, E);                                                 // 2. S' = S * E (multiplicative)
  Tensor a = softmax(s, M);                                      // 3.-4. mask, softmax per row
  if (options.P > 1 || !options.kernel.empty())  // 5. smoothing along each row (the ops smooth axis -2: transpose)
    a = transpose(smooth_seq(transpose(a, -1, -2), options, false), -1, -2);
  a = mul(a, K);  // padded keys get no weight after pooling either; strict: re-mask j > i
  if (weights) {
    NoGradGuard no_grad;
    std::vector<double> ap = a.to_doubles(), full(static_cast<size_t>(B * H * L * L), 0.0);
    for (int64_t bh = 0; bh < B * H; ++bh)
      for (int64_t c = 0; c < n; ++c)
        for (int64_t i = 0; i < C && c * C + i < L; ++i)
          for (int64_t j = 0; j < C && c * C + j < L; ++j)
            full[static_cast<size_t>((bh * L + c * C + i) * L + c * C + j)] =
                ap[static_cast<size_t>(((bh * n + c) * C + i) * C + j)];
    *weights = Tensor::from(full, {B, H, L, L}, DType::F32, dev);
  }
  return from_chunks(matmul(a, vc), L);  // 6. O = A_p V
}

}  // namespace lasgrad
