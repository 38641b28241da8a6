// `lasgrad sweep`: runs a grid of `lasgrad train` runs, J at a time, each in its own folder and its own
// process (a crash or a failed run takes down nothing else), and keeps summary.{md,json,png} up to date
// after every run. A second invocation skips finished runs and resumes interrupted ones from their
// last.safetensors; Ctrl-C or SIGTERM checkpoints the running ones and stops.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "engine/parse.h"
#include "tools/study/sweep.h"
#include "train/trainer.h"
#include "data/dataset.h"
#include "data/reader.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/dir_lock.h"

namespace lasgrad::tools {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

static volatile std::sig_atomic_t g_stop = 0;

namespace {

// A spec file: one flag per line, "name = value" (the flags of this command without their dashes);
// blank lines and lines starting with '#' are skipped. Returns the lines as (name, value).
std::vector<std::pair<std::string, std::string>> read_spec(const std::string& path, std::string& text) {
  try {
    text = data::read_file("spec file", path);
  } catch (const Error& e) {
    throw cli::UsageError(e.what());
  }
  std::vector<std::pair<std::string, std::string>> out;
  std::stringstream lines(text);
  int n = 0;
  for (std::string line; std::getline(lines, line);) {
    ++n;
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos)
      throw cli::UsageError(path + ":" + std::to_string(n) + ": expected 'name = value', got '" + line + "'");
    auto trim = [](std::string s) {
      const auto a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
      return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
    };
    out.emplace_back(trim(line.substr(0, eq)), trim(line.substr(eq + 1)));
  }
  return out;
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+=.,/:@%") ==
                        std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The last lines of a run's log that say what went wrong: its "error:" line, or its last line.
std::string failure_of(const fs::path& log, int status) {
  std::ifstream in(log);
  std::string line, last, error;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
    if (line.find("error:") != std::string::npos) error = line;
  }
  std::string why = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                        : "exit status " + std::to_string(WEXITSTATUS(status));
  return why + ": " + (error.empty() ? last : error);
}

// The spec file's lines become flags placed before the command line's: a repeated flag adds to them,
// any other flag given on the command line replaces the file's. `spec_text` gets the file's text.
std::vector<std::string> args_with_spec(int argc, char** argv, std::string& spec_text) {
  std::string spec_path;
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--spec")) spec_path = argv[i + 1];
  for (int i = 1; i < argc; ++i)
    if (!std::strncmp(argv[i], "--spec=", 7)) spec_path = argv[i] + 7;
  std::vector<std::string> args{argv[0]};
  if (!spec_path.empty()) {
    std::set<std::string> given;
    for (int i = 1; i < argc; ++i)
      if (!std::strncmp(argv[i], "--", 2))
        given.insert(std::string(argv[i] + 2).substr(0, std::string(argv[i] + 2).find('=')));
    for (const auto& [name, value] : read_spec(spec_path, spec_text)) {
      if (name == "spec") throw cli::UsageError(spec_path + ": a spec file cannot name another spec file");
      const bool repeated = name == "set" || name == "grid" || name == "variant";
      if (!repeated && given.count(name)) continue;
      if (name == "dry-run") throw cli::UsageError(spec_path + ": dry-run is a command-line flag");
      args.push_back("--" + name);
      args.push_back(value);
    }
  }
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  return args;
}

// The sweep the flags describe, every run with `threads` threads.
study::SweepSpec spec_of(const cli::Flags& f, int64_t threads) {
  study::SweepSpec spec;
  spec.task = f.str("task");
  spec.data = f.str("data");
  spec.preset = f.str("preset");
  if (spec.data.empty()) throw cli::UsageError("--data is required (the task's data folder)");
  try {
    for (const auto& v : split_commas(f.str("variants"), "--variants")) spec.variants.push_back(study::variant(v));
    for (const auto& v : f.all("variant")) spec.variants.push_back(study::variant(v));
    spec.seeds.clear();
    for (const auto& s : split_commas(f.str("seeds"), "--seeds")) {
      int64_t v = 0;
      if (!parse_int64(s, v) || v < 0) throw Error("--seeds: '" + s + "' is not a seed (a whole number >= 0)");
      spec.seeds.push_back(v);
    }
    for (const auto& kv : f.all("set")) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) throw Error("--set needs key=value, got '" + kv + "'");
      spec.sets.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    spec.sets.emplace_back("threads", std::to_string(threads));
    for (const auto& g : f.all("grid")) spec.grid.push_back(study::grid_axis(g));
  } catch (const Error& e) {
    throw cli::UsageError(e.what());
  }
  return spec;
}

