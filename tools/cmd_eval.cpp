// `lasgrad eval`: a checkpoint's loss and accuracy on one split of its task; on request, the accuracy
// broken down by label and (ListOps) by root operator, and each example's prediction in a file.
#include <cstdio>
#include <filesystem>

#include "data/baselines.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/trained_run.h"
#include "train/trainer.h"

namespace lasgrad::tools {

namespace {

// "  <name>: 63.20% of 1250" per group of examples, from each example's group (-1: none) and whether
// the prediction was right.
void print_breakdown(const char* title, const std::vector<std::string>& names, const std::vector<int>& group,
                     const std::vector<int32_t>& predictions, const data::Dataset& d) {
  std::vector<int64_t> n(names.size(), 0), right(names.size(), 0);
  for (size_t i = 0; i < predictions.size(); ++i) {
    if (predictions[i] < 0 || group[i] < 0) continue;
    ++n[static_cast<size_t>(group[i])];
    right[static_cast<size_t>(group[i])] += predictions[i] == d.label(static_cast<int64_t>(i));
  }
  std::printf("%s:\n", title);
  for (size_t k = 0; k < names.size(); ++k)
    if (n[k] > 0)
      std::printf("  %-4s %6.2f%% of %lld\n", names[k].c_str(), 100.0 * double(right[k]) / double(n[k]),
                  (long long)n[k]);
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  cli::Flags f("lasgrad eval", "Evaluate a checkpoint (its model and settings) on one split of its task.");
  f.option("checkpoint", "", "a checkpoint written by lasgrad train (required)")
      .option("split", "test", "train, val or test")
      .option("data", "", "data folder; empty = the one the run was trained on")
      .option("batches", "0", "evaluate on this many batches only; 0 = the whole split")
      .option("threads", "0", "CPU threads; 0 = the run's setting")
      .option("device", "", "cpu or cuda; empty = the run's setting")
      .toggle("breakdown", "also the accuracy per label and, for ListOps, per root operator")
      .option("predictions", "", "write each evaluated example's index, label and prediction to this new TSV file");
  if (!f.parse(argc, argv)) return 0;
  const std::string predictions_path = f.str("predictions");
  if (!predictions_path.empty() && std::filesystem::exists(predictions_path))
    throw cli::UsageError("--predictions " + predictions_path + " exists; give a new file (nothing was evaluated)");
  if (f.integer("batches") < 0)
    throw cli::UsageError("--batches must be >= 0 (0: the whole split), got " + f.str("batches"));
  TrainedRun run = open_trained_run(f.str("checkpoint"), f, f.integer("threads"));
  const train::RunSettings& c = run.checkpoint.settings;
  const bool keep = f.on("breakdown") || !predictions_path.empty();
  const data::Dataset& d = *run.data;
  train::EvalResult r = train::evaluate(*run.model, d, c.train.batch_size, f.integer("batches"), keep);
  std::printf("%s (step %lld): %s split of %s: accuracy %.2f%%, loss %.4f, %lld examples\n",
              f.str("checkpoint").c_str(), (long long)run.checkpoint.state.step, f.str("split").c_str(),
              c.data.task.c_str(), 100 * r.accuracy, r.loss, (long long)r.examples);
  if (f.on("breakdown")) {
    std::vector<std::string> labels;
    for (int k = 0; k < d.num_classes(); ++k) labels.push_back(std::to_string(k));
    std::vector<int> label_of(r.predictions.size()), root_of(r.predictions.size());
    for (size_t i = 0; i < r.predictions.size(); ++i) label_of[i] = d.label(static_cast<int64_t>(i));
    print_breakdown("accuracy by label", labels, label_of, r.predictions, d);
    if (d.info().name == "listops") {
      for (size_t i = 0; i < r.predictions.size(); ++i) root_of[i] = data::listops_root(d, static_cast<int64_t>(i));
      print_breakdown("accuracy by root operator", {data::kListOpsOperators.begin(), data::kListOpsOperators.end()},
                      root_of, r.predictions, d);
    }
  }
  if (!predictions_path.empty()) {
    train::write_predictions(predictions_path, d, r.predictions);
    std::printf("predictions: %s\n", predictions_path.c_str());
  }
  return 0;
}

}  // namespace lasgrad::tools
