// The training loop: AdamW steps over seeded batches with gradient accumulation and clipping,
// evaluation on the validation split every N steps, checkpoints, metrics, and at the end the
// best-validation checkpoint evaluated on the test split.
//
// A run directory holds:
//   config.toml       the resolved settings (settings_toml; `lasgrad train --config` starts from it)
//   metrics.jsonl     one JSON object per line: {"split": "train"|"val"|"test", "step", "loss", "accuracy", ...}
//   last.safetensors  the latest checkpoint (written at every evaluation and on interruption)
//   best.safetensors  the checkpoint with the best validation accuracy
// Same configuration, seed and thread count => the same losses bit for bit, also across a resume.
// fit removes checkpoint temporaries that a kill during a write left behind (*.safetensors.tmp.<pid>).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "train/settings.h"
#include "train/task_model.h"
#include "train/optim.h"

namespace lasgrad::train {

// The CPU threads a `threads` setting gives on this machine: the setting, or every core for 0 or a
// setting above the cores (past them threads only wait for each other; any count gives the same bits).
// The first time it caps a setting it says so on stderr.
int usable_threads(int64_t threads);

// How open_task should read the task of `settings` (length, pixel scaling, splits, permutation).
data::Options data_options(const RunSettings& settings);

// One split of the settings' task from its `data` folder; throws naming the folder when it is
// unset or missing (and data::DataError for bad contents).
std::unique_ptr<data::Dataset> open_split(const RunSettings& settings, data::Split split);

// What run directory `dir` holds of an earlier run: nothing, the start of one (settings or a log, no
// checkpoint), a partial run (last.safetensors, no test result) or a finished one, and that in words
// ("a partial run (...)"; "" for nothing).
struct HeldRun {
  enum Kind { None, Start, Partial, Finished } kind = None;
  std::string what;
};
HeldRun run_in(const std::string& dir);
// Removes the files fit writes in `dir` (config.toml, metrics.jsonl, the checkpoints, test_predictions.tsv;
// config.txt of runs written before config.toml), nothing else.
void clear_run(const std::string& dir);

struct Splits {
  const data::Dataset* train = nullptr;
  const data::Dataset* val = nullptr;
  const data::Dataset* test = nullptr;
};

// A fingerprint of the data a run sees: per split its size, and a hash of its labels in order
// ("train 2000 #a1b2..., val ..."). A checkpoint records it; a resume on other data is refused.
std::string data_fingerprint(const Splits& data);

struct TrainOptions {
  std::string run_dir{};      // must exist
  std::string resume{};       // checkpoint to continue from; "" starts fresh
  bool progress_bar = false;  // redraw one status line (a terminal) instead of printing periodic lines
  bool quiet = false;         // print nothing
  // A resume over a metrics.jsonl that lacks lines up to the checkpoint's step (cut, deleted, garbled) is
  // refused; allowed, the readable lines are kept and a "gap" line records the missing steps.
  bool allow_gaps = false;
  // Asked after every step; true interrupts the run: last.safetensors is written and train returns.
  std::function<bool(int64_t step)> stop{};
};

struct EvalResult {
  double loss = 0, accuracy = 0;
  int64_t examples = 0;
  std::vector<int32_t> predictions;  // with keep_predictions: example i's predicted class, for each evaluated i
};

struct TrainResult {
  int64_t steps = 0;  // optimizer steps done in total
  bool interrupted = false;
  std::vector<double> losses;  // training loss of each step this call ran (mean over micro-batches)
  double best_val = -1;        // best validation accuracy, at best_step
  int64_t best_step = -1;
  EvalResult test;  // the best-validation checkpoint on the test split (not when interrupted)
};

// Trains `model` (built from `settings`, or from the resumed checkpoint's settings) on `data`.
// Throws Error naming the step on a NaN or Inf loss or gradient; the last checkpoint is left as it was.
TrainResult fit(TaskModel& model, const RunSettings& settings, const Splits& data, const TrainOptions& options);

// Loss and accuracy on up to max_batches batches (0: all) of `data`, in file order, in eval mode; with
// keep_predictions, also each evaluated example's predicted class (on every data-parallel rank).
EvalResult evaluate(TaskModel& model, const data::Dataset& data, int64_t batch_size, int64_t max_batches = 0,
                    bool keep_predictions = false);

// Writes `path` atomically: "index<TAB>label<TAB>prediction" per example of `data` that has a prediction,
// after a header line. Throws Error naming the path when it cannot be written.
void write_predictions(const std::string& path, const data::Dataset& data, const std::vector<int32_t>& predictions);

}  // namespace lasgrad::train
