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

// Every kernel of the CPU backend (engine/kernels.h), forwarded under a Timer of its part. Memory
// management (allocate, deallocate) counts as Other: on the CPU it is the caching allocator's bookkeeping.
class TimedBackend final : public Backend {
 public:
  explicit TimedBackend(Backend& inner) : b_(inner) {}
  const char* name() const override { return b_.name(); }
  void* allocate(size_t bytes) override {
    Timer t(KernelPart::Other);
    return b_.allocate(bytes);
  }
  void deallocate(void* p, size_t bytes) override {
    Timer t(KernelPart::Other);
    b_.deallocate(p, bytes);
  }
  void copy_to_host(void* d, const void* s, size_t n) override {
    Timer t(KernelPart::Layout);
    b_.copy_to_host(d, s, n);
  }
  void copy_from_host(void* d, const void* s, size_t n) override {
    Timer t(KernelPart::Layout);
    b_.copy_from_host(d, s, n);
  }
  void copy(void* d, const void* s, size_t n) override {
    Timer t(KernelPart::Layout);
    b_.copy(d, s, n);
  }
#define LASGRAD_TIMED_KERNEL(name, part, params, args) \
  void name params override {                          \
    Timer t(KernelPart::part);                         \
    b_.name args;                                      \
  }
  LASGRAD_KERNELS(LASGRAD_TIMED_KERNEL)
#undef LASGRAD_TIMED_KERNEL

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
