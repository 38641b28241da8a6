// `lasgrad eval`: a checkpoint's loss and accuracy on one split of its task.
#include <omp.h>

#include <cstdio>

#include "train/checkpoint.h"
#include "train/trainer.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace lasgrad::tools {

int cmd_eval(int argc, char** argv) {
  cli::Flags f("lasgrad eval", "Evaluate a checkpoint (its model and settings) on one split of its task.");
  f.option("checkpoint", "", "a checkpoint written by lasgrad train (required)")
      .option("split", "test", "train, val or test")
      .option("data", "", "data folder; empty = the one the run was trained on")
      .option("batches", "0", "evaluate on this many batches only; 0 = the whole split")
      .option("threads", "0", "CPU threads; 0 = the run's setting");
  if (!f.parse(argc, argv)) return 0;
  if (f.str("checkpoint").empty()) throw cli::UsageError("--checkpoint FILE is required");
  data::Split split;
  try {
    split = data::parse_split(f.str("split"));
  } catch (const std::exception& e) {
    throw cli::UsageError(e.what());
  }
  train::Checkpoint ck = train::load_checkpoint(f.str("checkpoint"));
  train::Config& c = ck.config;
  if (f.given("data")) c.set("data", f.str("data"));
  if (f.integer("threads") > 0) c.set("threads", f.str("threads"));
  auto ds = train::open_split(c, split);
  auto model = train::build_model(c, ds->info());
  train::load_model(ck, model->module());
  if (c.integer("threads") > 0) omp_set_num_threads(static_cast<int>(c.integer("threads")));
  train::EvalResult r = train::evaluate(*model, *ds, c.integer("batch_size"), f.integer("batches"));
  std::printf("%s (step %lld): %s split of %s: accuracy %.2f%%, loss %.4f, %lld examples\n", f.str("checkpoint").c_str(),
              (long long)ck.state.step, f.str("split").c_str(), c.str("task").c_str(), 100 * r.accuracy, r.loss,
              (long long)r.examples);
  return 0;
}

}  // namespace lasgrad::tools
