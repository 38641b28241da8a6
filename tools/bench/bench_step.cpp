// bench_step: one full training step (forward, backward, AdamW update) of a named model, timed at
// each thread count, with its FLOP rate beside the measured float32 GEMM rate and the FMA peak (the
// lower of its measurements just before and just after the steps), and where the step's time goes.
// tools/bench/bench_step.sh runs it next to the identical PyTorch model (tests/reference/bench_torch.py);
// docs/benchmarks.md has the figures.
//
//   bench_step --model M [--steps N] [--threads 1,2]   the step (median of N after 2 warm-ups) per thread count
//   bench_step --model M --describe                   the model and batch as JSON, for bench_torch.py
//   bench_step --gemm [--threads 1,2]                 the GEMM rate (the best of a few sizes) and the FMA peak
//   bench_step --memory L [--heads H] [--dh D]        peak RSS of one fused attention forward + backward at
//                                                     length L (B = 1, causal LaS)
//
// The models (every one built by train::build_model from RunSettings, as `lasgrad train` builds it):
//   bench, bench-softmax, bench-chunk  LaS / softmax / LaS-Chunk (C = 128): L = 1024, d = 128, 8 heads,
//                                      4 blocks, expand 4, pre-LayerNorm, batch 8, vocabulary 20, 10 classes
//   smnist, smnist-chunk               the `small` preset on sMNIST (L = 784 pixels, batch 32), LaS / LaS-Chunk
//   listops                            the main job's model (tools/run.sh: `small` with 4 blocks) on a
//                                      batch of 32 generated expressions of 11-100 tokens, padded to 100
#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include "data/formats.h"  // kListOpsVocab
#include "engine/attention.h"
#include "engine/ops.h"
#include "engine/parse.h"
#include "engine/profile.h"
#include "engine/rng.h"
#include "models/model.h"
#include "tools/bench/bench_common.h"
#include "train/task_model.h"
#include "train/optim.h"
#include "train/trainer.h"

using namespace lasgrad;
using namespace lasgrad::bench;

