// Where a CPU step's time goes: while a KernelProfile is alive, backend(Device::CPU) hands out a
// wrapper that times every kernel call of the CPU backend and adds it to the call's part (GEMM,
// attention, element-wise, ...). What the kernels do and the bits they give are unchanged; the
// wrapper only reads a clock around each call, so the figures cost one clock read per kernel.
//
//   KernelProfile prof;
//   train_step();
//   prof.seconds(KernelPart::Gemm);   // seconds inside matmul since prof was made
//
// One profile at a time, on the thread that runs the ops (kernels parallelise inside a call).
#pragma once
#include <array>

#include "engine/backend.h"

namespace lasgrad {

enum class KernelPart { Gemm, Attention, Elementwise, Layout, Norm, Optimizer, Other, kCount };

// The part's name as the benchmarks print it: gemm, attention, elementwise, layout, norm, optimizer, other.
const char* kernel_part_name(KernelPart part);

class KernelProfile {
 public:
  KernelProfile();  // throws Error when another profile is alive
  ~KernelProfile();
  KernelProfile(const KernelProfile&) = delete;
  KernelProfile& operator=(const KernelProfile&) = delete;

  double seconds(KernelPart part) const { return seconds_[static_cast<size_t>(part)]; }
  double total() const;  // every part
  void reset() { seconds_.fill(0); }
  // Called by the wrapper: `s` seconds in a kernel of `part`.
  void add(KernelPart part, double s) { seconds_[static_cast<size_t>(part)] += s; }

 private:
  std::array<double, static_cast<size_t>(KernelPart::kCount)> seconds_{};
};

// The CPU backend, or its timing wrapper while a KernelProfile is alive (engine/backend.cpp asks).
Backend& profiled_cpu_backend();

}  // namespace lasgrad
