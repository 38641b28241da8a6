// Training checkpoints as safetensors files (engine/safetensors.h), readable by any safetensors reader
// and by PyTorch:
//   model.<name>     every parameter and buffer of the model (BatchNorm statistics included)
//   adam.m.<name>, adam.v.<name>, adam.t   the optimizer state (absent in a weights-only file)
//   __metadata__     format, step, data position, RNG and schedule state, best validation result,
//                    the full resolved configuration as "config.<key>" strings, and "checksum.<tensor>":
//                    FNV-1a of each tensor's bytes (16 hex digits), verified on load.
// A checkpoint is never written with a NaN or Inf in it, and one that holds any is refused on load.
// Writes are atomic (save_safetensors renames a flushed temporary file), so a kill at any moment
// leaves the previous checkpoint loadable.
#pragma once
#include <cstdint>
#include <string>

#include "engine/safetensors.h"
#include "layers/module.h"
#include "train/settings.h"
#include "train/optim.h"
#include "train/schedule.h"

namespace lasgrad::train {

// Where a run stands: everything beyond the tensors that resuming needs to continue bit for bit.
struct TrainState {
  int64_t step = 0;   // optimizer steps done
  int64_t epoch = 0;  // current epoch of the batch iterator
  int64_t batch = 0;  // micro-batches already taken from that epoch
  uint64_t rng = 0;   // the model's dropout-seed stream (TaskModel::rng_state)
  Schedule::State schedule;
  double best_val = -1;  // best validation accuracy so far (-1: none yet)
  int64_t best_step = -1;
  // The running sums of the metrics line being accumulated (so logged values match too).
  double window_loss = 0;
  int64_t window_correct = 0, window_examples = 0, window_steps = 0;
  // What the run trained on (train::data_fingerprint); "" in checkpoints written before it was recorded.
  std::string data;
  // Where that data was, as an absolute path (a resume from another working folder finds it there); ""
  // in checkpoints written before it was recorded.
  std::string data_dir;
  // Data-parallel ranks that wrote it (train/group.h; 1 in checkpoints written before it was recorded).
  int64_t ranks = 1;
};

void save_checkpoint(const std::string& path, const Module& model, const Adam* optimizer, const RunSettings& settings,
                     const TrainState& state);

struct Checkpoint {
  SafeTensors file;
  RunSettings settings;
  TrainState state;
};
// Reads and checks a checkpoint: a truncated or corrupt file, or one that is not a lasgrad checkpoint,
// throws Error naming the path and the problem.
Checkpoint load_checkpoint(const std::string& path);

// Copies the checkpoint's model tensors into `model`; every parameter and buffer must be present with
// its shape, and the file must hold no model tensor the model lacks.
void load_model(const Checkpoint& ckpt, Module& model);

}  // namespace lasgrad::train
