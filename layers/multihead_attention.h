// Multi-head self-attention whose kind is softmax, LaS or LaS-Chunk (docs/las-attention.md).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/attention.h"
#include "layers/layers.h"

namespace lasgrad {

enum class AttentionKind { Softmax, Las, LasChunk };
AttentionKind parse_attention_kind(const std::string& s);  // "softmax" | "las" | "las-chunk"
const char* attention_kind_name(AttentionKind k);

struct AttentionSettings {
  AttentionKind kind = AttentionKind::Las;
  bool causal = true;           // the paper's models are causal; false = bidirectional
  int64_t heads = 8;
  double B = 0.1;               // B (setting decay_max) in (0, 1): the sharpest head's decay rate
  double alpha_min = 0.0;       // the gentlest decaying head's rate; 0 = 1 / max_len
  std::vector<double> alphas;   // explicit per-head rates (size heads); overrides B and alpha_min
  int64_t P = 5;                // (setting pool) odd smoothing window (LaS kinds; softmax uses 1)
  std::vector<double> kernel;   // smoothing weights over offsets -P/2..P/2 (odd count, sets P); empty = box 1/P
  bool strict_causal = false;   // re-mask after pooling (runs the reference implementation)
  int64_t C = 0;                // (setting chunk) the chunk length for las-chunk (>= 1 there); unused by the other kinds
  bool fused = true;            // the fused kernel; false = the literal reference (L x L matrices)
  int64_t max_len = 1024;       // the task length, for the default alpha_min
};

// The per-head decay rates: softmax -> all 0; explicit alphas when given; otherwise head 0 = 0 and heads
// 1..H-1 a geometric sequence from alpha_min (default 1/max_len) to B, both ends included (one such
// head: B). Throws on a bad B, alpha_min or list size.
std::vector<double> las_alphas(const AttentionSettings& s);

// The smoothing weights named by `spec`: "box" -> empty (average pooling of width P); "gaussian" ->
// exp(-t^2 / (2 sigma^2)) over |t| <= 3 sigma, normalised to sum 1, with sigma = 0 meaning the standard
// deviation of the box of width P, sqrt((P^2 - 1) / 12); otherwise an odd count of weights separated by
// '/', taken as given ("0.25/0.5/0.25"). Throws Error naming the spec.
std::vector<double> smoothing_weights(const std::string& spec, int64_t P, double sigma);

// x [B, L, d] -> [B, L, d]. Parameters: qkv (Linear d -> 3d, the q, k, v projections stacked in that
// order, heads contiguous within each) and out (Linear d -> d).
class MultiHeadAttention : public Module {
 public:
  MultiHeadAttention(int64_t d, const AttentionSettings& s, Rng& rng, DType dtype = DType::F32);
  // lengths I32 [B] (key padding) or undefined. With `weights`, runs the reference and stores the
  // smoothed attention matrices [B, H, L, L] there (no grad).
  Tensor forward(const Tensor& x, const Tensor& lengths = Tensor(), Tensor* weights = nullptr) const;

  // The op's options, resolved from the settings once per kind (decay rates, smoothing, chunk) and
  // passed unchanged to attention() and on to the backend.
  const AttentionOptions& options() const { return o_; }
  const std::vector<double>& alphas() const { return o_.alpha; }
  std::shared_ptr<Linear> qkv, out;

 private:
  AttentionOptions o_;  // o_.alpha has one rate per head
  int64_t d_;
};

}  // namespace lasgrad
