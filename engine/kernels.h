// The backend's kernels, declared once: X(name, part, (parameters), (arguments)). Backend (engine/
// backend.h) declares each as a pure virtual; the CPU backend, the CUDA backend and its emulated twin
// (one class template, engine/cuda/cuda_kernels.cuh) implement it; the timing wrapper
// (engine/profile.cpp) forwards it under its part. Adding a kernel is one line here and its
// implementations.
//
// Contract for every kernel: inputs and outputs are contiguous, on the backend's device, with the
// shapes and dtypes the op layer already checked (floating kernels take F32 or F64; matmul, attention
// and attention_grad also take BF16 operands, a, b, q, k, v and dout, with F32 outputs). Outputs are
// preallocated. Only element-wise outputs (unary, unary_grad, binary, masked_fill) may alias an input;
// every other kernel's output must be a separate block. Kernels give the same bits for the same inputs
// and thread count.
//
// fill: out[i] = value (any dtype). convert: out = dtype conversion of x (same shape, any dtypes).
// unary: element-wise; `scalar` is the s of AddScalar (x+s), MulScalar (x*s), RsubScalar (s-x), RdivScalar (s/x).
// unary_grad: dx = dy * f'(x) for Tanh, Relu, GeluErf, GeluTanh (the ops whose derivative needs x itself).
// binary: out = a op b with NumPy broadcasting: a and b are already padded to out's rank (size-1 axes broadcast).
// masked_fill: out[i] = mask[i] != 0 ? value : x[i]; mask (I32) is padded to x's rank and broadcasts.
// sum_to: the sum of x over the axes where out has size 1 and x does not (same rank).
// matmul: out[b] = op(a[b]) @ op(b[b]), op = transpose when the flag is set; a: [batch, M, K] (or
//   [batch, K, M]), b: [batch, K, N] (or [batch, N, K]), out: [batch, M, N]; batch may be 1.
// permute: out = x with axes permuted: out.shape[i] = x.shape[perm[i]] (any dtype).
// copy_axis: copies `len` entries along `axis` from src[.., src_start:, ..] to dst[.., dst_start:, ..];
//   src and dst agree on every other axis (any dtype). Serves slice, concat and their backwards.
// softmax: over the last axis; a row whose entries are all -inf gives zeros.
// softmax_grad: dx = y * (dy - sum(dy * y)) per row.
// cross_entropy: logits [N, C], targets I32 [N]; loss[n] = logsumexp(logits[n]) - logits[n, t], 0 where
//   target == ignore_index. Throws Error on a target outside [0, C).
// cross_entropy_grad: dlogits[n] = scale * (softmax(logits[n]) - onehot(t)), zero rows where target ==
//   ignore_index. The softmax is recomputed from the row (max, then sum): exp(x - lse) with a float32
//   lse near 1e4 would carry lse's rounding, about 1e-3, into every probability.
// layer_norm: over the last axis: x [R, D], gamma/beta [D]; y [R, D]; mean, rstd [R] saved.
// layer_norm_grad: dx [R, D] is written; dgamma, dbeta [D] are written (not accumulated).
// embedding: out[n] = table[ids[n]]: table [V, D], ids I32 [N], out [N, D]. Throws Error on an id
//   outside [0, V).
// embedding_grad: dtable[ids[n]] += dout[n] (dtable zeroed by the caller).
// dropout_mask: out[i] = 0 with probability p, else 1/(1-p); element i's draw depends only on (seed, i).
// adam: one Adam or AdamW update in place (AdamCoefficients gives the per-element steps): p, m, v are
//   updated from g; all four of one shape and floating dtype. Element i depends only on element i.
// avg_pool_seq: average pooling along axis 1 of x [B, L, D]: window P (odd), stride 1, P/2 zeros on each
//   side, divided by P. Self-adjoint, so the backward is the same call on the gradient.
// attention, attention_grad: the fused LaS attention of las_attention (engine/attention.h). `p` is the
//   op's options unchanged; the kernels read p.alpha, p.causal and C = chunk_length(p, L) (the op has
//   already applied p.P and p.kernel to V). Per batch b and head h, inside chunks of C positions: logits
//   (q_i . k_j) * logit_scale(dh) * exp(-alpha[h] |i - j|) at chunk-local positions, masked where j > i
//   (causal) or key >= lengths[b], a softmax per row, then o = A v, where v is the already smoothed V~.
//   Tiled: no L x L matrix is kept. q, k, v [B, H, L, dh]; lengths I32 [B] or undefined (all valid);
//   o [B, H, L, dh]; lse [B, H, L] the log-sum-exp of each row's valid logits (+inf for a row without
//   valid keys, whose o row is 0). The backward, given dout [B, H, L, dh] and the forward's o and lse,
//   writes dq, dk, dv [B, H, L, dh] (not accumulated). With p.bf16 (bfloat16 q, k, v, dout), each tile's
//   P, and in the backward G = P (dP - delta) decay, is rounded to bfloat16 before its products.
#pragma once