// A run folder made with other settings is never touched: the sweep refuses before starting. Settings are
// compared as values, so "2e-3" in an older run's config.toml is the 0.002 asked now.
void check_run_folder(const std::string& out, const study::RunPlan& p) {
  const fs::path run = fs::path(out) / p.dir;
  if (!fs::exists(run / "config.toml") && !fs::exists(run / "config.txt")) return;
  const auto have = train::read_run_settings(run.string());
  for (const auto& row : train::setting_rows()) {
    bool asked = row.key == "task" || row.key == "preset" || row.key == "attention";
    for (const auto& [k, v] : p.settings) asked = asked || k == row.key;
    if (!asked) continue;
    const std::string want = row.get(p.resolved);
    auto it = have.find(row.key);
    bool same = false;
    if (it != have.end()) {
      train::RunSettings theirs = p.resolved;
      try {
        row.set(theirs, it->second);
        same = row.get(theirs) == want;
      } catch (const Error&) {}
    }
    if (!same)
      throw Error("sweep: " + run.string() + " holds a run with " + row.key + " = " +
                  (it == have.end() ? "(none)" : it->second) + ", this sweep asks " + want +
                  "; give another --out, or move that run away");
  }
}

// The runs, J at a time, each a `lasgrad train` child process in its own folder; the summary is rewritten
// after every run that ends.
class Runner {
 public:
  Runner(const study::SweepSpec& spec, const std::vector<study::RunPlan>& plans, std::vector<study::RunRecord>& records,
         std::string out, std::function<void()> summarize)
      : spec_(spec), plans_(plans), records_(records), out_(std::move(out)), summarize_(std::move(summarize)) {
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_stop = 1; };
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: waitpid returns at once to forward the stop
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~Runner() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  // Runs `todo` (indices into plans), `jobs` at a time; returns how many failed.
  int64_t run(const std::vector<size_t>& todo, int64_t jobs) {
    size_t next = 0;
    bool forwarded = false;
    while (next < todo.size() || !running_.empty()) {
      while (!g_stop && next < todo.size() && static_cast<int64_t>(running_.size()) < jobs) {
        if (!start(todo[next])) break;  // interrupted while waiting for its folder: the next invocation starts it
        ++next;
      }
      if (g_stop && !forwarded) {
        std::printf("stopping: the running runs write their checkpoints\n");
        std::fflush(stdout);
        for (const auto& [pid, c] : running_) kill(pid, SIGINT);
        forwarded = true;
      }
      if (running_.empty()) break;
      wait_one();
    }
    return failed_;
  }

 private:
  struct Child {
    size_t index;
    Clock::time_point start;
  };

  // Starts run i; false when the sweep was stopped while waiting for its folder.
  bool start(size_t i) {
    const study::RunPlan& p = plans_[i];
    const fs::path dir = fs::path(out_) / p.dir;
    // A run still held by a live process (most likely the run of a killed sweep, writing its checkpoint
    // before it exits) is waited for, then resumed, rather than failed as "in use".
    const bool free = DirLock::await_free(dir.string(), "lock", [&](const std::string& pid) {
      std::printf("wait   %s: in use by pid %s, most likely a run of an earlier sweep ending\n", p.dir.c_str(),
                  pid.c_str());
      std::fflush(stdout);
    });
    if (!free) return false;
    fs::create_directories(dir);
    fs::remove(dir / "error.txt");
    std::vector<std::string> cmd{self_, "train", "--progress", "lines", "--out", dir.string()};
    const bool resume = fs::exists(dir / "last.safetensors");
    if (resume) {
      cmd.insert(cmd.end(), {"--resume", (dir / "last.safetensors").string()});
    } else {
      // The folder is the sweep's, and its settings were checked: a start that left no checkpoint (killed
      // or failed early) is started again from scratch.
      cmd.insert(cmd.end(), {"--overwrite", "--task", spec_.task, "--preset", spec_.preset, "--attention",
                             name_of(kAttentionKinds, p.resolved.model.attention.kind)});
      for (const auto& [k, v] : p.settings) cmd.insert(cmd.end(), {"--set", k + "=" + v});
    }
    std::printf("%s %s\n", resume ? "resume" : "start ", p.dir.c_str());
    std::fflush(stdout);
    running_[spawn(cmd, dir / "train.log")] = {i, Clock::now()};
    return true;
  }

