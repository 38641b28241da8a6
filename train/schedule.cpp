#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "engine/tensor.h"

namespace lasgrad::train {

Schedule::Schedule(ScheduleConfig config) : cfg_(std::move(config)) {
  if (!(cfg_.lr > 0)) throw Error("schedule: lr must be > 0");
  if (cfg_.warmup < 0 || cfg_.min_lr < 0 || cfg_.min_lr > cfg_.lr)
    throw Error("schedule: need warmup >= 0, 0 <= min_lr <= lr");
  if (cfg_.kind == ScheduleKind::Cosine && cfg_.total <= cfg_.warmup)
    throw Error("schedule: cosine needs total steps (" + std::to_string(cfg_.total) + ") > warmup (" +
                std::to_string(cfg_.warmup) + ")");
  if (cfg_.kind == ScheduleKind::Plateau && !(cfg_.factor > 0 && cfg_.factor < 1))
    throw Error("schedule: plateau factor must be in (0, 1)");
}

double Schedule::lr(int64_t step) const {
  // Warm-up: step 0 gets lr / warmup, not 0, so the first update does something (as S4's warm-up).
  if (step < cfg_.warmup) return cfg_.lr * double(step + 1) / double(cfg_.warmup);
  if (cfg_.kind == ScheduleKind::Cosine) {
    double t = std::min(1.0, double(step - cfg_.warmup) / double(cfg_.total - cfg_.warmup));
    return cfg_.min_lr + (cfg_.lr - cfg_.min_lr) * 0.5 * (1 + std::cos(M_PI * t));
  }
  if (cfg_.kind == ScheduleKind::Plateau) return std::max(cfg_.min_lr, cfg_.lr * state_.scale);
  return cfg_.lr;
}

bool Schedule::on_eval(double metric) {
  if (cfg_.kind != ScheduleKind::Plateau) return false;
  // torch.optim.lr_scheduler.ReduceLROnPlateau, mode "min", threshold_mode "rel", no cooldown.
  if (!state_.seen || metric < state_.best * (1 - cfg_.threshold)) {
    state_.best = metric;
    state_.bad = 0;
    state_.seen = true;
    return false;
  }
  if (++state_.bad <= cfg_.patience) return false;
  state_.bad = 0;
  double before = lr(cfg_.warmup);
  state_.scale *= cfg_.factor;
  return lr(cfg_.warmup) < before;
}

}  // namespace lasgrad::train
