// bench_step: one full training step (forward, backward, plain SGD update) of the bench model, timed,
// with its FLOP rate beside the measured float32 GEMM rate. tools/bench_step.sh runs it next to the
// identical PyTorch model; docs/benchmarks.md has the figures.
//
//   bench_step [--kind las|softmax|las-chunk] [--steps N]   the step (median of N after 2 warm-ups)
//   bench_step --gemm                                       the GEMM rate (the best of a few sizes)
//   bench_step --memory L [--heads H] [--dh D]              peak RSS of one fused attention forward +
//                                                           backward at length L (B = 1, causal LaS)
// Bench model: LaS, L = 1024, d = 128, 8 heads, 4 blocks, pre-LayerNorm, sinusoidal positions,
// batch 8, vocabulary 20, 10 classes, mean pooling; las-chunk uses C = 128. Threads: OMP_NUM_THREADS.
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "engine/attention.h"
#include "engine/ops.h"
#include "models/model.h"

using namespace lasgrad;

namespace {

double seconds(const std::function<void()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Model FLOPs of one step: 3 x the forward's multiply-adds x 2 (the usual count: backward = 2 x forward;
// flash recomputation not counted). Attention counts only the (query, key) pairs that are computed:
// causal -> L (L + 1) / 2 per head, chunked -> the same inside each chunk.
double step_flops(const ModelConfig& c, int64_t B, int64_t L) {
  const double d = static_cast<double>(c.d_model), tokens = static_cast<double>(B * L);
  const double linear = 2 * tokens * (4 * d * d + 2 * c.expand * d * d);  // qkv + out + ffn
  const int64_t C = c.attention.kind == AttentionKind::LasChunk ? c.attention.chunk : L;
  double pairs = 0;
  for (int64_t c0 = 0; c0 < L; c0 += C) {
    const double n = static_cast<double>(std::min(C, L - c0));
    pairs += c.attention.causal ? n * (n + 1) / 2 : n * n;
  }
  const double attn = 2 * 2 * pairs * d * B;  // S = Q K^T and A V, all heads (H * dh = d)
  const double head = 2 * B * d * c.classes;
  return 3 * (c.layers * (linear + attn) + head);
}

void bench_step(const std::string& kind, int steps) {
  ModelConfig c;
  c.vocab = 20;
  c.classes = 10;
  c.max_len = 1024;
  c.d_model = 128;
  c.layers = 4;
  c.attention.heads = 8;
  c.attention.kind = parse_attention_kind(kind);
  c.attention.chunk = 128;
  const int64_t B = 8, L = 1024;
  auto m = make_model(c);
  Rng rng(1);
  std::vector<int32_t> ids(B * L), labels(B);
  for (auto& t : ids) t = static_cast<int32_t>(rng.below(20));
  for (auto& t : labels) t = static_cast<int32_t>(rng.below(10));
  ModelInput in{.x = Tensor::from(ids, {B, L}), .lengths = Tensor::from(std::vector<int32_t>(B, L), {B})};
  Tensor y = Tensor::from(labels, {B});
  const double lr = 1e-3;
  auto step = [&] {
    Tensor loss = cross_entropy(m->forward(in), y);
    loss.backward();
    NoGradGuard no_grad;
    for (Tensor p : m->parameters()) {
      p.copy_from(sub(p, mul(p.grad(), lr)));  // plain SGD until the trainer's AdamW exists
      p.zero_grad();
    }
  };
  step();
  step();
  std::vector<double> t;
  for (int i = 0; i < steps; ++i) t.push_back(seconds(step));
  const double s = median(t), flops = step_flops(c, B, L);
  std::printf("lasgrad kind=%s threads=%d step_ms=%.1f gflop=%.2f gflops=%.1f\n", kind.c_str(), omp_get_max_threads(),
              s * 1e3, flops / 1e9, flops / s / 1e9);
}

// The best float32 GEMM rate of lasgrad's matmul over square sizes (the step's GEMM ceiling).
void bench_gemm() {
  double best = 0;
  for (int64_t n : {512, 1024, 2048}) {
    Tensor a = Tensor::full({n, n}, 0.5), b = Tensor::full({n, n}, 0.25);
    matmul(a, b);
    std::vector<double> t;
    for (int i = 0; i < 5; ++i) t.push_back(seconds([&] { matmul(a, b); }));
    best = std::max(best, 2.0 * n * n * n / median(t));
  }
  std::printf("gemm threads=%d gflops=%.1f\n", omp_get_max_threads(), best / 1e9);
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
  std::vector<double> alpha(H, 0.01);
  alpha[0] = 0;
  const double before = peak_rss_mib();
  double t = seconds([&] { sum(mul(las_attention(q, k, v, alpha, {true, 5, 0, false}), w)).backward(); });
  const double after = peak_rss_mib(), input_mib = 4.0 * H * L * dh * 4 / (1 << 20);
  std::printf("memory L=%lld heads=%lld dh=%lld inputs_mib=%.1f rss_before_mib=%.1f rss_peak_mib=%.1f "
              "growth_mib=%.1f LxL_matrix_mib=%.1f seconds=%.2f\n",
              static_cast<long long>(L), static_cast<long long>(H), static_cast<long long>(dh), input_mib, before,
              after, after - before, 4.0 * H * L * L / (1 << 20), t);
}

}  // namespace

int main(int argc, char** argv) {
  std::string kind = "las", mode = "step";
  int steps = 5;
  int64_t L = 0, H = 1, dh = 64;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw Error("bench_step: " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--kind") kind = next();
    else if (a == "--steps") steps = std::stoi(next());
    else if (a == "--gemm") mode = "gemm";
    else if (a == "--memory") mode = "memory", L = std::stoll(next());
    else if (a == "--heads") H = std::stoll(next());
    else if (a == "--dh") dh = std::stoll(next());
    else {
      std::fprintf(stderr, "usage: bench_step [--kind las|softmax|las-chunk] [--steps N] | --gemm | --memory L [--heads H] [--dh D]\n");
      return 2;
    }
  }
  if (mode == "gemm") bench_gemm();
  else if (mode == "memory") bench_memory(L, H, dh);
  else bench_step(kind, steps);
  return 0;
}