  // `cmd` as a child process writing to `log`.
  pid_t spawn(std::vector<std::string>& cmd, const fs::path& log) {
    const pid_t sweep_pid = getpid();
    const pid_t pid = fork();
    if (pid < 0) throw Error(std::string("sweep: fork failed: ") + std::strerror(errno));
    if (pid > 0) return pid;
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    // A run dies with its sweep however the sweep ends (kill -9 included): SIGTERM, so it writes its
    // checkpoint and the rerun resumes it. The sweep may have died before the prctl took hold.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != sweep_pid) _exit(130);
    setpgid(0, 0);  // its own group: the terminal's Ctrl-C reaches it once, through the sweep
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) dup2(fd, STDOUT_FILENO), dup2(fd, STDERR_FILENO);
    std::vector<char*> cav;
    for (auto& a : cmd) cav.push_back(a.data());
    cav.push_back(nullptr);
    execv(self_.c_str(), cav.data());
    std::fprintf(stderr, "sweep: cannot run %s: %s\n", self_.c_str(), std::strerror(errno));
    _exit(127);
  }

  // Waits for a child to end and records it: its wall time, its error, its state in the summary.
  void wait_one() {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) return;
      throw Error(std::string("sweep: waitpid failed: ") + std::strerror(errno));
    }
    auto it = running_.find(pid);
    if (it == running_.end()) return;
    const size_t i = it->second.index;
    const fs::path dir = fs::path(out_) / plans_[i].dir;
    const double wall = std::chrono::duration<double>(Clock::now() - it->second.start).count();
    running_.erase(it);
    data::write_file_atomic((dir / "wall_s.txt").string(), std::to_string(records_[i].wall_s + wall) + "\n");
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    const bool interrupted = WIFEXITED(status) && WEXITSTATUS(status) == 130;
    if (!ok && !interrupted) {
      data::write_file_atomic((dir / "error.txt").string(), failure_of(dir / "train.log", status));
      ++failed_;
    }
    records_[i] = study::read_run(dir.string(), plans_[i]);
    std::printf("%s %s%s\n",
                ok            ? "done  "
                : interrupted ? "paused"
                              : "FAILED",
                plans_[i].dir.c_str(),
                ok            ? ("  test " + std::to_string(100 * records_[i].test).substr(0, 5) + "%").c_str()
                : interrupted ? ""
                              : ("  " + records_[i].error).c_str());
    std::fflush(stdout);
    summarize_();
  }

  const study::SweepSpec& spec_;
  const std::vector<study::RunPlan>& plans_;
  std::vector<study::RunRecord>& records_;
  const std::string out_;
  std::function<void()> summarize_;
  const std::string self_ = fs::read_symlink("/proc/self/exe").string();
  struct sigaction old_int_ {
  }, old_term_{};
  std::map<pid_t, Child> running_;
  int64_t failed_ = 0;
};

void print_groups(const std::vector<study::RunRecord>& records, const std::string& reference, const std::string& out) {
  for (const auto& g : study::summarize(records, reference)) {
    std::printf("%-28s %lld/%lld done  best val %6.2f%% +- %5.2f  test %6.2f%% +- %5.2f", g.group.c_str(),
                (long long)g.done, (long long)g.runs, 100 * g.val.mean, 100 * g.val.sd, 100 * g.test.mean,
                100 * g.test.sd);
    if (g.diff.n > 0)
      std::printf("  vs %s %+.2f [%+.2f, %+.2f] %s", reference.c_str(), 100 * g.diff.mean, 100 * g.diff.lo,
                  100 * g.diff.hi, study::verdict(g.diff));
    std::printf("\n");
  }
  std::printf("summary: %s/summary.md  %s/summary.json  %s/summary.png\n", out.c_str(), out.c_str(), out.c_str());
}

cli::Flags sweep_flags() {
  std::string variant_help = "built-in variants, comma-separated: ";
  for (const auto& n : study::builtin_variants()) variant_help += n + " ";
  cli::Flags f(
      "lasgrad sweep",
      "Train every point of variants x grid x seeds, J runs at a time, each in DIR/<variant>[_key=value]/seed<N>\n"
      "as its own `lasgrad train` process, and write DIR/summary.md, summary.json and summary.png after\n"
      "every finished run: per variant the mean and standard deviation over seeds of the best validation\n"
      "and the test accuracy with the test mean's 95% interval; each variant against the reference variant\n"
      "seed by seed (the paired difference with its 95% interval, and McNemar's test on the pooled test\n"
      "predictions); each run's numbers, the validation curves, and the command that reproduces\n"
      "the sweep. Run it again to skip finished runs and resume interrupted ones (Ctrl-C, SIGTERM, a kill\n"
      "or a reboot); a failed run is reported with its error and the others go on.");
  f.option("spec", "",
           "a file of flag lines, 'name = value' (e.g. 'variants = softmax,las', 'set = steps=500'); flags given here "
           "add to or replace them")
      .option("task", "listops", data::task_list())
      .option("data", "", "the task's data folder (required)")
      .option("preset", "small", "paper or small, the base of every run")
      .option("variants", "softmax,las", variant_help)
      .repeated("variant", "one more variant: a built-in name, or your own as name:key=value,key=value")
      .option("seeds", "1", "seeds, comma-separated")
      .repeated("set", "a setting for every run, key=value (lasgrad train --help lists them)")
      .repeated("grid", "a setting to vary, key=v1,v2,v3: every variant runs at every value (axes cross)")
      .option("out", "", "the sweep folder (required)")
      .option("jobs", "0", "runs at once; 0 = the machine's cores / threads")
      .option("threads", "1", "CPU threads per run")
      .option("reference", "softmax",
              "the variant (group) every other is compared with, seed by seed; none if the sweep has no such group")
      .toggle("dry-run", "print the runs and their states, run nothing");
  return f;
}

}  // namespace

