// Attention with the LaS operator (docs/las-attention.md): one op covers softmax
// attention (alpha = 0, P = 1), LaS (per-head multiplicative decay of the logits, then average pooling
// of the attention rows) and LaS-Chunk (the same inside non-overlapping chunks of C positions).
//
// Two implementations of the same function:
// - las_attention: the fused op. The smoothing is moved onto V (spec §2: AP_row(A) V = A Ṽ with
//   Ṽ = V smoothed by the mirrored row kernel inside each chunk), and a tiled flash-attention kernel applies the decay
//   to the logits on the fly with an online softmax. Forward and backward keep O(L·dh) memory per head: the kernel
//   saves only the row logsumexp, never an L×L matrix.
// - las_attention_reference: the paper's steps done literally with the L×L matrices materialised,
//   composed from engine ops (so its gradient is the engine's). The tests hold the fused op to it; it
//   also serves the options the fused op does not (strict causal re-mask, recording the matrices).
//
// Semantics shared by both, per batch b, head h, chunk [c0, c0 + C) (C = L without chunking), with
// local positions i, j = position - c0:
//   S = Q Kᵀ / sqrt(dh);  S'[i,j] = S[i,j] * exp(-alpha_h * |i - j|)
//   masked (excluded from the softmax): j > i when causal; key position >= lengths[b] (key padding)
//   A = softmax over each row; A_p = each row of A smoothed by the kernel w over offsets -P/2..P/2,
//   A_p[i,j] = sum_t w[t] A[i,j+t] (zeros beyond the chunk and beyond lengths[b]); the default w is the
//   box 1/P (average pooling); strict: A_p[i,j] = 0 for j > i afterwards (no renormalisation)
//   O = A_p V
// A row with no valid key (a padded query whose chunk starts at or after lengths[b]) gives zeros.
// Bidirectional attention decays with |i - j| on both sides (the spec's causal E_c mirrored).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace lasgrad {

// The op's options, passed unchanged to the backend's kernels; fields named by the spec's symbols. The
// fused op applies P and kernel to V before its kernel runs (spec §2), so a kernel reads alpha, causal
// and C only.
struct AttentionOptions {
  std::vector<double> alpha{};  // [H] per-head decay rates, each finite and >= 0 (0 = no decay)
  bool causal = true;
  int64_t P = 1;                 // odd smoothing window; 1 = no smoothing
  int64_t C = 0;                 // attend only inside chunks of C positions; 0 = the whole sequence
  bool strict_causal = false;    // re-apply the causal mask after pooling (reference only)
  std::vector<double> kernel{};  // the smoothing weights w over offsets -P/2..P/2 (size P); empty = box 1/P
  bool fused = true;             // attention(): the fused kernel where it can serve; false = the literal reference
  // Mixed precision (setting precision = bf16): q, k and the smoothed v are rounded to bfloat16, and
  // so is the incoming gradient in the backward; the fused kernels also round each tile's probabilities
  // P (and in the backward G = P (dP - delta) decay) before their products, as tensor cores take them.
  // Softmax statistics, sums, o, lse and the gradients stay float32. Needs float32 q, k, v. The
  // reference rounds q, k and v only (it never forms the smoothed v).
  bool bf16 = false;
};

// 1 / sqrt(dh), the logits' scale (spec §1 step 1).
inline double logit_scale(int64_t dh) { return 1.0 / std::sqrt(static_cast<double>(dh)); }

// C, the chunk length the kernels work in: o.C clamped to L, or L without chunking; at least 1.
int64_t chunk_length(const AttentionOptions& o, int64_t L);

// The attention op the layers call, q, k, v, options, lengths as in las_attention below. It runs the fused
// kernel (las_attention) where that can serve, and falls back to the literal reference
// (las_attention_reference) where it cannot: strict_causal (the re-masking after pooling is not fused),
// `weights` asked for (the fused kernel never forms A), or options.fused = false. Both compute the
// same function; tests/engine/test_attention.cpp holds them to each other.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options,
                 const Tensor& lengths = Tensor(), Tensor* weights = nullptr);

// q, k, v [B, H, L, dh] (float32 or float64, one device); options.alpha: H decay rates; lengths: I32 [B],
// each in [0, L], or undefined (every position valid). Returns O [B, H, L, dh].
// Errors name the op. strict_causal is not fused: it throws (use las_attention_reference).
Tensor las_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options,
                     const Tensor& lengths = Tensor());

// The same function, literally. When `weights` is given it receives the smoothed attention matrices
// A_p as a float tensor [B, H, L, L] without grad (block-diagonal under chunking), for tools to draw.
Tensor las_attention_reference(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options,
                               const Tensor& lengths = Tensor(), Tensor* weights = nullptr);

// Ṽ: v [B, H, L, dh] with rows at positions >= lengths[b] zeroed, then smoothed along positions inside
// each chunk of C positions (o.C; 0: the whole sequence) by the mirror of the row kernel, which
// makes A_p V = A Ṽ exact (spec §2): average pooling for the box, conv_seq otherwise. Composed from ops.
Tensor las_smooth_values(const Tensor& v, const AttentionOptions& o, const Tensor& lengths = Tensor());

}  // namespace lasgrad
