// bench_cuda: lasgrad on the GPU. tools/bench/bench_cuda.sh runs it beside the identical PyTorch code on the
// same GPU and prints the ratios; docs/benchmarks.md is where the figures go.
//
//   bench_cuda --step [--model bench|listops] [--kind las|softmax|las-chunk] [--batch B] [--steps N]
//       one training step (forward, cross-entropy, backward, SGD update), median of N after 2 warm-ups
//   bench_cuda --kernel --batch B --heads H --len L --dh D [--kind ...] [--steps N]
//       the fused attention kernels alone (forward; forward + backward) and their TFLOP/s
//   bench_cuda --memory L [--heads H] [--dh D] [--kind ...]
//       peak device memory held by lasgrad tensors in one fused attention forward + backward (B = 1)
//   any of them with --tf32 runs float32 GEMMs on TF32 tensor cores; --bf16 runs the step in precision
//   bf16 (bfloat16 GEMMs on tensor cores, the tensor-core attention forward) and the kernel and memory
//   benchmarks with bf16 rounding (the op casts float32 q, k, v: the casts are inside the times)
//
// Models (both pre-LayerNorm, sinusoidal positions, mean pooling; the PyTorch side is
// tests/reference/make_fixture.py's model, LaS written literally, with the same shapes):
//   bench:   L = 1024, d = 128, 8 heads, 4 blocks, expand 4, batch 8, vocabulary 20, 10 classes
//   (tools/bench/bench_step) listops: L = 2000, d = 256, 8 heads, 6 blocks, expand 4, vocabulary 20, 10 classes, batch
//   8 by default
//            (the literal PyTorch LaS keeps about seven L x L matrices per head for its backward: batch 16
//            would not fit in 80 GB).
//            The paper's ListOps model is post-BatchNorm; the PyTorch reference model is pre-LayerNorm, so
//            both sides use pre-LayerNorm here: the shapes and the attention are the paper's.
// LaS: B = 0.1, P = 5; LaS-Chunk: C = 128. Every figure is float32 (TF32 only with --tf32) unless --bf16.
//
// FLOP counts (attention): the computed (query, key) pairs times 2 dh per product, two products in the
// forward (S = Q K^T, O = P V) and five in the backward (S again, dP, dV, dQ, dK), so backward = 2.5 x
// forward, as FlashAttention counts it; causal pairs are L (L + 1) / 2 per chunk row block.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "engine/attention.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/ops.h"
#include "models/model.h"

using namespace lasgrad;

