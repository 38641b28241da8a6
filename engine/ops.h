// The public ops. Each validates its inputs (errors name the op and the shapes), computes through
// backend(device), and records its backward when an input requires grad. Shapes use NumPy conventions;
// negative axes count from the end. Implementations: engine/ops_*.cpp, forward and backward together.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/autograd.h"
#include "engine/tensor.h"

namespace lasgrad {

// ---- element-wise (NumPy broadcasting) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double s);   // a + s
Tensor sub(const Tensor& a, double s);   // a - s
Tensor mul(const Tensor& a, double s);   // a * s
Tensor div(const Tensor& a, double s);   // a / s
Tensor rsub(double s, const Tensor& a);  // s - a
Tensor rdiv(double s, const Tensor& a);  // s / a
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor relu(const Tensor& x);
// GELU. Erf: x * Phi(x), exact. Tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as in GPT-2.
enum class Gelu { Erf, Tanh };
Tensor gelu(const Tensor& x, Gelu kind = Gelu::Erf);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return sub(a, s); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return div(a, s); }
inline Tensor operator+(double s, const Tensor& a) { return add(a, s); }
inline Tensor operator-(double s, const Tensor& a) { return rsub(s, a); }
inline Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
inline Tensor operator/(double s, const Tensor& a) { return rdiv(s, a); }
inline Tensor operator-(const Tensor& x) { return neg(x); }

// x converted to `dtype` (float32, float64 or bfloat16; to bfloat16 rounds to nearest even); x itself when
// it has that dtype already. The backward converts the gradient back to compute_dtype(x.dtype()).
Tensor cast(const Tensor& x, DType dtype);

// ---- linear algebra ----
// a [..., M, K] @ b [..., K, N] -> [..., M, N] (with trans_a, a is [..., K, M]; with trans_b, b is
// [..., N, K]). The batch axes of a and b must be equal, or b must be 2-D (a weight shared by the batch).
// bfloat16 operands give a float32 product (exact products, float32 sums); their backward rounds the
// incoming gradient to bfloat16 before its two products, and gives float32 gradients.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

// ---- shape ----
Tensor reshape(const Tensor& x, const Shape& shape);  // one -1 may be inferred; shares storage
Tensor permute(const Tensor& x, const std::vector<int>& perm);
Tensor transpose(const Tensor& x, int axis0, int axis1);
Tensor slice(const Tensor& x, int axis, int64_t start, int64_t length);
Tensor concat(const std::vector<Tensor>& xs, int axis);
std::vector<Tensor> split(const Tensor& x, int axis, const std::vector<int64_t>& sizes);

// ---- reductions ----
Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim = false);
Tensor sum(const Tensor& x);   // all entries -> shape []
Tensor mean(const Tensor& x);  // all entries -> shape []
// The sum of g over its broadcast axes so that the result has `shape` (the backward of broadcasting).
Tensor sum_to_shape(const Tensor& g, const Shape& shape);
// x repeated along its size-1 (and missing leading) axes to `shape`; the inverse of sum_to_shape.
Tensor broadcast_to(const Tensor& x, const Shape& shape);

// ---- neural-network ops ----
// Softmax over the last axis of x [..., N]; `mask`, if given, is added to x first (broadcasting; use
// -inf or a large negative number to exclude entries). Rows that are entirely -inf give zeros.
Tensor softmax(const Tensor& x, const Tensor& mask = Tensor());
// Mean over rows whose target != ignore_index of -log softmax(logits)[target]; logits [N, C], targets I32
// [N]. Fused log-softmax and NLL, stable for any finite logits. Returns shape [].
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100);
// Layer norm over the last axis: x [..., D], gamma and beta [D].
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps = 1e-5);
// table [V, D], ids I32 [...] -> [..., D]; backward scatter-adds into the table.
Tensor embedding(const Tensor& table, const Tensor& ids);
// Zeroes each entry with probability p and scales the rest by 1/(1-p); identity when !training or p == 0.
// The mask depends only on (seed, position), so it is the same on every device and thread count.
Tensor dropout(const Tensor& x, double p, uint64_t seed, bool training);
// x where mask == 0, value where mask != 0; mask I32 broadcasts to x.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
// Average pooling along the positions axis of x [..., L, D]: window P (odd), stride 1, P/2 zeros of
// padding on each side, always divided by P (PyTorch avg_pool1d with count_include_pad). LaS smoothing.
Tensor avg_pool_seq(const Tensor& x, int64_t P);
// A fixed 1-D kernel along the positions axis of x [..., L, D]: w holds P (odd) weights over the offsets
// -P/2..P/2, out[l] = sum_t w[t + P/2] x[l + t], with zeros beyond [0, L). LaS smoothing by any kernel
// but the box (avg_pool_seq, whose running sum is O(1) per entry). Composed from slices of a zero-padded
// x, so every backend runs it and autograd gives its backward (the same op with w mirrored).
Tensor conv_seq(const Tensor& x, const std::vector<double>& w);

}  // namespace lasgrad