int cmd_sweep(int argc, char** argv) {
  cli::Flags f = sweep_flags();
  std::string spec_text;
  std::vector<std::string> args = args_with_spec(argc, argv, spec_text);
  std::vector<char*> av;
  for (auto& a : args) av.push_back(a.data());
  if (!f.parse(static_cast<int>(av.size()), av.data())) return 0;
  const std::string out = f.str("out"), reference = f.str("reference");
  if (out.empty()) throw cli::UsageError("--out is required (the sweep folder)");
  const int64_t threads = f.integer("threads");
  if (threads < 1 || threads > train::kMaxThreads)
    throw cli::UsageError("--threads must be in 1.." + std::to_string(train::kMaxThreads) + ", got " +
                          f.str("threads"));
  int64_t jobs = f.integer("jobs");
  if (jobs < 0) throw cli::UsageError("--jobs must be >= 0, got " + f.str("jobs"));
  if (jobs == 0) jobs = std::max<int64_t>(1, static_cast<int64_t>(sysconf(_SC_NPROCESSORS_ONLN)) / threads);
  const study::SweepSpec spec = spec_of(f, threads);
  const std::vector<study::RunPlan> plans = study::expand(spec);  // every run is valid before any starts

  // The command that reproduces this sweep (the spec file's text is recorded beside it).
  std::string command = "lasgrad sweep";
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--dry-run")) command += " " + shell_quote(argv[i]);
  // A single run's folder is not a sweep's: its runs would go in beside it, hiding it from report.
  if (const train::HeldRun held = train::run_in(out); held.kind != train::HeldRun::None)
    throw Error("sweep: " + out + " holds " + held.what + ", not a sweep; give another --out");
  for (const auto& p : plans) check_run_folder(out, p);

  std::vector<study::RunRecord> records;
  for (const auto& p : plans) records.push_back(study::read_run((fs::path(out) / p.dir).string(), p));
  if (f.on("dry-run")) {
    for (const auto& r : records)
      std::printf("%-40s %s%s\n", r.dir.c_str(),
                  r.state == study::RunState::Done      ? "done"
                  : r.state == study::RunState::Partial ? "resume"
                                                        : "new",
                  r.error.empty() ? "" : ("  (last attempt failed: " + r.error + ")").c_str());
    return 0;
  }
  // One sweep per folder at a time: the lock dies with its process, so a crash leaves none behind.
  const DirLock lock(out, "sweep.lock", "sweep folder " + out);
  std::vector<size_t> todo;
  for (size_t i = 0; i < records.size(); ++i)
    if (records[i].state != study::RunState::Done) todo.push_back(i);
  std::printf("sweep %s: %zu runs, %zu done, %zu to run, %lld at a time with %lld thread%s each\n", out.c_str(),
              plans.size(), plans.size() - todo.size(), todo.size(), (long long)jobs, (long long)threads,
              threads == 1 ? "" : "s");
  // The trivial baselines every table and figure shows; data the runs cannot open either is left to them
  // to report, run by run.
  std::vector<study::Baseline> baselines;
  try {
    if (!plans.empty()) baselines = study::test_baselines(plans.front().resolved);
  } catch (const std::exception& e) {
    std::printf("baselines: not computed (%s)\n", e.what());
  }
  std::fflush(stdout);
  auto summarize = [&] { study::write_summary(out, records, command, spec_text, reference, baselines); };
  summarize();
  const int64_t failed = Runner(spec, plans, records, out, summarize).run(todo, jobs);
  print_groups(records, reference, out);
  if (g_stop) {
    std::printf("stopped; run the same command again to resume\n");
    return 130;
  }
  if (failed) throw Error(std::to_string(failed) + " run(s) failed; their errors are in " + out + "/summary.md");
  return 0;
}

}  // namespace lasgrad::tools