namespace {

CudaBackend& gpu() { return cuda_backend_impl(); }

// Wall time of f, which is followed by a device synchronisation (kernels run asynchronously).
double seconds(const std::function<void()>& f) {
  gpu().synchronize();
  auto t0 = std::chrono::steady_clock::now();
  f();
  gpu().synchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median_of(int n, const std::function<void()>& f) {
  f();  // warm-ups: the allocator's cache fills, cuBLAS picks its kernels
  f();
  std::vector<double> t;
  for (int i = 0; i < n; ++i) t.push_back(seconds(f));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double attention_pairs(int64_t L, int64_t C, bool causal) {
  double pairs = 0;
  for (int64_t c0 = 0; c0 < L; c0 += C) {
    const double n = static_cast<double>(std::min(C, L - c0));
    pairs += causal ? n * (n + 1) / 2 : n * n;
  }
  return pairs;
}

// The op's options of `kind` at H heads and length L, through the model's own map (resolve_options):
// the default settings (P = 5, B = 0.1, the box), C = 128 for las-chunk.
AttentionOptions options_of(const std::string& kind, int64_t H, int64_t L, bool bf16) {
  AttentionSettings s;
  s.kind = parse_name(kAttentionKinds, kind, "--kind");
  s.heads = H;
  s.max_len = L;
  if (s.kind == AttentionKind::LasChunk) s.C = 128;
  AttentionOptions o = resolve_options(H, s);  // width H: one column per head is enough for the options
  o.bf16 = bf16;
  return o;
}

Tensor random_device(const Shape& shape, Rng& rng, bool grad) {
  std::vector<float> v(static_cast<size_t>(numel_of(shape)));
  for (float& x : v) x = static_cast<float>(rng.uniform(-1, 1));
  Tensor t = Tensor::from(v, shape, DType::F32, Device::CUDA);
  if (grad) t.set_requires_grad(true);
  return t;
}

const char* precision_of(bool bf16) { return bf16 ? "bf16" : "fp32"; }

void bench_step(const std::string& model, const std::string& kind, int64_t batch, int steps, bool bf16) {
  ModelConfig c;
  c.precision = bf16 ? Precision::Bf16 : Precision::Fp32;
  c.vocab = 20;
  c.classes = 10;
  c.expand = 4;
  c.norm = NormKind::Layer;  // pre-LayerNorm, as bench_step's bench model
  c.prenorm = true;
  c.attention.heads = 8;
  c.attention.kind = parse_name(kAttentionKinds, kind, "--kind");
  c.attention.B = 0.1;
  c.attention.P = 5;
  c.attention.C = 128;
  int64_t L;
  if (model == "listops") {
    L = 2000, c.width = 256, c.layers = 6;
    if (batch == 0) batch = 8;
  } else {
    L = 1024, c.width = 128, c.layers = 4;
    if (batch == 0) batch = 8;
  }
  c.max_len = L;
  auto m = make_model(c);
  m->to(Device::CUDA);
  Rng rng(1);
  std::vector<int32_t> ids(batch * L), labels(batch);
  for (auto& t : ids) t = static_cast<int32_t>(rng.below(20));
  for (auto& t : labels) t = static_cast<int32_t>(rng.below(10));
  ModelInput in;
  in.x = Tensor::from(ids, {batch, L}, Device::CUDA);
  in.lengths = Tensor::from(std::vector<int32_t>(batch, static_cast<int32_t>(L)), {batch}, Device::CUDA);
  Tensor y = Tensor::from(labels, {batch}, Device::CUDA);
  const double lr = 1e-3;
  gpu().allocator().reset_peak();
  const double s = median_of(steps, [&] {
    Tensor loss = cross_entropy(m->forward(in), y);
    loss.backward();
    NoGradGuard no_grad;
    for (Tensor p : m->parameters()) {
      p.copy_from(sub(p, mul(p.grad(), lr)));  // plain SGD, as the PyTorch side
      p.zero_grad();
    }
  });
  std::printf(
      "lasgrad step model=%s kind=%s precision=%s batch=%lld L=%lld step_ms=%.2f tokens_per_s=%.0f peak_mib=%.1f\n",
      model.c_str(), kind.c_str(), precision_of(bf16), static_cast<long long>(batch), static_cast<long long>(L),
      s * 1e3, static_cast<double>(batch * L) / s, gpu().allocator().stats().peak_bytes / 1048576.0);
}

void bench_kernel(const std::string& kind, int64_t B, int64_t H, int64_t L, int64_t dh, int steps, bool bf16) {
  Rng rng(2);
  Tensor q = random_device({B, H, L, dh}, rng, true), k = random_device({B, H, L, dh}, rng, true),
         v = random_device({B, H, L, dh}, rng, true), w = random_device({B, H, L, dh}, rng, false);
  const AttentionOptions o = options_of(kind, H, L, bf16);
  const double fwd_flops = 4.0 * B * H * dh * attention_pairs(L, chunk_length(o, L), o.causal);
  const double f = median_of(steps, [&] {
    NoGradGuard no_grad;
    las_attention(q, k, v, o);
  });
  // The backward alone is timed as (forward + backward) - forward; the smoothing ops (pooling V) and the
  // seed multiply are inside both and cost O(L dh), negligible beside the O(L^2 dh) kernels.
  const double fb = median_of(steps, [&] {
    sum(mul(las_attention(q, k, v, o), w)).backward();
    q.zero_grad();
    k.zero_grad();
    v.zero_grad();
  });
  std::printf(
      "lasgrad kernel kind=%s precision=%s B=%lld H=%lld L=%lld dh=%lld fwd_ms=%.3f fwd_tflops=%.2f fwdbwd_ms=%.3f "
      "fwdbwd_tflops=%.2f\n",
      kind.c_str(), precision_of(bf16), static_cast<long long>(B), static_cast<long long>(H), static_cast<long long>(L),
      static_cast<long long>(dh), f * 1e3, fwd_flops / f / 1e12, fb * 1e3, 3.5 * fwd_flops / fb / 1e12);
}

void bench_memory(const std::string& kind, int64_t L, int64_t H, int64_t dh, bool bf16) {
  Rng rng(3);
  Tensor q = random_device({1, H, L, dh}, rng, true), k = random_device({1, H, L, dh}, rng, true),
         v = random_device({1, H, L, dh}, rng, true), w = random_device({1, H, L, dh}, rng, false);
  gpu().synchronize();
  const size_t before = gpu().allocator().stats().in_use_bytes;
  gpu().allocator().reset_peak();
  const double t = seconds([&] { sum(mul(las_attention(q, k, v, options_of(kind, H, L, bf16)), w)).backward(); });
  const double mib = 1048576.0;
  std::printf(
      "lasgrad memory kind=%s precision=%s L=%lld H=%lld dh=%lld inputs_mib=%.1f peak_mib=%.1f growth_mib=%.1f "
      "LxL_matrix_mib=%.1f seconds=%.3f\n",
      kind.c_str(), precision_of(bf16), static_cast<long long>(L), static_cast<long long>(H),
      static_cast<long long>(dh), before / mib, gpu().allocator().stats().peak_bytes / mib,
      (gpu().allocator().stats().peak_bytes - before) / mib, 4.0 * H * L * L / mib, t);
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode, model = "bench", kind = "las";
  int steps = 10;
  int64_t B = 0, H = 8, L = 0, dh = 64;
  bool tf32 = false, bf16 = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw Error("bench_cuda: " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--step") mode = "step";
    else if (a == "--kernel") mode = "kernel";
    else if (a == "--memory") mode = "memory", L = std::stoll(next());
    else if (a == "--model") model = next();
    else if (a == "--kind") kind = next();
    else if (a == "--batch") B = std::stoll(next());
    else if (a == "--heads") H = std::stoll(next());
    else if (a == "--len") L = std::stoll(next());
    else if (a == "--dh") dh = std::stoll(next());
    else if (a == "--steps") steps = std::stoi(next());
    else if (a == "--tf32") tf32 = true;
    else if (a == "--bf16") bf16 = true;
    else mode = "usage";
  }
  if (mode.empty() || mode == "usage" || (mode == "kernel" && (B <= 0 || L <= 0))) {
    std::fprintf(stderr,
                 "usage: bench_cuda --step [--model bench|listops] [--kind K] [--batch B] [--steps N]\n"
                 "       bench_cuda --kernel --batch B --heads H --len L --dh D [--kind K] [--steps N]\n"
                 "       bench_cuda --memory L [--heads H] [--dh D] [--kind K]      (K: las|softmax|las-chunk; add "
                 "--tf32 or --bf16)\n");
    return 2;
  }
  std::string why;
  if (!cuda_device_available(&why)) {
    std::fprintf(stderr, "bench_cuda: no CUDA device: %s\n", why.c_str());
    return 1;
  }
  gpu().set_tf32(tf32);
  try {
    if (mode == "step") bench_step(model, kind, B, steps, bf16);
    else if (mode == "kernel") bench_kernel(kind, B, H, L, dh, steps, bf16);
    else bench_memory(kind, L, H, dh, bf16);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_cuda: %s\n", e.what());
    return 1;
  }
  return 0;
}
