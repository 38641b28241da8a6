// `lasgrad eval`: a checkpoint's loss and accuracy on one split of its task.
#include <cstdio>

#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/trained_run.h"
#include "train/trainer.h"

namespace lasgrad::tools {

int cmd_eval(int argc, char** argv) {
  cli::Flags f("lasgrad eval", "Evaluate a checkpoint (its model and settings) on one split of its task.");
  f.option("checkpoint", "", "a checkpoint written by lasgrad train (required)")
      .option("split", "test", "train, val or test")
      .option("data", "", "data folder; empty = the one the run was trained on")
      .option("batches", "0", "evaluate on this many batches only; 0 = the whole split")
      .option("threads", "0", "CPU threads; 0 = the run's setting")
      .option("device", "", "cpu or cuda; empty = the run's setting");
  if (!f.parse(argc, argv)) return 0;
  TrainedRun run = open_trained_run(f.str("checkpoint"), f, f.integer("threads"));
  const train::Config& c = run.checkpoint.config;
  if (f.integer("batches") < 0) throw cli::UsageError("--batches must be >= 0 (0: the whole split), got " + f.str("batches"));
  train::EvalResult r = train::evaluate(*run.model, *run.data, train::train_settings(c).batch_size, f.integer("batches"));
  std::printf("%s (step %lld): %s split of %s: accuracy %.2f%%, loss %.4f, %lld examples\n", f.str("checkpoint").c_str(),
              (long long)run.checkpoint.state.step, f.str("split").c_str(), c.str("task").c_str(), 100 * r.accuracy, r.loss,
              (long long)r.examples);
  return 0;
}

}  // namespace lasgrad::tools
