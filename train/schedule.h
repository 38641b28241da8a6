// Learning-rate schedules: constant, linear warm-up then cosine decay, reduce-on-plateau. Every kind
// takes an optional linear warm-up from 0 over the first `warmup` steps.
//
//   Schedule s({.kind = ScheduleKind::Cosine, .lr = 1e-3, .warmup = 100, .total = 5000});
//   double lr = s.lr(step);            // step counts optimizer steps from 0
//   s.on_eval(val_loss);               // plateau: may lower the rate; others ignore it
#pragma once
#include <cstdint>
#include <string>

#include "engine/names.h"

namespace lasgrad::train {

enum class ScheduleKind { Constant, Cosine, Plateau };
inline constexpr EnumName<ScheduleKind> kScheduleNames[] = {
    {ScheduleKind::Constant, "constant"}, {ScheduleKind::Cosine, "cosine"}, {ScheduleKind::Plateau, "plateau"}};

// The member initialisers are the run settings' defaults (train/settings.cpp binds kind, lr, warmup,
// min_lr, factor and patience to the keys schedule, lr, warmup, min_lr, plateau_factor and
// plateau_patience); the trainer sets total.
struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::Cosine;
  double lr = 1e-3;     // peak rate
  int64_t warmup = 0;   // linear warm-up steps
  int64_t total = 0;    // cosine: the step at which the rate reaches min_lr
  double min_lr = 0.0;  // cosine floor; plateau floor
  double factor = 0.5;  // plateau: rate *= factor after `patience` evaluations without improvement
  int64_t patience = 5;
  double threshold = 1e-4;  // plateau: improvement means metric < best * (1 - threshold)
};

class Schedule {
 public:
  explicit Schedule(ScheduleConfig config);  // throws Error on bad numbers
  double lr(int64_t step) const;
  // Reports a validation metric where lower is better (the loss). Returns true when the rate dropped.
  bool on_eval(double metric);

  // Plateau state, for checkpoints: the current multiplier, the best metric, evaluations without improvement.
  struct State {
    double scale = 1.0, best = 0.0;
    int64_t bad = 0;
    bool seen = false;
  };
  const State& state() const { return state_; }
  void set_state(const State& s) { state_ = s; }

 private:
  ScheduleConfig cfg_;
  State state_;
};

}  // namespace lasgrad::train
