// Multi-head self-attention whose kind is softmax, LaS or LaS-Chunk (docs/las-attention.md).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/attention.h"
#include "engine/names.h"
#include "layers/layers.h"

namespace lasgrad {

enum class AttentionKind { Softmax, Las, LasChunk };
inline constexpr EnumName<AttentionKind> kAttentionKinds[] = {
    {AttentionKind::Softmax, "softmax"}, {AttentionKind::Las, "las"}, {AttentionKind::LasChunk, "las-chunk"}};

// The attention a model asks for. The member initialisers are the run settings' defaults (their keys:
// train/settings.cpp); P, C and B keep the spec's symbols for the keys pool, chunk and decay_max.
struct AttentionSettings {
  AttentionKind kind = AttentionKind::Las;
  bool causal = true;  // the paper's models are causal; false = bidirectional
  int64_t heads = 8;
  double B = 0.1;                 // in (0, 1): the sharpest head's decay rate
  double alpha_min = 0.0;         // the gentlest decaying head's rate; 0 = 1 / max_len
  std::vector<double> alphas;     // explicit rates, one per head or one for every head; overrides B and alpha_min
  int64_t P = 5;                  // odd smoothing window (LaS kinds; softmax uses 1)
  std::string smoothing = "box";  // the smoothing kernel's spec (smoothing_weights)
  double sigma = 0.0;             // the gaussian's width; 0 = the box's standard deviation
  bool strict_causal = false;     // re-mask after pooling (runs the reference implementation)
  int64_t C = 0;                  // the chunk length for las-chunk (>= 1 there); unused by the other kinds
  bool fused = true;              // the fused kernel; false = the literal reference (L x L matrices)
  int64_t max_len = 1024;         // the task length, for the default alpha_min (not a setting: the model sets it)
};

// The per-head decay rates: softmax -> all 0; explicit alphas when given (one rate: every head's); otherwise head 0 = 0
// and heads 1..H-1 a geometric sequence from alpha_min (default 1/max_len) to B, both ends included (one such head: B).
// Throws on a bad B, alpha_min or list size.
std::vector<double> las_alphas(const AttentionSettings& s);

// The smoothing weights named by `spec`: "box" -> empty (average pooling of width P); "gaussian" ->
// exp(-t^2 / (2 sigma^2)) over |t| <= 3 sigma, normalised to sum 1, with sigma = 0 meaning the standard
// deviation of the box of width P, sqrt((P^2 - 1) / 12); otherwise an odd count of weights separated by
// '/', taken as given ("0.25/0.5/0.25"). Throws Error naming the spec.
std::vector<double> smoothing_weights(const std::string& spec, int64_t P, double sigma);

// The op's options for the settings `s` at width d, per kind: softmax neither decays nor smooths; only
// las-chunk chunks; strict re-masking applies where there is smoothing. The one map from settings to
// the op, used by the model and the benchmarks. Throws Error naming the setting the op cannot take.
AttentionOptions resolve_options(int64_t d, const AttentionSettings& s);

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
