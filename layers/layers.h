// The basic layers. Shapes: B batch, L positions, D (or d) features. Each layer's parameters are named
// as in PyTorch ("weight", "bias") so checkpoints and the PyTorch fixtures map one to one; their
// initialisation matches PyTorch's defaults and is stated beside each constructor.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/ops.h"
#include "engine/replicas.h"
#include "engine/rng.h"
#include "layers/module.h"

namespace lasgrad {

// y = x Wᵀ + b: x [..., in] -> [..., out]; weight [out, in], bias [out].
// Init: weight and bias uniform in ±1/sqrt(in) (PyTorch's nn.Linear).
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, Rng& rng, DType dtype = DType::F32, bool bias = true);
  Tensor forward(const Tensor& x) const;
  Tensor weight, bias;  // bias undefined when built without one
};

// ids I32 [...] -> [..., d]; weight [V, d]. Init: N(0, 1) (PyTorch's nn.Embedding).
class Embedding : public Module {
 public:
  Embedding(int64_t vocab, int64_t d, Rng& rng, DType dtype = DType::F32);
  Tensor forward(const Tensor& ids) const;
  Tensor weight;
};

// A normalisation of x [B, L, d] over features (LayerNorm) or over batch and positions (BatchNorm).
class Norm : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
};

// Over the last axis; weight [d] = 1, bias [d] = 0 at init.
class LayerNorm : public Norm {
 public:
  LayerNorm(int64_t d, DType dtype = DType::F32, double eps = 1e-5);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  double eps;
};

// Per channel over (batch, positions) of x [B, L, d], as PyTorch's BatchNorm1d on [B, d, L] (padded
// positions count, as in the S4 code base). Training normalises with the batch statistics (biased
// variance) and updates the buffers running_mean (init 0) and running_var (init 1) by
// r = (1 - momentum) r + momentum * stat, with the unbiased variance; eval normalises with the buffers.
// weight [d] = 1, bias [d] = 0 at init. Composed from ops, so its gradient is the engine's.
//
// Synchronised over data-parallel replicas when `sync` is set (the trainer does, docs/distributed.md):
// the batch statistics are then those of every replica's rows together, through replica_sum, so N
// replicas normalise as one process with their rows would. A replica whose rows are only filler (a
// last batch with fewer rows than replicas) sets `contributes` to false and adds none of them.
class BatchNorm : public Norm {
 public:
  struct Sync {
    Replicas* replicas = nullptr;
    bool contributes = true;
  };
  BatchNorm(int64_t d, DType dtype = DType::F32, double eps = 1e-5, double momentum = 0.1);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias, running_mean, running_var;
  double eps, momentum;
  std::shared_ptr<const Sync> sync;
};

// Where dropout masks get their seeds: one counter per model, so a run with the same seed draws the
// same masks in the same order (and a resumed run can restore `count`).
struct SeedCounter {
  uint64_t seed = 0;
  uint64_t count = 0;
  uint64_t next() { return mix64(seed ^ mix64(++count)); }
};

// Zeroes entries with probability p in training (scaling the rest by 1/(1-p)); identity in eval.
class Dropout : public Module {
 public:
  Dropout(double p, std::shared_ptr<SeedCounter> seeds);
  Tensor forward(const Tensor& x) const;
  double p;

 private:
  std::shared_ptr<SeedCounter> seeds_;
};

// x [..., d] -> fc2(dropout(gelu(fc1(x)))): d -> expand*d -> d, exact (erf) GELU.
class FeedForward : public Module {
 public:
  FeedForward(int64_t d, int64_t expand, double dropout, std::shared_ptr<SeedCounter> seeds, Rng& rng,
              DType dtype = DType::F32);
  Tensor forward(const Tensor& x) const;
  std::shared_ptr<Linear> fc1, fc2;
  std::shared_ptr<Dropout> drop;
};

// The sinusoidal position table [L, d] of "Attention is all you need": pe[p, 2i] = sin(p / 10000^(2i/d)),
// pe[p, 2i+1] = cos(p / 10000^(2i/d)). A constant (no grad), made on `device`.
Tensor sinusoidal_positions(int64_t L, int64_t d, DType dtype, Device device);

// x [B, L, d] -> x + the sinusoidal table [L, d]. The table is made on x's device in x's dtype (a
// constant made on another device than the activations it meets is what broke the first GPU run), and
// kept until a call with another length, dtype or device. No parameters or buffers: checkpoints are
// unchanged by it.
class SinusoidalPositions : public Module {
 public:
  explicit SinusoidalPositions(int64_t d) : d_(d) {}
  Tensor forward(const Tensor& x);

 private:
  int64_t d_;
  Tensor table_;
};

}  // namespace lasgrad
