// The backend seam: every op reaches its kernel through backend(device), one dispatch point per
// device. Ops (engine/ops_*.cpp) validate inputs, allocate outputs and record backward; a backend only
// computes. engine/cpu implements this interface; engine/cuda adds a second implementation and
// registers it, and no op or caller changes. The kernels and their contract: engine/kernels.h.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/kernels.h"
#include "engine/tensor.h"

namespace lasgrad {

struct AttentionOptions;  // the fused attention kernels' options (engine/attention.h)

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
  bool decoupled;           // true: AdamW, p -= lr * wd * p first; false: Adam, g += wd * p (L2)
  int64_t t;                // step number, from 1 (bias correction)
  double grad_scale = 1.0;  // g is used as grad_scale * g (clipping, accumulation)
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

  // The kernels (engine/kernels.h: each one's shapes and contract).
#define LASGRAD_DECLARE_KERNEL(name, part, params, args) virtual void name params = 0;
  LASGRAD_KERNELS(LASGRAD_DECLARE_KERNEL)
#undef LASGRAD_DECLARE_KERNEL
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
