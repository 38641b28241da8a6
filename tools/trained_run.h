// What `lasgrad eval` and `lasgrad attn` start from: a checkpoint's model, rebuilt from its settings
// with its weights, and one split of its task's data.
#pragma once
#include <memory>

#include "data/dataset.h"
#include "tools/cli.h"
#include "train/checkpoint.h"
#include "train/task_model.h"

namespace lasgrad::tools {

struct TrainedRun {
  train::Checkpoint checkpoint;
  std::unique_ptr<data::Dataset> data;
  std::unique_ptr<train::TaskModel> model;
};

// The checkpoint file `checkpoint` (empty: a usage error asking for --checkpoint) with the flags --split,
// --data (empty: the run's own folder) and --device (empty: the run's device); `threads` > 0 replaces
// the run's thread count. Sets the OpenMP thread count from the resulting settings.
TrainedRun open_trained_run(const std::string& checkpoint, const cli::Flags& f, int64_t threads = 0);

}  // namespace lasgrad::tools
