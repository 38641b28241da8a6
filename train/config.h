// A run's settings: one flat, ordered table of named values (strings, parsed on use), each with a
// help line. Presets fill it, `--set key=value` overrides any entry, and the resolved table is what
// the run directory records (config.toml, which `lasgrad train --config` reads back) and every
// checkpoint carries in its __metadata__.
//
//   Config c = preset("listops", "las", "small");
//   c.set("lr", "5e-4");
//   validate(c);                              // inconsistent settings throw, naming the keys
//
// This table is the edge, and its entries are the one set of defaults. The code past it reads typed
// settings, each made from a Config in one function: ModelConfig (model_config, train/model.h; its
// own defaults are held equal to these by a test), data::Options (data_options) and TrainSettings
// (train_settings, train/trainer.h).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace lasgrad::train {

class Config {
 public:
  // Every known key with its built-in default (before any preset).
  Config();

  void set(const std::string& key, const std::string& value);  // throws Error on an unknown key
  void set_all(const std::map<std::string, std::string>& values);  // every known key must be present
  bool has(const std::string& key) const;

  const std::string& str(const std::string& key) const;
  int64_t integer(const std::string& key) const;  // throws Error naming the key unless a whole number
  double number(const std::string& key) const;    // throws unless a finite number
  bool flag(const std::string& key) const;        // "true"/"false"
  std::vector<std::string> list(const std::string& key) const;  // comma-separated; an empty item throws
  std::vector<double> numbers(const std::string& key) const;

  struct Entry {
    std::string key, value, help;
  };
  const std::vector<Entry>& entries() const { return entries_; }
  std::map<std::string, std::string> values() const;
  // The run record, config.toml: each setting with its help as a comment above it; whole numbers,
  // booleans and numbers in TOML's syntax are written as such (their text kept), the rest as strings.
  std::string toml() const;

 private:
  Entry& find(const std::string& key);
  const Entry& find(const std::string& key) const;
  std::vector<Entry> entries_;
};

// The most CPU threads any setting or flag accepts (threads, eval --threads, sweep --threads, gen
// --threads). Past the machine's cores a run uses the cores (usable_threads, train/trainer.h).
inline constexpr int64_t kMaxThreads = 1024;

// The attention kinds that `train` accepts (the tasks: data::tasks()).
const std::vector<std::string>& attention_kinds();

// The task's sequence length (per document for retrieval) when max_length is 0, from the registry.
int64_t task_length(const std::string& task);

// The settings for `task` with `attention` under preset `name`: "paper" (las-attention.md §4, the S4
// code base's defaults where the paper is silent) or "small" (trains in minutes on two cores).
Config preset(const std::string& task, const std::string& attention, const std::string& name);

// Parses "key=value" (from --set) into config; throws Error naming the flag text when malformed or unknown.
void apply_override(Config& config, const std::string& assignment);

// The settings of a TOML file (a run's config.toml, or one a user wrote), as strings: a number keeps the
// text it has in the file. Throws Error naming the file and line: a syntax error, a key that is not a
// setting, a table, an array or a date.
std::map<std::string, std::string> read_config_toml(const std::string& path);

// The settings a run folder records: its config.toml, or the "key = value    # help" lines of the
// config.txt that runs wrote before config.toml. Empty when the folder has neither.
std::map<std::string, std::string> read_run_settings(const std::string& dir);

// The settings of a config.toml (read_config_toml) over the preset that it names (task, attention,
// preset), validated: what `lasgrad train --config FILE` starts from.
Config config_from_toml(const std::string& path);

// Throws Error naming the keys when settings contradict each other (heads not dividing width, a chunk
// longer than the sequence, a bad choice value, ...).
void validate(const Config& config);

// The sequence length the model sees: max_length, or the task's length when it is 0.
int64_t sequence_length(const Config& config);

// The LaS smoothing weights of the settings (smoothing, pool, sigma); empty = the box of width pool.
// Throws Error naming the setting when malformed.
std::vector<double> smoothing_kernel(const Config& config);

// The device the settings train on; throws Error saying why when it cannot be used here (a build
// without CUDA, no GPU). On CUDA in a job of several ranks, it also selects the GPU of this rank's
// local rank (use_cuda_device), so call it before the first CUDA tensor.
Device run_device(const Config& config);

}  // namespace lasgrad::train