namespace {

// A named model: its settings (as lasgrad train reads them, then typed), task description and one
// fixed batch.
struct BenchModel {
  train::RunSettings settings;
  ModelConfig model;
  data::TaskInfo info;
  data::Batch batch;
};

BenchModel bench_model(const std::string& name) {
  BenchModel b;
  train::RunSettings& c = b.settings;
  int64_t B = 0, L = 0, min_len = 0;
  if (name == "bench" || name == "bench-softmax" || name == "bench-chunk") {
    c = train::preset("listops", name == "bench" ? "las" : name == "bench-softmax" ? "softmax" : "las-chunk", "small");
    for (auto [k, v] : {std::pair{"layers", "4"},
                        {"width", "128"},
                        {"heads", "8"},
                        {"expand", "4"},
                        {"decay_max", "0.1"},
                        {"pool", "5"},
                        {"max_length", "1024"}})
      train::set_setting(c, k, v);
    if (name == "bench-chunk") c.model.attention.C = 128;
    b.info = {.name = "listops", .num_classes = 10, .vocab_size = data::kListOpsVocab, .max_length = 1024};
    B = 8, L = 1024, min_len = L;
  } else if (name == "smnist" || name == "smnist-chunk") {
    c = train::preset("smnist", name == "smnist" ? "las" : "las-chunk", "small");
    b.info = {.name = "smnist", .num_classes = 10, .max_length = 784, .pixels = true, .image_side = 28};
    B = 32, L = 784, min_len = L;
  } else if (name == "listops") {
    c = train::preset("listops", "las", "small");
    c.model.layers = 4;  // tools/run.sh's main job
    b.info = {.name = "listops", .num_classes = 10, .vocab_size = data::kListOpsVocab, .max_length = 128};
    B = 32, L = 100, min_len = 11;
  } else {
    throw Error("bench_step: unknown model '" + name +
                "' (bench, bench-softmax, bench-chunk, smnist, smnist-chunk, listops)");
  }
  train::validate(c);
  b.model = train::model_config(c, b.info);
  Rng rng(1);
  data::Batch& batch = b.batch;
  batch.size = B, batch.length = L;
  for (int64_t r = 0; r < B; ++r) {
    const int64_t n = r == 0 ? L : min_len + static_cast<int64_t>(rng.below(static_cast<uint64_t>(L - min_len + 1)));
    batch.lengths.push_back(static_cast<int32_t>(n));
    batch.labels.push_back(static_cast<int32_t>(rng.below(10)));
    for (int64_t t = 0; t < L; ++t) {
      if (b.info.pixels) batch.pixels.push_back(t < n ? static_cast<float>(rng.uniform(-1, 1)) : 0.f);
      else batch.tokens.push_back(t < n ? static_cast<int32_t>(1 + rng.below(19)) : 0);
    }
  }
  return b;
}

// Model FLOPs of one step: 3 x the forward's multiply-adds x 2 (the usual count: backward = 2 x forward;
// flash recomputation not counted), over every padded position. Attention counts only the (query, key)
// pairs that are computed: causal -> L (L + 1) / 2 per head, chunked -> the same inside each chunk.
double step_flops(const BenchModel& b) {
  const ModelConfig& m = b.model;
  const double d = static_cast<double>(m.width), expand = static_cast<double>(m.expand);
  const int64_t B = b.batch.size, L = b.batch.length;
  const double tokens = static_cast<double>(B * L);
  const double linear = 2 * tokens * (4 * d * d + 2 * expand * d * d);  // qkv + out + ffn
  const int64_t C = m.attention.kind == AttentionKind::LasChunk ? m.attention.C : L;
  double pairs = 0;
  for (int64_t c0 = 0; c0 < L; c0 += C) {
    const double n = static_cast<double>(std::min(C, L - c0));
    pairs += m.attention.causal ? n * (n + 1) / 2 : n * n;
  }
  const double attn = 2 * 2 * pairs * d * static_cast<double>(B);  // S = Q K^T and A V, all heads (H * dh = d)
  const double head = 2 * static_cast<double>(B) * d * b.info.num_classes;
  return 3 * (static_cast<double>(m.layers) * (linear + attn) + head);
}

// The model, its batch and the per-head decay rates as JSON: everything bench_torch.py needs to build
// the identical PyTorch model.
void describe(const std::string& name) {
  BenchModel b = bench_model(name);
  const ModelConfig& mc = b.model;
  if (!(mc.norm == NormKind::Layer && mc.prenorm && mc.positions))
    throw Error("bench_step: bench_torch.py's model is pre-LayerNorm with sinusoidal positions");
  auto m = train::build_model(b.settings, b.info);
  nlohmann::json j = {{"model", name},
                      {"attention", name_of(kAttentionKinds, mc.attention.kind)},
                      {"layers", mc.layers},
                      {"d_model", mc.width},
                      {"heads", mc.attention.heads},
                      {"expand", mc.expand},
                      {"pool", mc.attention.P},
                      {"chunk", mc.attention.C},
                      {"causal", mc.attention.causal},
                      {"dropout", mc.dropout},
                      {"vocab", b.info.vocab_size},
                      {"classes", b.info.num_classes},
                      {"pixels", b.info.pixels},
                      {"batch", b.batch.size},
                      {"L", b.batch.length},
                      {"lengths", b.batch.lengths},
                      {"alphas", m->alphas()},
                      {"lr", b.settings.train.schedule.lr},
                      {"weight_decay", b.settings.train.adam.weight_decay},
                      {"no_decay", b.settings.train.no_decay},
                      {"gflop", step_flops(b) / 1e9}};
  std::printf("%s\n", j.dump().c_str());
}

// The step as the trainer takes it (train/trainer.cpp): logits, cross-entropy, backward, AdamW, zero_grad.
void bench_step(const std::string& name, int steps, const std::vector<int>& threads) {
  BenchModel b = bench_model(name);
  const double flops = step_flops(b);
  for (int t : threads) {
    omp_set_num_threads(t);
    auto model = train::build_model(b.settings, b.info);  // the same weights at every thread count
    Module& m = model->module();
    train::Adam opt(m.named_parameters(), b.settings.train.adam, b.settings.train.no_decay);
    const Tensor y = Tensor::from(b.batch.labels, {b.batch.size});
    auto step = [&] {
      Tensor loss = cross_entropy(model->logits(b.batch), y);
      loss.backward();
      opt.step(b.settings.train.schedule.lr);
      m.zero_grad();
    };
    step();
    step();
    // What the cores deliver now: on a shared machine a second core can be busy with another tenant,
    // and the FMA peak measured beside the steps shows it (its 2-thread figure falls short of 2x).
    const double peak_before = peak_flops(t);
    std::vector<double> times;
    KernelProfile prof;
    for (int i = 0; i < steps; ++i) times.push_back(seconds(step));
    const double peak = std::min(peak_before, peak_flops(t));
    const double s = median(times), mean = [&] {
      double sum = 0;
      for (double x : times) sum += x;
      return sum / static_cast<double>(times.size());
    }();
    std::printf("lasgrad model=%s threads=%d step_ms=%.1f gflop=%.3f gflops=%.1f fma_peak_gflops=%.1f", name.c_str(), t,
                s * 1e3, flops / 1e9, flops / s / 1e9, peak / 1e9);
    // The kernel parts as shares of the mean step; "outside" is the time between kernels (the autograd
    // graph, op checks, allocation bookkeeping outside the allocator).
    double inside = 0;
    for (int p = 0; p < static_cast<int>(KernelPart::kCount); ++p) {
      const double share = prof.seconds(static_cast<KernelPart>(p)) / steps / mean;
      inside += share;
      std::printf(" %s=%.1f%%", kernel_part_name(static_cast<KernelPart>(p)), 100 * share);
    }
    std::printf(" outside=%.1f%%\n", 100 * (1 - inside));
    std::fflush(stdout);
  }
}

// The best float32 GEMM rate of lasgrad's matmul over square sizes (the step's GEMM ceiling), and the
// FMA peak, at each thread count.
void bench_gemm(const std::vector<int>& threads) {
  for (int t : threads) {
    omp_set_num_threads(t);
    double best = 0;
    for (int64_t n : {512, 1024, 2048}) {
      Tensor a = Tensor::full({n, n}, 0.5), b = Tensor::full({n, n}, 0.25);
      best = std::max(best, 2.0 * static_cast<double>(n * n * n) / median_seconds(5, [&] { matmul(a, b); }));
    }
    std::printf("gemm threads=%d gflops=%.1f fma_peak_gflops=%.1f\n", t, best / 1e9, peak_flops(t) / 1e9);
  }
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

void bench_memory(int64_t L, int64_t H, int64_t dh) {
  Rng rng(2);
  auto rand = [&] {
    std::vector<float> v(static_cast<size_t>(H * L * dh));
    for (float& x : v) x = static_cast<float>(rng.uniform(-1, 1));
    return Tensor::from(v, {1, H, L, dh}).set_requires_grad();
  };
  Tensor q = rand(), k = rand(), v = rand(), w = rand().detach();
  AttentionOptions o{.alpha = std::vector<double>(H, 0.01), .P = 5};
  o.alpha[0] = 0;
  const double before = peak_rss_mib();
  double t = seconds([&] { sum(mul(las_attention(q, k, v, o), w)).backward(); });
  const double after = peak_rss_mib(), input_mib = 4.0 * H * L * dh * 4 / (1 << 20);
  std::printf(
      "memory L=%lld heads=%lld dh=%lld inputs_mib=%.1f rss_before_mib=%.1f rss_peak_mib=%.1f "
      "growth_mib=%.1f LxL_matrix_mib=%.1f seconds=%.2f\n",
      static_cast<long long>(L), static_cast<long long>(H), static_cast<long long>(dh), input_mib, before, after,
      after - before, 4.0 * H * L * L / (1 << 20), t);
}

std::vector<int> parse_threads(const std::string& s) {
  std::vector<int> out;
  for (const std::string& item : split_commas(s, "bench_step: --threads")) {
    int64_t t = 0;
    if (!parse_int64(item, t) || t < 1 || t > train::kMaxThreads)
      throw Error("bench_step: --threads needs counts in [1, " + std::to_string(train::kMaxThreads) + "], got " + s);
    out.push_back(static_cast<int>(t));
  }
  if (out.empty()) throw Error("bench_step: --threads lists no counts");
  return out;
}

}  // namespace

int main(int argc, char** argv) try {
  std::string model = "bench", mode = "step";
  int steps = 5;
  std::vector<int> threads = {omp_get_max_threads()};
  int64_t L = 0, H = 1, dh = 64;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw Error("bench_step: " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--model") model = next();
    else if (a == "--steps") steps = std::stoi(next());
    else if (a == "--threads") threads = parse_threads(next());
    else if (a == "--describe") mode = "describe";
    else if (a == "--gemm") mode = "gemm";
    else if (a == "--memory") mode = "memory", L = std::stoll(next());
    else if (a == "--heads") H = std::stoll(next());
    else if (a == "--dh") dh = std::stoll(next());
    else {
      std::fprintf(stderr,
                   "usage: bench_step --model M [--steps N] [--threads 1,2] [--describe] | --gemm [--threads 1,2] | "
                   "--memory L [--heads H] [--dh D]\n");
      return 2;
    }
  }
  if (mode == "gemm") bench_gemm(threads);
  else if (mode == "memory") bench_memory(L, H, dh);
  else if (mode == "describe") describe(model);
  else bench_step(model, std::max(1, steps), threads);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_step: %s\n", e.what());
  return 1;
}
