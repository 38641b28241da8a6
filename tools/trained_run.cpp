#include "tools/trained_run.h"

#include <omp.h>

#include "train/trainer.h"

namespace lasgrad::tools {

TrainedRun open_trained_run(const std::string& checkpoint, const cli::Flags& f, int64_t threads) {
  if (checkpoint.empty()) throw cli::UsageError("--checkpoint FILE is required");
  data::Split split;
  try {
    split = data::parse_split(f.str("split"));
  } catch (const std::exception& e) {
    throw cli::UsageError(e.what());
  }
  TrainedRun run;
  run.checkpoint = train::load_checkpoint(checkpoint);
  train::RunSettings& c = run.checkpoint.settings;
  if (f.given("data")) c.data.data = f.str("data");
  if (f.given("device")) c.run.device = parse_device(f.choice("device", {"cpu", "cuda"}), "--device");
  train::run_device(c);  // a device that cannot be used here fails before the data is read
  if (threads < 0 || threads > train::kMaxThreads)
    throw cli::UsageError("--threads must be in 0.." + std::to_string(train::kMaxThreads) +
                          " (0: the run's setting), got " + std::to_string(threads));
  if (threads > 0) c.run.threads = threads;
  omp_set_num_threads(train::usable_threads(c.run.threads));
  run.data = train::open_split(c, split);
  run.model = train::build_model(c, run.data->info());
  train::load_model(run.checkpoint, run.model->module());
  return run;
}

}  // namespace lasgrad::tools
