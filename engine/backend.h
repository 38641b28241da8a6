// The backend seam: every op reaches its kernel through backend(device), one dispatch point per
// device. Ops (engine/ops_*.cpp) validate inputs, allocate outputs and record backward; a backend only
// computes. engine/cpu implements this interface; engine/cuda adds a second implementation and
// registers it, and no op or caller changes.
//
// Contract for every kernel: inputs and outputs are contiguous, on this backend's device, with the
// shapes and dtypes the op layer already checked (floating kernels take F32 or F64). Outputs are
// preallocated. Only element-wise outputs (unary, unary_grad, binary, masked_fill) may alias an input;
// every other kernel's output must be a separate block. Kernels give the same bits for the same inputs
// and thread count.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/attention.h"
#include "engine/tensor.h"

namespace lasgrad {

enum class UnaryOp { Neg, Exp, Log, Sqrt, Tanh, Relu, GeluErf, GeluTanh, AddScalar, MulScalar, RsubScalar, RdivScalar };
enum class BinaryOp { Add, Sub, Mul, Div };

// The constants of the two GELU forms, for every backend's kernels:
// erf form x Phi(x) = x/2 (1 + erf(x / sqrt 2)); tanh form x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
constexpr double kSqrt1_2 = 0.70710678118654752440;      // 1/sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;   // 1/sqrt(2 pi)
constexpr double kSqrt2OverPi = 0.79788456080286535588;  // sqrt(2/pi)
constexpr double kGeluCubic = 0.044715;

// The scalars of one Adam or AdamW update of one parameter (train/optim.h's Adam builds them).
struct AdamStep {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;            // true: AdamW, p -= lr * wd * p first; false: Adam, g += wd * p (L2)
  int64_t t;                 // step number, from 1 (bias correction)
  double grad_scale = 1.0;   // g is used as grad_scale * g (clipping, accumulation)
};

// The per-step constants of an Adam update in the parameter's type T, derived in double once per
// update as torch.optim.AdamW's single-tensor path does, so that every backend's kernel starts from
// the same numbers. Per element, in this order (PyTorch's):
//   g = g * scale;  decoupled ? p *= decay : g += wd * p;
//   m = m * b1 + (1 - b1) g;  v = v * b2 + (1 - b2) g g;  p -= step_size * m / (sqrt(v) / bc2_sqrt + eps)
template <class T>
struct AdamCoefficients {
  T b1, b2, scale, wd, decay, step_size, bc2_sqrt, eps;
  bool decoupled;
  explicit AdamCoefficients(const AdamStep& s)
      : b1(T(s.beta1)),
        b2(T(s.beta2)),
        scale(T(s.grad_scale)),
        wd(T(s.weight_decay)),
        decay(T(1.0 - s.lr * s.weight_decay)),
        step_size(T(s.lr / (1.0 - std::pow(s.beta1, double(s.t))))),
        bc2_sqrt(T(std::sqrt(1.0 - std::pow(s.beta2, double(s.t))))),
        eps(T(s.eps)),
        decoupled(s.decoupled) {}
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // Memory.
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual void copy_to_host(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void copy_from_host(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // both on this device

  // out[i] = value (any dtype).
  virtual void fill(Tensor& out, double value) = 0;
  // out = dtype conversion of x (same shape, any dtypes).
  virtual void convert(const Tensor& x, Tensor& out) = 0;

  // Element-wise. `scalar` is the s of AddScalar (x+s), MulScalar (x*s), RsubScalar (s-x), RdivScalar (s/x).
  virtual void unary(UnaryOp op, const Tensor& x, double scalar, Tensor& out) = 0;
  // dx = dy * f'(x) for Tanh, Relu, GeluErf, GeluTanh (the ops whose derivative needs x itself).
  virtual void unary_grad(UnaryOp op, const Tensor& x, const Tensor& dy, Tensor& dx) = 0;
  // out = a op b with NumPy broadcasting: a and b are already padded to out's rank (size-1 axes broadcast).
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) = 0;
  // out[i] = mask[i] != 0 ? value : x[i]; mask (I32) is padded to x's rank and broadcasts.
  virtual void masked_fill(const Tensor& x, const Tensor& mask, double value, Tensor& out) = 0;

  // Sum of x over the axes where out has size 1 and x does not (same rank).
  virtual void sum_to(const Tensor& x, Tensor& out) = 0;

  // out[b] = op(a[b]) @ op(b[b]), op = transpose when the flag is set; a: [batch, M, K] (or [batch, K, M]),
  // b: [batch, K, N] (or [batch, N, K]), out: [batch, M, N]; batch may be 1.
  virtual void matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& out) = 0;

  // out = x with axes permuted: out.shape[i] = x.shape[perm[i]] (any dtype).
  virtual void permute(const Tensor& x, const std::vector<int>& perm, Tensor& out) = 0;
  // Copies `len` entries along `axis` from src[.., src_start:, ..] to dst[.., dst_start:, ..]; src and dst
  // agree on every other axis (any dtype). Serves slice, concat and their backwards.
  virtual void copy_axis(const Tensor& src, int64_t src_start, Tensor& dst, int64_t dst_start, int axis,
                         int64_t len) = 0;

  // Softmax over the last axis. A row whose entries are all -inf gives zeros.
  virtual void softmax(const Tensor& x, Tensor& y) = 0;
  // dx = y * (dy - sum(dy * y)) per row.
  virtual void softmax_grad(const Tensor& y, const Tensor& dy, Tensor& dx) = 0;