#define LASGRAD_KERNELS(X)                                                                                             \
  X(fill, Elementwise, (Tensor & out, double value), (out, value))                                                     \
  X(convert, Elementwise, (const Tensor& x, Tensor& out), (x, out))                                                    \
  X(unary, Elementwise, (UnaryOp op, const Tensor& x, double scalar, Tensor& out), (op, x, scalar, out))               \
  X(unary_grad, Elementwise, (UnaryOp op, const Tensor& x, const Tensor& dy, Tensor& dx), (op, x, dy, dx))             \
  X(binary, Elementwise, (BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out), (op, a, b, out))                \
  X(masked_fill, Elementwise, (const Tensor& x, const Tensor& mask, double value, Tensor& out), (x, mask, value, out)) \
  X(sum_to, Elementwise, (const Tensor& x, Tensor& out), (x, out))                                                     \
  X(matmul, Gemm, (const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& out),                         \
    (a, trans_a, b, trans_b, out))                                                                                     \
  X(permute, Layout, (const Tensor& x, const std::vector<int>& perm, Tensor& out), (x, perm, out))                     \
  X(copy_axis, Layout, (const Tensor& src, int64_t src_start, Tensor& dst, int64_t dst_start, int axis, int64_t len),  \
    (src, src_start, dst, dst_start, axis, len))                                                                       \
  X(softmax, Attention, (const Tensor& x, Tensor& y), (x, y))                                                          \
  X(softmax_grad, Attention, (const Tensor& y, const Tensor& dy, Tensor& dx), (y, dy, dx))                             \
  X(cross_entropy, Other, (const Tensor& logits, const Tensor& targets, int64_t ignore_index, Tensor& loss),           \
    (logits, targets, ignore_index, loss))                                                                             \
  X(cross_entropy_grad, Other,                                                                                         \
    (const Tensor& logits, const Tensor& targets, int64_t ignore_index, double scale, Tensor& dlogits),                \
    (logits, targets, ignore_index, scale, dlogits))                                                                   \
  X(layer_norm, Norm,                                                                                                  \
    (const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& y, Tensor& mean, Tensor& rstd),     \
    (x, gamma, beta, eps, y, mean, rstd))                                                                              \
  X(layer_norm_grad, Norm,                                                                                             \
    (const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd, const Tensor& dy, Tensor& dx,       \
     Tensor& dgamma, Tensor& dbeta),                                                                                   \
    (x, gamma, mean, rstd, dy, dx, dgamma, dbeta))                                                                     \
  X(embedding, Other, (const Tensor& table, const Tensor& ids, Tensor& out), (table, ids, out))                        \
  X(embedding_grad, Other, (const Tensor& ids, const Tensor& dout, Tensor& dtable), (ids, dout, dtable))               \
  X(dropout_mask, Elementwise, (uint64_t seed, double p, Tensor& out), (seed, p, out))                                 \
  X(adam, Optimizer, (const AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v), (s, p, g, m, v))           \
  X(avg_pool_seq, Attention, (const Tensor& x, int64_t P, Tensor& out), (x, P, out))                                   \
  X(attention, Attention,                                                                                              \
    (const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lengths, const AttentionOptions& p, Tensor& o,   \
     Tensor& lse),                                                                                                     \
    (q, k, v, lengths, p, o, lse))                                                                                     \
  X(attention_grad, Attention,                                                                                         \
    (const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse, const Tensor& dout,        \
     const Tensor& lengths, const AttentionOptions& p, Tensor& dq, Tensor& dk, Tensor& dv),                            \
    (q, k, v, o, lse, dout, lengths, p, dq, dk, dv))
