// What the trainer trains: a Module (parameters, buffers, train/eval) and its forward from a host
// batch to class logits. build_model makes the las-attention.md §4 model of a configuration.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "data/dataset.h"
#include "layers/module.h"
#include "train/settings.h"

namespace lasgrad::train {

// The model of `settings` for a task: its classes, vocabulary and length from `info`.
ModelConfig model_config(const RunSettings& settings, const data::TaskInfo& info);

class TaskModel {
 public:
  virtual ~TaskModel() = default;
  virtual Module& module() = 0;
  // Logits [R, classes] of a batch, on the model's device.
  virtual Tensor logits(const data::Batch& batch) = 0;
  // The state of the model's dropout-seed stream, saved in checkpoints so a resumed run draws the
  // same masks.
  virtual uint64_t rng_state() const = 0;
  virtual void set_rng_state(uint64_t s) = 0;
  // Row 0 of `batch` (its first document) through the model in eval mode, recording every layer's
  // attention: one [H, T, T] float tensor per layer (the smoothed weights that multiply V).
  virtual std::vector<Tensor> attention_maps(const data::Batch& batch) = 0;
  // Each layer's per-head decay rates alpha.
  virtual std::vector<std::vector<double>> alphas() const = 0;
};

// The model of `settings` for the task described by `info`, weights drawn from the settings' seed (on the
// CPU, so every device starts from the same numbers), then moved to the setting `device`; throws Error
// when that device cannot be used here.
std::unique_ptr<TaskModel> build_model(const RunSettings& settings, const data::TaskInfo& info);

}  // namespace lasgrad::train