  // logits [N, C], targets I32 [N]; loss[n] = logsumexp(logits[n]) - logits[n, t], 0 where target ==
  // ignore_index. Throws Error on a target outside [0, C).
  virtual void cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Tensor& loss) = 0;
  // dlogits[n] = scale * (softmax(logits[n]) - onehot(t)), zero rows where target == ignore_index. The
  // softmax is recomputed from the row (max, then sum): exp(x - lse) with a float32 lse near 1e4 would
  // carry lse's rounding, about 1e-3, into every probability.
  virtual void cross_entropy_grad(const Tensor& logits, const Tensor& targets, int64_t ignore_index, double scale,
                                  Tensor& dlogits) = 0;

  // Layer norm over the last axis: x [R, D], gamma/beta [D]; y [R, D]; mean, rstd [R] saved.
  virtual void layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& y,
                          Tensor& mean, Tensor& rstd) = 0;
  // dx [R, D] is written; dgamma, dbeta [D] are written (not accumulated).
  virtual void layer_norm_grad(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                               const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta) = 0;

  // out[n] = table[ids[n]]: table [V, D], ids I32 [N], out [N, D]. Throws Error on an id outside [0, V).
  virtual void embedding(const Tensor& table, const Tensor& ids, Tensor& out) = 0;
  // dtable[ids[n]] += dout[n] (dtable zeroed by the caller).
  virtual void embedding_grad(const Tensor& ids, const Tensor& dout, Tensor& dtable) = 0;

  // out[i] = 0 with probability p, else 1/(1-p); element i's draw depends only on (seed, i).
  virtual void dropout_mask(uint64_t seed, double p, Tensor& out) = 0;

  // One Adam or AdamW update in place (AdamCoefficients gives the per-element steps): p, m, v are
  // updated from g; all four of one shape and floating dtype. Element i depends only on element i.
  virtual void adam(const AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v) = 0;

  // Average pooling along axis 1 of x [B, L, D]: window P (odd), stride 1, P/2 zeros on each side,
  // divided by P. Self-adjoint, so the backward is the same call on the gradient.
  virtual void avg_pool_seq(const Tensor& x, int64_t P, Tensor& out) = 0;

  // ---- Fused LaS attention: the kernels of las_attention (engine/attention.h). ----
  // `p` is the op's options unchanged; the kernels read p.alpha, p.causal and C = chunk_length(p, L)
  // (the op has already applied p.P and p.kernel to V). Per batch b and head h, inside chunks of C
  // positions: logits (q_i . k_j) * logit_scale(dh) * exp(-alpha[h] |i - j|) at chunk-local positions,
  // masked where j > i (causal) or key >= lengths[b], a softmax per row, then o = A v, where v is the
  // already smoothed V~. Tiled: no L x L matrix is kept.
  // Not pure: a backend without these kernels throws when the op is used, and nothing else changes.
  // q, k, v [B, H, L, dh]; lengths I32 [B] or undefined (all valid); o [B, H, L, dh]; lse [B, H, L] the
  // log-sum-exp of each row's valid logits (+inf for a row without valid keys, whose o row is 0).
  virtual void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lengths,
                         const AttentionOptions& p, Tensor& o, Tensor& lse) {
    throw Error(std::string("las_attention: the ") + name() + " backend has no fused attention kernel");
  }
  // Given dout [B, H, L, dh] and the forward's o and lse: dq, dk, dv [B, H, L, dh] are written (not accumulated).
  virtual void attention_grad(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                              const Tensor& dout, const Tensor& lengths, const AttentionOptions& p, Tensor& dq,
                              Tensor& dk, Tensor& dv) {
    throw Error(std::string("las_attention: the ") + name() + " backend has no fused attention kernel");
  }
};

// The backend of a device; throws Error when that device has none (e.g. a build without CUDA).
Backend& backend(Device device);

// Whether tensors can live on `device` here: the CPU always; CUDA when this lasgrad was built with it
// and the driver reports a GPU. When not, `why` (if given) says which of the two is missing.
bool device_available(Device device, std::string* why = nullptr);

// While alive, `stand_in` serves Device::CUDA in place of the CUDA backend, in any build, and
// device_available(CUDA) is true: tests run every op through the CUDA kernels on the CPU emulator of
// CUDA's thread model this way (tests/cuda/emulated_backend.h), with host memory as the device's.
// One at a time; tensors keep the backend that allocated them, so any may outlive it.
class CudaStandIn {
 public:
  explicit CudaStandIn(Backend& stand_in);  // throws Error when another is alive
  ~CudaStandIn();
  CudaStandIn(const CudaStandIn&) = delete;
  CudaStandIn& operator=(const CudaStandIn&) = delete;
};

// Makes this process's CUDA tensors live on GPU `index` mod the machine's number of GPUs
// (cudaSetDevice), as each data-parallel rank drives the GPU of its local rank (more ranks than GPUs
// share them round-robin). Call it before the first CUDA tensor. Throws Error when the build has no
// CUDA or the machine no GPU.
void use_cuda_device(int index);

// "cpu" or "cuda" as a Device; throws Error naming `what` (the flag or setting) on anything else.
Device parse_device(const std::string& name, const std::string& what);

// Each backend's single instance (engine/cpu/cpu_backend.cpp, engine/cuda/cuda_backend.cu).
Backend& cpu_backend();
#ifdef LASGRAD_HAVE_CUDA
Backend& cuda_backend();
#endif

}  // namespace lasgrad
