// A run's settings, typed: RunSettings, plain structs whose member initialisers are the only defaults
// (before a preset). One table of bindings (settings.cpp, setting_rows) gives each setting its key, its
// help, the member it sets and a parser with its range; `--set key=value`, `lasgrad train --help`,
// config.toml, the checkpoint's metadata and the sweep's variants all go through it.
//
//   RunSettings s = preset("listops", "las", "small");
//   set_setting(s, "lr", "5e-4");             // a bad value or range throws, naming the key
//   validate(s);                              // settings that contradict each other throw, naming the keys
//
// Adding a setting: its member (with its default), its row in setting_rows, and its use.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "engine/tensor.h"
#include "models/model.h"
#include "train/optim.h"
#include "train/schedule.h"

namespace lasgrad::train {

// The most CPU threads any setting or flag accepts (threads, eval --threads, sweep --threads, gen
// --threads). Past the machine's cores a run uses the cores (usable_threads, train/trainer.h).
inline constexpr int64_t kMaxThreads = 1024;

// What to train on; read by open_task through data_options (train/trainer.h).
struct DataSettings {
  std::string task = "listops";
  std::string data;              // the task's folder, or the LRA release root
  std::string preset = "small";  // the preset the run started from, for the record
  int64_t max_length = 0;        // per document; 0 = the task's length
  data::Pixels pixel_scale = data::Options{}.pixel_scale;
  std::string difficulty = data::Options{}.difficulty;
  std::string permutation = data::Options{}.permutation;
  int64_t split_seed = 0;  // held-out validation splits, a random psmnist permutation
};

// The optimisation and the loop.
struct TrainSettings {
  AdamConfig adam;  // optimizer (adamw = decoupled), beta1, beta2, eps, weight_decay
  std::vector<std::string> no_decay = {"bias", "norm", "embed"};  // names containing one get no weight decay
  double clip = 0.0;                                              // global gradient-norm clip; 0 = off
  ScheduleConfig schedule;   // schedule, lr, warmup, min_lr, plateau_factor, plateau_patience
  int64_t batch_size = 32;   // examples per micro-batch (per rank)
  int64_t accum = 1;         // micro-batches per optimizer step
  int64_t epochs = 1;        // used when steps = 0
  int64_t steps = 0;         // 0 = epochs x steps per epoch
  int64_t eval_every = 0;    // 0 = once per epoch
  int64_t eval_batches = 0;  // 0 = the whole split
  int64_t log_every = 10;
  int64_t seed = 1;  // the weights, the batch order and dropout
};

// Where it runs.
struct DeviceSettings {
  Device device = Device::CPU;
  int64_t threads = 2;  // CPU threads at most; 0 = every core (usable_threads)
};

struct RunSettings {
  DataSettings data;
  ModelSettings model;
  TrainSettings train;
  DeviceSettings run;
};

// One setting: its key (the name in --set, config.toml and checkpoints), its help, and how it is read
// from and written to text. `set` parses strictly and checks the range, throwing Error naming the key.
struct SettingRow {
  std::string key, help;
  std::function<void(RunSettings&, const std::string&)> set;
  std::function<std::string(const RunSettings&)> get;
};

// Every setting, in the order config.toml and --help list them.
const std::vector<SettingRow>& setting_rows();
// The row of `key`; throws Error for an unknown key.
const SettingRow& setting_row(const std::string& key);
bool is_setting(const std::string& key);

void set_setting(RunSettings& s, const std::string& key, const std::string& value);
std::string get_setting(const RunSettings& s, const std::string& key);
// Every setting as text, by key (the checkpoint's metadata, the sweep's comparisons).
std::map<std::string, std::string> setting_values(const RunSettings& s);
// The settings of `values`, which must hold every key; throws naming a missing or bad one.
RunSettings settings_from_values(const std::map<std::string, std::string>& values);
// The run record, config.toml: each setting with its help as a comment above it; whole numbers, booleans
// and numbers are written in TOML's syntax, the rest as strings.
std::string settings_toml(const RunSettings& s);

// The settings for `task` with `attention` under preset `name`: "paper" (las-attention.md §4, the S4
// code base's defaults where the paper is silent) or "small" (trains in minutes on two cores).
RunSettings preset(const std::string& task, const std::string& attention, const std::string& name);

// Parses "key=value" (from --set) into s; throws Error naming the flag text when malformed, unknown or
// out of range.
void apply_override(RunSettings& s, const std::string& assignment);

// The settings of a TOML file (a run's config.toml, or one a user wrote), as strings: a number keeps the
// text it has in the file. Throws Error naming the file and line: a syntax error, a key that is not a
// setting, a table, an array or a date.
std::map<std::string, std::string> read_config_toml(const std::string& path);

// The settings a run folder records: its config.toml, or the "key = value    # help" lines of the
// config.txt that runs wrote before config.toml. Empty when the folder has neither.
std::map<std::string, std::string> read_run_settings(const std::string& dir);

// The settings of a config.toml (read_config_toml) over the preset that it names (task, attention,
// preset), validated: what `lasgrad train --config FILE` starts from. Errors name the file.
RunSettings settings_from_toml(const std::string& path);

// Throws Error naming the keys when settings contradict each other (heads not dividing width, a chunk
// longer than the sequence, ...). Each value's own range is checked when it is set.
void validate(const RunSettings& s);

// The task's sequence length (per document for retrieval) when max_length is 0, from the registry.
int64_t task_length(const std::string& task);
// The sequence length the model sees: max_length, or the task's length when it is 0.
int64_t sequence_length(const RunSettings& s);

// The device the settings train on; throws Error saying why when it cannot be used here (a build
// without CUDA, no GPU). On CUDA in a job of several ranks, it also selects the GPU of this rank's
// local rank (use_cuda_device), so call it before the first CUDA tensor.
Device run_device(const RunSettings& s);

}  // namespace lasgrad::train
