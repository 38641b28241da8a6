// Random numbers. Two kinds, for two needs:
// - counter_uniform(seed, i): a pure function of (seed, i), for kernels (dropout masks) whose result
//   must not depend on the thread count or the device; compiles for the host and for CUDA.
// - Rng: a sequential generator (splitmix64: one 64-bit state, so checkpoints store it whole) for
//   host-side work: weight initialisation, shuffling, data generation. The same bits on every platform.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define LASGRAD_HD __host__ __device__
#else
#define LASGRAD_HD
#endif

namespace lasgrad {

// splitmix64's finaliser: a bijective 64-bit mix with good avalanche (Steele et al., 2014).
LASGRAD_HD inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// An independent seed for stream `index` of `seed` (e.g. one generator per example or per epoch).
LASGRAD_HD inline uint64_t derive_seed(uint64_t seed, uint64_t index) {
  return mix64(mix64(seed + 0x9e3779b97f4a7c15ULL) ^ mix64(index + 0x632be59bd9b4e019ULL));
}

// A uniform double in [0, 1) from the top 53 bits of mix64(seed, i).
LASGRAD_HD inline double counter_uniform(uint64_t seed, uint64_t i) {
  uint64_t z = mix64(mix64(seed + 0x9e3779b97f4a7c15ULL) ^ (i * 0x9e3779b97f4a7c15ULL));
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    return mix64(state_);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform in [0, n), n > 0, without modulo bias (Lemire's multiply-and-reject).
  uint64_t below(uint64_t n) {
    for (;;) {
      unsigned __int128 m = static_cast<unsigned __int128>(next()) * n;
      uint64_t low = static_cast<uint64_t>(m);
      if (low >= n || low >= (0 - n) % n) return static_cast<uint64_t>(m >> 64);
    }
  }
  int64_t range(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo + 1)));
  }                  // [lo, hi]
  double normal() {  // Box-Muller; one draw per call keeps the stream simple to reproduce
    double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  uint64_t state() const { return state_; }
  void set_state(uint64_t s) { state_ = s; }

 private:
  uint64_t state_;
};

}  // namespace lasgrad
