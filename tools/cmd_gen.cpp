// `lasgrad gen listops|pathfinder ...`: the two generated LRA tasks, written in the release's formats
// so that `lasgrad data` and training read them through the same loaders as the real files.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "data/dataset.h"
#include "data/listops_gen.h"
#include "data/pathfinder_gen.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "train/settings.h"

namespace lasgrad::tools {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Generated data is never written over existing files unasked: refused before anything is written.
void refuse_existing(const std::vector<std::filesystem::path>& paths, bool overwrite) {
  if (overwrite) return;
  for (const auto& p : paths)
    if (std::filesystem::exists(p))
      throw cli::UsageError(p.string() + " already exists; give --overwrite to replace it, or another --out");
}

// --threads, checked: 0 (every core) to train::kMaxThreads; past the cores the generators use the cores.
int gen_threads(const cli::Flags& f) {
  const int64_t n = f.integer("threads");
  if (n < 0 || n > train::kMaxThreads)
    throw cli::UsageError("--threads must be in 0.." + std::to_string(train::kMaxThreads) + ", got " +
                          f.str("threads"));
  return static_cast<int>(n);
}

int gen_listops(int argc, char** argv) {
  cli::Flags f("lasgrad gen listops",
               "Generate ListOps with the LRA generator's rules: DIR/basic_{train,val,test}.tsv.");
  f.option("out", "data/listops-1000", "output folder")
      .option("seed", "0", "random seed")
      .option("train", "96000", "training expressions")
      .option("val", "2000", "validation expressions")
      .option("test", "2000", "test expressions")
      .option("min-length", "500", "keep trees longer than this (tokens without parentheses)")
      .option("max-length", "2000", "keep trees shorter than this")
      .option("threads", "0", "worker threads (0: all cores); the output does not depend on it")
      .toggle("overwrite", "replace existing files in the output folder")
      .toggle("quiet", "print nothing but errors");
  if (!f.parse(argc, argv)) return 0;
  const std::filesystem::path out(f.str("out"));
  refuse_existing({out / "basic_train.tsv", out / "basic_val.tsv", out / "basic_test.tsv"}, f.on("overwrite"));
  data::ListOpsGenOptions o;
  o.seed = static_cast<uint64_t>(f.integer("seed"));
  o.train = f.integer("train");
  o.val = f.integer("val");
  o.test = f.integer("test");
  o.min_length = f.integer("min-length");
  o.max_length = f.integer("max-length");
  o.threads = gen_threads(f);
  if (o.train < 0 || o.val < 0 || o.test < 0) throw cli::UsageError("--train, --val and --test must not be negative");
  const bool quiet = f.on("quiet");
  auto start = Clock::now();
  auto stats = data::generate_listops(f.str("out"), o, [&](int64_t kept, int64_t total) {
    if (!quiet) std::fprintf(stderr, "\r  %lld / %lld expressions", (long long)kept, (long long)total);
  });
  if (quiet) return 0;
  double secs = seconds_since(start);
  std::fprintf(stderr, "\n");
  std::printf("wrote %lld expressions (%lld / %lld / %lld) to %s in %.1f s (%.0f per second)\n", (long long)stats.kept,
              (long long)o.train, (long long)o.val, (long long)o.test, f.str("out").c_str(), secs,
              stats.kept / std::max(secs, 1e-9));
  std::printf("drawn %lld trees, %.1f%% in bounds, %lld duplicates dropped, mean length %.0f tokens\n",
              (long long)stats.drawn, 100.0 * (stats.kept + stats.duplicates) / std::max<int64_t>(stats.drawn, 1),
              (long long)stats.duplicates, double(stats.total_length) / std::max<int64_t>(stats.kept, 1));
  std::printf("labels:");
  for (int l = 0; l < 10; ++l) std::printf(" %d:%lld", l, (long long)stats.label_counts[l]);
  std::printf("\n");
  return 0;
}

int gen_pathfinder(int argc, char** argv) {
  cli::Flags f("lasgrad gen pathfinder",
               "Generate Pathfinder / Path-X images with the snake generator: "
               "OUT/pathfinder<size>/<difficulty>/{imgs/<b>/sample_<k>.png, metadata/<b>.npy}.");
  f.option("out", "data/lra_release", "output root (the release's layout is made under it)")
      .option("size", "32", "image side: 32, 64 or 128 (Path-X)")
      .option("difficulty", "curv_contour_length_14", "curv_baseline, curv_contour_length_9 or curv_contour_length_14")
      .option("count", "1000", "images to generate")
      .option("per-batch", "1000", "images per imgs/<b> folder and metadata file")
      .option("seed", "0", "random seed")
      .option("threads", "0", "worker threads (0: all cores); the output does not depend on it")
      .option("contact-sheet", "", "also write a PNG grid of the first images here (label bar: white = 1)")
      .option("sheet-count", "32", "images on the contact sheet")
      .toggle("overwrite", "replace existing images, metadata and contact sheet")
      .toggle("quiet", "print nothing but errors");
  if (!f.parse(argc, argv)) return 0;
  const int side = static_cast<int>(f.integer("size"));
  if (side != 32 && side != 64 && side != 128) throw cli::UsageError("--size must be 32, 64 or 128");
  data::PathfinderParams p = data::pathfinder_params(side, f.str("difficulty"));
  data::PathfinderGenOptions o;
  o.seed = static_cast<uint64_t>(f.integer("seed"));
  o.count = f.integer("count");
  o.per_batch = f.integer("per-batch");
  o.threads = gen_threads(f);
  if (o.count < 1 || o.per_batch < 1) throw cli::UsageError("--count and --per-batch must be positive");
  const bool quiet = f.on("quiet");
  const std::string dir =
      (std::filesystem::path(f.str("out")) / ("pathfinder" + std::to_string(side)) / p.difficulty).string();
  std::vector<std::filesystem::path> targets{std::filesystem::path(dir) / "metadata",
                                             std::filesystem::path(dir) / "imgs"};
  if (!f.str("contact-sheet").empty()) targets.emplace_back(f.str("contact-sheet"));
  refuse_existing(targets, f.on("overwrite"));
  auto start = Clock::now();
  auto labels = data::generate_pathfinder(dir, p, o, [&](int64_t done, int64_t total) {
    if (!quiet) std::fprintf(stderr, "\r  %lld / %lld images", (long long)done, (long long)total);
  });
  double secs = seconds_since(start);
  if (!f.str("contact-sheet").empty()) {
    const int n = static_cast<int>(std::min<int64_t>(f.integer("sheet-count"), o.count));
    std::vector<std::vector<uint8_t>> images;
    std::vector<int> label;
    for (int k = 0; k < n; ++k) {
      auto s = data::make_pathfinder_sample(p, o.seed, k);
      images.push_back(std::move(s.pixels));
      label.push_back(s.label);
    }
    const int scale = side == 32 ? 4 : side == 64 ? 2 : 1;
    data::write_contact_sheet(f.str("contact-sheet"), images, label, side, 8, scale);
  }
  if (quiet) return 0;
  std::fprintf(stderr, "\n");
  std::printf("wrote %lld images of %dx%d to %s in %.1f s (%.0f per second); labels 0:%lld 1:%lld\n",
              (long long)o.count, side, side, dir.c_str(), secs, o.count / std::max(secs, 1e-9), (long long)labels[0],
              (long long)labels[1]);
  if (!f.str("contact-sheet").empty()) std::printf("contact sheet: %s\n", f.str("contact-sheet").c_str());
  return 0;
}

}  // namespace

int cmd_gen(int argc, char** argv) {
  return cli::dispatch(
      "lasgrad gen",
      {{"listops", "ListOps TSVs with the LRA generator's rules", gen_listops},
       {"pathfinder", "Pathfinder / Path-X PNGs and metadata with the snake generator", gen_pathfinder}},
      argc, argv);
}

}  // namespace lasgrad::tools
