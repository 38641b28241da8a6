// `lasgrad sweep`: a grid of training runs (variants x grid values x seeds) and its summary.
//
// A variant is a named list of settings applied over the preset: the built-ins below, or a user's own
// "name:key=value,key=value". The grid adds optional lists of any setting (`pool=3,5,7`); each point of
// variants x grid x seeds is one run in its own folder, SWEEP/<group>/seed<N>, where the group is the
// variant and the grid point ("las", "las_pool=3"). The summary averages each group over its seeds.
//
//   SweepSpec s;
//   s.task = "listops"; s.data = "data/listops"; s.variants = {variant("softmax"), variant("las")};
//   s.seeds = {1, 2, 3};
//   for (const RunPlan& r : expand(s)) ...   // configs resolved and validated, folders named
#pragma once
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "train/settings.h"
#include "tools/study/stats.h"

namespace lasgrad::study {

using Settings = std::vector<std::pair<std::string, std::string>>;

struct Variant {
  std::string name;
  Settings settings;  // applied in order over the preset, after the sweep's --set values
};

// The built-in variants' names: softmax, las, las-chunk, local-only, smooth-only, las-gaussian.
const std::vector<std::string>& builtin_variants();

// A built-in variant by name, or "name:key=value,key=value" (a value may itself hold commas, as in
// alphas=0,0.1: a piece without '=' continues the previous value). Throws Error naming the text.
Variant variant(const std::string& text);

struct GridAxis {
  std::string key;
  std::vector<std::string> values;
};
// "key=v1,v2,v3"; throws Error naming the text.
GridAxis grid_axis(const std::string& text);

struct SweepSpec {
  std::string task, data, preset = "small";
  std::vector<Variant> variants;
  std::vector<int64_t> seeds{1};
  Settings sets;               // every run
  std::vector<GridAxis> grid;  // crossed with the variants
};

struct RunPlan {
  std::string group;  // variant, then "_key=value" per grid axis
  int64_t seed = 0;
  std::string dir;    // "<group>/seed<N>", relative to the sweep folder
  Settings settings;  // what the run sets over its preset: data, the sweep's sets, the variant, the grid point, seed
  train::RunSettings resolved;  // the resolved, validated settings
};

// Every run of the spec in order: groups (variants, then grid points) outer, seeds inner. Throws Error
// naming the run when a combination is invalid (before anything runs), or when two runs share a folder.
std::vector<RunPlan> expand(const SweepSpec& spec);

// What a run folder holds.
enum class RunState { New, Partial, Done };
struct RunRecord {
  std::string group, dir;
  int64_t seed = 0;
  RunState state = RunState::New;
  std::string error;                                   // why the run's last attempt failed; empty if it did not
  int64_t steps = 0;                                   // the last step in its metrics
  double best_val = NAN, test = NAN, test_loss = NAN;  // accuracies in [0, 1]
  int64_t best_step = -1;
  double wall_s = 0;                            // seconds the sweep spent running it, over all its invocations
  double examples_per_s = NAN;                  // mean over the metrics' training lines
  std::vector<std::pair<int64_t, double>> val;  // (step, validation accuracy)
  std::vector<bool> test_right;  // per test example, from test_predictions.tsv; empty where the run kept none
};

// The record of the run folder `run_dir` (state from metrics.jsonl and last.safetensors; the error
// from error.txt; the wall time from wall_s.txt, both written by the sweep; the test predictions from
// test_predictions.tsv, written by the trainer).
RunRecord read_run(const std::string& run_dir, const RunPlan& plan);

struct GroupSummary {
  std::string group;
  int64_t done = 0, failed = 0, runs = 0;
  Interval val, test;  // best validation and test accuracy over the finished seeds
  // Against the reference group (for every other group, when the sweep has one), seed by seed:
  Interval diff;                   // test accuracy minus the reference's, over the seeds both finished
  std::optional<McNemar> mcnemar;  // over those seeds' test predictions pooled, where both runs kept them
};
// Per group, in the order of `runs`; `reference` names the group the others are paired with ("": none,
// or a name no group has).
std::vector<GroupSummary> summarize(const std::vector<RunRecord>& runs, const std::string& reference = "");

// "better", "worse" or "cannot tell": whether the interval of a difference excludes zero.
const char* verdict(const Interval& diff);

// A trivial baseline's test accuracy (data/baselines.h), in [0, 1].
struct Baseline {
  std::string name;
  double accuracy;
};
// The baselines of the task and data of `settings`, fitted on its training split and scored on its test
// split: the majority class and, for ListOps, the root-operator rule. Throws what opening the data throws.
std::vector<Baseline> test_baselines(const train::RunSettings& settings);

// summary.md, summary.json, summary.png and summary.svg in `sweep_dir`, each written whole and renamed into place.
// `command` is the command line that reproduces the sweep; `spec_text` the spec file's text, if any;
// `reference` the group the others are compared with; `baselines` are tabled and drawn beside the runs.
void write_summary(const std::string& sweep_dir, const std::vector<RunRecord>& runs, const std::string& command,
                   const std::string& spec_text, const std::string& reference = "",
                   const std::vector<Baseline>& baselines = {});

}  // namespace lasgrad::study
