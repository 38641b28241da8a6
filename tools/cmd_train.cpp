// `lasgrad train`: a configuration from a preset and --set overrides, the three splits of the task,
// the §4 model, and the trainer (train/trainer.h) writing its run directory. Ctrl-C checkpoints and stops.
#include <unistd.h>

#include <csignal>
#include <optional>
#include <cstdio>
#include <filesystem>

#include "train/checkpoint.h"
#include "train/trainer.h"
#include "data/dataset.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/dir_lock.h"
#include "train/group.h"

namespace lasgrad::tools {

namespace fs = std::filesystem;

static volatile std::sig_atomic_t g_interrupted = 0;

static std::string settings_help() {
  std::string s = "\n\nsettings for --set key=value (built-in defaults; the presets change many):\n";
  const train::RunSettings defaults;
  for (const auto& row : train::setting_rows()) {
    const std::string value = row.get(defaults);
    std::string left = "  " + row.key + " = " + (value.empty() ? "\"\"" : value);
    s += left + std::string(left.size() < 34 ? 34 - left.size() : 1, ' ') + row.help + "\n";
  }
  return s;
}

// --overwrite: the old run's files, and what report and attn wrote for it where tools/run.sh puts them
// (RUN/report.html, the figures in RUN/attn); the user's own files stay.
static void clear_old_run(const std::string& run_dir) {
  train::clear_run(run_dir);
  const fs::path report = fs::path(run_dir) / "report.html", attn = fs::path(run_dir) / "attn";
  if (is_report(report.string())) fs::remove(report);
  if (!fs::is_directory(attn)) return;
  for (const auto& e : fs::directory_iterator(attn))
    if (e.is_regular_file() && is_attn_file(e.path().filename().string())) fs::remove(e.path());
  if (fs::is_empty(attn)) fs::remove(attn);
}

namespace {

cli::Flags train_flags() {
  cli::Flags f("lasgrad train",
               "Train a transformer with softmax, LaS or LaS-Chunk attention on one task. The run directory gets\n"
               "config.toml (the resolved settings), metrics.jsonl, last.safetensors and best.safetensors; the\n"
               "best-validation checkpoint is evaluated on the test split at the end. Ctrl-C writes\n"
               "last.safetensors and stops; --resume continues from it bit for bit." +
                   settings_help());
  f.option("task", "listops", data::task_list())
      .option("attention", "las", "softmax, las or las-chunk")
      .option("data", "",
              "the task's data folder, or the LRA release root (required unless resuming; with --resume: where the "
              "run's data is now)")
      .option("preset", "small", "paper (las-attention.md section 4) or small (minutes on two cores)")
      .repeated("set", "override one setting, key=value (the settings listed above)")
      .option("out", "", "run directory; empty = runs/<task>-<attention>-<preset>")
      .option("config", "",
              "start from the settings of this TOML file (a run's config.toml, edited or not); --set still applies")
      .option("resume", "", "continue from this checkpoint, in its run directory with its settings (no --set)")
      .toggle("allow-gaps", "with --resume: go on over a damaged metrics.jsonl, recording the missing steps as a gap")
      .toggle("overwrite", "replace the run already in --out (without it, a folder holding a run is refused)")
      .option("progress", "auto", "auto (a bar on a terminal, periodic lines otherwise), bar or lines")
      .option("device", "",
              "cpu or cuda (a build with CUDA and a GPU); empty = the setting (cpu), or the run's when resuming");
  return f;
}

// The settings a resume continues with: the checkpoint's, its data where it is now. A moved data folder:
// the checkpoint's fingerprint of the data is checked against it when training resumes. A relative one
// given in another working folder is found where the run last saw it.
train::RunSettings resumed_settings(const cli::Flags& f, const std::string& resume) {
  for (const char* flag : {"task", "attention", "preset", "set"})
    if (f.given(flag))
      throw cli::UsageError("--" + std::string(flag) +
                            " cannot be combined with --resume (the checkpoint holds the settings)");
  const train::Checkpoint ck = train::load_checkpoint(resume);
  train::RunSettings c = ck.settings;
  const std::string& then = ck.state.data_dir;
  std::string& data = c.data.data;
  if (f.given("data")) {
    data = f.str("data");
  } else if (!fs::is_directory(data) && !then.empty() && fs::is_directory(then)) {
    std::printf("data: %s is not a folder here; using %s, where the run last read it\n", data.c_str(), then.c_str());
    data = then;
  } else if (!fs::is_directory(data)) {
    throw Error("resume: the run's data folder " + data + (then.empty() ? "" : " (" + then + ")") +
                " is not here; give --data DIR where its data is now");
  }
  return c;
}

// The settings a new run starts from: a preset or a config.toml, then --data and --set.
train::RunSettings new_settings(const cli::Flags& f) {
  train::RunSettings c;
  if (f.given("config")) {
    for (const char* flag : {"task", "attention", "preset"})
      if (f.given(flag))
        throw cli::UsageError("--" + std::string(flag) + " cannot be combined with --config (the file names it)");
    c = train::settings_from_toml(f.str("config"));
  } else {
    try {
      c = train::preset(f.str("task"), f.str("attention"), f.str("preset"));
    } catch (const Error& e) {
      throw cli::UsageError(e.what());
    }
  }
  if (f.given("data")) c.data.data = f.str("data");
  for (const auto& kv : f.all("set")) {
    try {
      train::apply_override(c, kv);
    } catch (const Error& e) {
      throw cli::UsageError(e.what());
    }
  }
  train::validate(c);
  return c;
}

// The run directory of a new run: an earlier run there is kept unless --overwrite. A resume into another
// folder takes the run's log, settings and best checkpoint along, so that the curves continue and the
// test at the end finds best.safetensors. Rank 0 only.
void prepare_run_dir(const std::string& run_dir, const std::string& resume, bool overwrite) {
  if (resume.empty()) {
    const train::HeldRun held = train::run_in(run_dir);
    const std::string last = (fs::path(run_dir) / "last.safetensors").string();
    // --resume is suggested only where it can continue something: a checkpoint of an unfinished run.
    if (held.kind != train::HeldRun::None && !overwrite)
      throw Error("run directory " + run_dir + " already holds " + held.what + "; " +
                  (held.kind == train::HeldRun::Partial ? "continue it with --resume " + last + ", " : "") +
                  "replace it with --overwrite, or give another --out");
    if (held.kind != train::HeldRun::None) clear_old_run(run_dir);
    return;
  }
  const fs::path from = fs::path(resume).parent_path();
  if (train::run_in(run_dir).kind != train::HeldRun::None ||
      fs::equivalent(fs::absolute(from.empty() ? "." : from), fs::absolute(run_dir)))
    return;
  for (const char* name : {"config.toml", "metrics.jsonl", "best.safetensors"})
    if (fs::exists(from / name)) {
      fs::copy_file(from / name, fs::path(run_dir) / name);
      std::printf("resume: copied %s into %s\n", (from / name).string().c_str(), run_dir.c_str());
    }
}

// Schedulers and `timeout` send SIGTERM: it checkpoints and stops like Ctrl-C. Over several ranks
// without SA_RESTART: Ctrl-C on mpirun stops its reading of the ranks' output, then sends them SIGTERM
// and, a second later, SIGKILL; a rank blocked writing a progress line must return from that write to
// checkpoint. One process restarts interrupted calls, so no read or write fails on a signal.
void catch_stop_signals(bool several_ranks) {
  struct sigaction stop_action {};
  stop_action.sa_handler = [](int) { g_interrupted = 1; };
  stop_action.sa_flags = several_ranks ? 0 : SA_RESTART;
  sigemptyset(&stop_action.sa_mask);
  for (int sig : {SIGINT, SIGTERM}) sigaction(sig, &stop_action, nullptr);
}

// The result, beside chance and the majority class (the most frequent test label's share).
void print_result(const train::TrainResult& r, const data::Dataset& test, const std::string& run_dir) {
  std::vector<int64_t> count(static_cast<size_t>(test.num_classes()), 0);
  for (int64_t i = 0; i < test.size(); ++i) ++count[test.label(i)];
  double majority = double(*std::max_element(count.begin(), count.end())) / double(test.size());
  std::printf("\nbest validation accuracy %.2f%% at step %lld\n", 100 * r.best_val, (long long)r.best_step);
  std::printf(
      "test accuracy %.2f%% (loss %.4f, %lld examples) of %s/best.safetensors; chance %.1f%%, majority class %.1f%%\n",
      100 * r.test.accuracy, r.test.loss, (long long)r.test.examples, run_dir.c_str(), 100.0 / test.num_classes(),
      100 * majority);
}

}  // namespace

int cmd_train(int argc, char** argv) {
  cli::Flags f = train_flags();
  if (!f.parse(argc, argv)) return 0;
  std::string run_dir = f.str("out"), resume = f.str("resume");
  if (f.given("resume") && resume.empty()) throw cli::UsageError("--resume needs a checkpoint file, got ''");
  if (f.given("resume") && f.given("config"))
    throw cli::UsageError("--config cannot be combined with --resume (the checkpoint holds the settings)");
  train::RunSettings c = resume.empty() ? new_settings(f) : resumed_settings(f, resume);
  if (run_dir.empty())
    run_dir = resume.empty()
                  ? "runs/" + c.data.task + "-" + name_of(kAttentionKinds, c.model.attention.kind) + "-" + c.data.preset
                  : fs::path(resume).parent_path().string();
  const std::string& mode = f.choice("progress", {"auto", "bar", "lines"});
  if (f.given("device")) c.run.device = parse_device(f.choice("device", {"cpu", "cuda"}), "--device");
  train::run_device(c);  // a device that cannot be used here fails before the data is read
  if (f.on("overwrite") && !resume.empty()) throw cli::UsageError("--overwrite cannot be combined with --resume");
  if (f.on("allow-gaps") && resume.empty()) throw cli::UsageError("--allow-gaps goes with --resume");
  // The run directory belongs to this process (rank 0 of a data-parallel job, which alone writes it)
  // until it exits.
  train::Group& group = train::Group::world();
  std::optional<DirLock> lock;
  if (group.root()) lock.emplace(run_dir, "lock", "run directory " + run_dir);
  if (group.root()) prepare_run_dir(run_dir, resume, f.on("overwrite"));

  auto tr = train::open_split(c, data::Split::Train), va = train::open_split(c, data::Split::Val),
       te = train::open_split(c, data::Split::Test);
  if (group.root()) {
    for (const auto* d : {tr.get(), va.get(), te.get()})
      for (const auto& note : d->notes()) std::printf("data: %s\n", note.c_str());
    std::printf("task %s: %lld train, %lld val, %lld test examples, %d classes, length %lld\n", c.data.task.c_str(),
                (long long)tr->size(), (long long)va->size(), (long long)te->size(), tr->num_classes(),
                (long long)tr->max_length());
  }
  auto model = train::build_model(c, tr->info());
  if (group.root())
    std::printf("run directory %s%s\n", run_dir.c_str(),
                group.size() > 1 ? (" (rank 0 of " + std::to_string(group.size()) + ")").c_str() : "");
  catch_stop_signals(group.size() > 1);
  train::TrainOptions o;
  o.run_dir = run_dir;
  o.resume = resume;
  o.allow_gaps = f.on("allow-gaps");
  o.progress_bar = mode == "bar" || (mode == "auto" && isatty(STDERR_FILENO));
  o.stop = [](int64_t) { return g_interrupted != 0; };
  train::TrainResult r = train::fit(*model, c, {tr.get(), va.get(), te.get()}, o);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (r.interrupted) return 130;
  if (group.root()) print_result(r, *te, run_dir);
  return 0;
}

}  // namespace lasgrad::tools
