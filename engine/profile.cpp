#include "engine/profile.h"

#include <chrono>

namespace lasgrad {

namespace {

KernelProfile* active = nullptr;

// Times one call of the wrapped backend into the active profile.
class Timer {
 public:
  explicit Timer(KernelPart part) : part_(part), t0_(std::chrono::steady_clock::now()) {}
  ~Timer() { active->add(part_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count()); }

 private:
  KernelPart part_;
  std::chrono::steady_clock::time_point t0_;
};

// Every kernel of the CPU backend, forwarded under a Timer of its part. Memory management (allocate,
// deallocate) counts as Other: on the CPU it is the caching allocator's bookkeeping.
class TimedBackend final : public Backend {
 public:
  explicit TimedBackend(Backend& inner) : b_(inner) {}
  const char* name() const override { return b_.name(); }
  void* allocate(size_t bytes) override { Timer t(KernelPart::Other); return b_.allocate(bytes); }
  void deallocate(void* p, size_t bytes) override { Timer t(KernelPart::Other); b_.deallocate(p, bytes); }
  void copy_to_host(void* d, const void* s, size_t n) override { Timer t(KernelPart::Layout); b_.copy_to_host(d, s, n); }
  void copy_from_host(void* d, const void* s, size_t n) override { Timer t(KernelPart::Layout); b_.copy_from_host(d, s, n); }
  void copy(void* d, const void* s, size_t n) override { Timer t(KernelPart::Layout); b_.copy(d, s, n); }
  void fill(Tensor& out, double v) override { Timer t(KernelPart::Elementwise); b_.fill(out, v); }
  void convert(const Tensor& x, Tensor& out) override { Timer t(KernelPart::Elementwise); b_.convert(x, out); }
  void unary(UnaryOp op, const Tensor& x, double s, Tensor& out) override {
    Timer t(KernelPart::Elementwise);
    b_.unary(op, x, s, out);
  }
  void unary_grad(UnaryOp op, const Tensor& x, const Tensor& dy, Tensor& dx) override {
    Timer t(KernelPart::Elementwise);
    b_.unary_grad(op, x, dy, dx);
  }
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override {
    Timer t(KernelPart::Elementwise);
    b_.binary(op, a, b, out);
  }
  void masked_fill(const Tensor& x, const Tensor& mask, double v, Tensor& out) override {
    Timer t(KernelPart::Elementwise);
    b_.masked_fill(x, mask, v, out);
  }
  void sum_to(const Tensor& x, Tensor& out) override { Timer t(KernelPart::Elementwise); b_.sum_to(x, out); }
  void matmul(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& out) override {
    Timer t(KernelPart::Gemm);
    b_.matmul(a, ta, b, tb, out);
  }
  void permute(const Tensor& x, const std::vector<int>& perm, Tensor& out) override {
    Timer t(KernelPart::Layout);
    b_.permute(x, perm, out);
  }
  void copy_axis(const Tensor& src, int64_t s0, Tensor& dst, int64_t d0, int axis, int64_t len) override {
    Timer t(KernelPart::Layout);
    b_.copy_axis(src, s0, dst, d0, axis, len);
  }
  void softmax(const Tensor& x, Tensor& y) override { Timer t(KernelPart::Attention); b_.softmax(x, y); }
  void softmax_grad(const Tensor& y, const Tensor& dy, Tensor& dx) override {
    Timer t(KernelPart::Attention);
    b_.softmax_grad(y, dy, dx);
  }
  void cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore, Tensor& loss) override {
    Timer t(KernelPart::Other);
    b_.cross_entropy(logits, targets, ignore, loss);
  }
  void cross_entropy_grad(const Tensor& logits, const Tensor& targets, int64_t ignore, double scale,
                          Tensor& dlogits) override {
    Timer t(KernelPart::Other);
    b_.cross_entropy_grad(logits, targets, ignore, scale, dlogits);
  }
  void layer_norm(const Tensor& x, const Tensor& g, const Tensor& beta, double eps, Tensor& y, Tensor& mean,
                  Tensor& rstd) override {
    Timer t(KernelPart::Norm);
    b_.layer_norm(x, g, beta, eps, y, mean, rstd);
  }
  void layer_norm_grad(const Tensor& x, const Tensor& g, const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                       Tensor& dx, Tensor& dg, Tensor& db) override {
    Timer t(KernelPart::Norm);
    b_.layer_norm_grad(x, g, mean, rstd, dy, dx, dg, db);
  }
  void embedding(const Tensor& table, const Tensor& ids, Tensor& out) override {
    Timer t(KernelPart::Other);
    b_.embedding(table, ids, out);
  }
  void embedding_grad(const Tensor& ids, const Tensor& dout, Tensor& dtable) override {
    Timer t(KernelPart::Other);
    b_.embedding_grad(ids, dout, dtable);
  }
  void dropout_mask(uint64_t seed, double p, Tensor& out) override {
    Timer t(KernelPart::Elementwise);
    b_.dropout_mask(seed, p, out);
  }
  void adam(const AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v) override {
    Timer t(KernelPart::Optimizer);
    b_.adam(s, p, g, m, v);
  }
  void avg_pool_seq(const Tensor& x, int64_t P, Tensor& out) override {
    Timer t(KernelPart::Attention);
    b_.avg_pool_seq(x, P, out);
  }
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lengths, const AttentionOptions& p,
                 Tensor& o, Tensor& lse) override {
    Timer t(KernelPart::Attention);
    b_.attention(q, k, v, lengths, p, o, lse);
  }
  void attention_grad(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                      const Tensor& dout, const Tensor& lengths, const AttentionOptions& p, Tensor& dq, Tensor& dk,
                      Tensor& dv) override {
    Timer t(KernelPart::Attention);
    b_.attention_grad(q, k, v, o, lse, dout, lengths, p, dq, dk, dv);
  }

 private:
  Backend& b_;
};

}  // namespace

const char* kernel_part_name(KernelPart part) {
  static const char* names[] = {"gemm", "attention", "elementwise", "layout", "norm", "optimizer", "other"};
  return names[static_cast<size_t>(part)];
}

KernelProfile::KernelProfile() {
  if (active) throw Error("KernelProfile: another profile is already alive");
  active = this;
}

KernelProfile::~KernelProfile() { active = nullptr; }

double KernelProfile::total() const {
  double s = 0;
  for (double x : seconds_) s += x;
  return s;
}

Backend& profiled_cpu_backend() {
  static TimedBackend timed(cpu_backend());
  return active ? static_cast<Backend&>(timed) : cpu_backend();
}

}  // namespace lasgrad
