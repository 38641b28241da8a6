#include "layers/multihead_attention.h"

#include "engine/parse.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace lasgrad {

std::vector<double> las_alphas(const AttentionSettings& s) {
  const int64_t H = s.heads;
  if (s.kind == AttentionKind::Softmax) return std::vector<double>(H, 0.0);
  if (!s.alphas.empty()) {
    if (s.alphas.size() != 1 && static_cast<int64_t>(s.alphas.size()) != H)
      throw Error("attention: alphas lists " + std::to_string(s.alphas.size()) + " rates for " + std::to_string(H) +
                  " heads (give one rate per head, or one for every head)");
    for (double a : s.alphas)
      if (!(a >= 0)) throw Error("attention: alphas must be >= 0");
    return s.alphas.size() == 1 ? std::vector<double>(H, s.alphas[0]) : s.alphas;
  }
  if (!(s.B > 0 && s.B < 1)) throw Error("attention: B must be in (0, 1), got " + std::to_string(s.B));
  const double lo = s.alpha_min > 0 ? s.alpha_min : 1.0 / static_cast<double>(std::max<int64_t>(s.max_len, 1));
  if (!(lo <= s.B)) throw Error("attention: alpha_min " + std::to_string(lo) + " exceeds B " + std::to_string(s.B));
  std::vector<double> a(H, 0.0);  // head 0 is global
  const int64_t n = H - 1;
  for (int64_t h = 1; h < H; ++h)
    a[h] = n == 1 ? s.B : lo * std::pow(s.B / lo, static_cast<double>(h - 1) / static_cast<double>(n - 1));
  return a;
}

std::vector<double> smoothing_weights(const std::string& spec, int64_t P, double sigma) {
  if (spec == "box") return {};
  if (spec == "gaussian") {
    if (!(sigma >= 0) || !std::isfinite(sigma))
      throw Error("attention: gaussian smoothing needs sigma >= 0, got " + std::to_string(sigma));
    const double s = sigma > 0 ? sigma : std::sqrt((static_cast<double>(P * P) - 1.0) / 12.0);
    if (s == 0) return {1.0};  // P = 1: no smoothing
    const int64_t R = static_cast<int64_t>(std::floor(3 * s));
    std::vector<double> w(static_cast<size_t>(2 * R + 1));
    double total = 0;
    for (int64_t t = -R; t <= R; ++t) total += w[static_cast<size_t>(t + R)] = std::exp(-0.5 * double(t * t) / (s * s));
    for (double& x : w) x /= total;
    return w;
  }
  std::vector<double> w;
  size_t at = 0;
  while (at <= spec.size()) {
    const size_t end = std::min(spec.find('/', at), spec.size());
    const std::string item = spec.substr(at, end - at);
    double x = 0;
    if (!parse_decimal(item, x))
      throw Error("attention: smoothing '" + spec + "' is not box, gaussian or weights separated by '/' (bad entry '" +
                  item + "')");
    w.push_back(x);
    at = end + 1;
  }
  if (w.size() % 2 == 0)
    throw Error("attention: smoothing '" + spec + "' has " + std::to_string(w.size()) +
                " weights; it needs an odd count");
  return w;
}

AttentionOptions resolve_options(int64_t d, const AttentionSettings& s) {
  if (s.heads < 1 || d % s.heads != 0)
    throw Error("attention: width " + std::to_string(d) + " is not a multiple of " + std::to_string(s.heads) +
                " heads");
  if (s.kind == AttentionKind::LasChunk && s.C < 1)
    throw Error("attention: las-chunk needs a chunk size C >= 1, got " + std::to_string(s.C));
  AttentionOptions o;
  o.alpha = las_alphas(s);
  o.causal = s.causal;
  if (s.kind != AttentionKind::Softmax) {
    o.kernel = smoothing_weights(s.smoothing, s.P, s.sigma);
    o.P = o.kernel.empty() ? s.P : static_cast<int64_t>(o.kernel.size());
  }
  o.C = s.kind == AttentionKind::LasChunk ? s.C : 0;
  o.strict_causal = s.strict_causal && s.kind != AttentionKind::Softmax;
  o.fused = s.fused;
  return o;
}

MultiHeadAttention::MultiHeadAttention(int64_t d, const AttentionSettings& s, Rng& rng, DType dtype)
    : o_(resolve_options(d, s)), d_(d) {
  qkv = std::make_shared<Linear>(d, 3 * d, rng, dtype);
  out = std::make_shared<Linear>(d, d, rng, dtype);
  add_child("qkv", qkv);
  add_child("out", out);
}

// x [B, L, d] -> qkv [B, L, 3, H, dh] -> [3, B, H, L, dh] -> attention per head -> [B, L, d] -> out.
Tensor MultiHeadAttention::forward(const Tensor& x, const Tensor& lengths, Tensor* weights) const {
  const int64_t B = x.dim(0), L = x.dim(1), H = static_cast<int64_t>(o_.alpha.size()), dh = d_ / H;
  Tensor t = permute(reshape(qkv->forward(x), {B, L, 3, H, dh}), {2, 0, 3, 1, 4});
  std::vector<Tensor> parts = split(t, 0, {1, 1, 1});
  Tensor q = reshape(parts[0], {B, H, L, dh}), k = reshape(parts[1], {B, H, L, dh}),
         v = reshape(parts[2], {B, H, L, dh});
  AttentionOptions o = o_;
  o.bf16 = precision() == Precision::Bf16;
  Tensor a = attention(q, k, v, o, lengths, weights);  // fused, or the reference where it cannot serve
  return out->forward(reshape(permute(a, {0, 2, 1, 3}), {B, L, d_}));
}

}  // namespace lasgrad
