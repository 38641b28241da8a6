#include "train/trainer.h"

#include <omp.h>

#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "data/reader.h"
#include "layers/layers.h"
#include "train/checkpoint.h"
#include "train/group.h"
#include "train/metrics.h"
#include "train/optim.h"
#include "train/schedule.h"

namespace lasgrad::train {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

int usable_threads(int64_t threads) {
  const int n = data::worker_threads(threads);
  static bool said = false;
  if (threads > n && !said)
    std::fprintf(stderr, "threads = %lld is more than this machine's %d cores: using %d\n", (long long)threads, n, n);
  said = said || threads > n;
  return n;
}

data::Options data_options(const RunSettings& c) {
  data::Options o;
  o.max_length = c.data.max_length;
  o.split_seed = static_cast<uint64_t>(c.data.split_seed);
  o.pixel_scale = c.data.pixel_scale;
  o.difficulty = c.data.difficulty;
  o.permutation = c.data.permutation;
  o.permutation_seed = o.split_seed;  // a property of the data, not of the run
  return o;
}

std::unique_ptr<data::Dataset> open_split(const RunSettings& c, data::Split split) {
  const std::string& dir = c.data.data;
  if (dir.empty()) throw Error("no data folder: give --data DIR (or --set data=DIR)");
  if (fs::exists(dir) && !fs::is_directory(dir)) throw Error("data folder " + dir + " is a file, not a folder");
  if (!fs::is_directory(dir)) throw Error("data folder " + dir + " does not exist");
  auto d = data::open_task(c.data.task, dir, split, data_options(c));
  // Refused here, when the data is opened, not as an internal error mid-run or after the whole training.
  if (d->size() == 0)
    throw Error("the " + std::string(data::split_name(split)) + " split of " + c.data.task + " in " + dir +
                " has no examples");
  return d;
}

// The argmax of each row of logits [R, C] (ties: the first).
static std::vector<int32_t> predicted_classes(const Tensor& logits) {
  std::vector<float> v = logits.to_floats();
  const int64_t R = logits.dim(0), C = logits.dim(1);
  std::vector<int32_t> out(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) {
    const float* row = v.data() + r * C;
    int64_t best = 0;
    for (int64_t k = 1; k < C; ++k)
      if (row[k] > row[best]) best = k;
    out[static_cast<size_t>(r)] = static_cast<int32_t>(best);
  }
  return out;
}

// Rows of logits [R, C] whose argmax is the label.
static int64_t count_correct(const Tensor& logits, const std::vector<int32_t>& labels) {
  const std::vector<int32_t> classes = predicted_classes(logits);
  int64_t right = 0;
  for (size_t r = 0; r < labels.size(); ++r) right += classes[r] == labels[r];
  return right;
}

EvalResult evaluate(TaskModel& model, const data::Dataset& data, int64_t batch_size, int64_t max_batches,
                    bool keep_predictions) {
  NoGradGuard no_grad;
  bool was_training = model.module().training();
  model.module().eval();
  data::BatchIterator it(data, {.batch_size = batch_size, .shuffle = false});
  it.start_epoch(0);
  data::Batch b;
  // Data-parallel ranks take every N-th batch and add up their sums: the same batches as one process.
  Group& g = Group::world();
  std::vector<double> sums = {0, 0, 0};  // loss x examples, right, examples
  // Each evaluated example's prediction + 1 from the rank that evaluated it, 0 elsewhere: summed over
  // the ranks, every rank has them all.
  std::vector<double> predicted(keep_predictions ? static_cast<size_t>(data.size()) : 0, 0.0);
  for (int64_t k = 0; (max_batches == 0 || k < max_batches) && it.next(b); ++k) {
    if (k % g.size() != g.rank()) continue;
    Tensor logits = model.logits(b);
    Tensor labels = Tensor::from(b.labels, {b.size}, logits.device());
    sums[0] += cross_entropy(logits, labels).item() * double(b.size);
    const std::vector<int32_t> classes = predicted_classes(logits);
    for (size_t r = 0; r < classes.size(); ++r) {
      sums[1] += classes[r] == b.labels[r];
      if (keep_predictions) predicted[static_cast<size_t>(b.index[r])] = classes[r] + 1;
    }
    sums[2] += static_cast<double>(b.size);
  }
  g.sum(sums);
  if (keep_predictions) g.sum(predicted);
  model.module().train(was_training);
  const int64_t n = static_cast<int64_t>(sums[2]);
  if (n == 0) throw Error("evaluate: the split has no examples");
  EvalResult r{sums[0] / sums[2], sums[1] / sums[2], n, {}};
  for (double p : predicted) r.predictions.push_back(static_cast<int32_t>(p) - 1);  // -1: not evaluated
  return r;
}

void write_predictions(const std::string& path, const data::Dataset& data, const std::vector<int32_t>& predictions) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "index\tlabel\tprediction\n";
    for (size_t i = 0; i < predictions.size(); ++i)
      if (predictions[i] >= 0)
        out << i << '\t' << data.label(static_cast<int64_t>(i)) << '\t' << predictions[i] << '\n';
    out.flush();
    if (!out) {
      const int err = errno;
      fs::remove(tmp);
      throw Error("cannot write " + path + " (" + std::strerror(err) + ")");
    }
  }
  fs::rename(tmp, path);
}

namespace {

// Rows [begin, end) of a batch, padded to the batch's length as the whole batch is.
data::Batch rows_of(const data::Batch& b, int64_t begin, int64_t end) {
  data::Batch out;
  out.size = end - begin;
  out.length = b.length;
  auto cut = [&](const auto& v, int64_t per_row) {
    using V = std::decay_t<decltype(v)>;
    return v.empty() ? V{} : V(v.begin() + begin * per_row, v.begin() + end * per_row);
  };
  out.tokens = cut(b.tokens, b.length);
  out.pixels = cut(b.pixels, b.length);
  out.lengths = cut(b.lengths, 1);
  out.labels = cut(b.labels, 1);
  out.tokens2 = cut(b.tokens2, b.length);
  out.lengths2 = cut(b.lengths2, 1);
  out.index = cut(b.index, 1);
  return out;
}

// Every parameter's gradient summed over the ranks in one all-reduce of one flat buffer (float32
// parameters; float64 ones in a second buffer). GPU gradients go through host copies: this Open MPI
// is not CUDA-aware, and NCCL, which would sum them on the devices, cannot be installed here.
void sum_gradients(Module& m, Group& g) {
  std::vector<Tensor> grads;
  std::vector<float> f32;
  std::vector<double> f64;
  for (const Tensor& p : m.parameters()) {
    grads.push_back(p.grad());
    if (!grads.back().defined())
      throw Error("data-parallel step: parameter without a gradient (every rank must use every parameter)");
    const Tensor h = grads.back().to(Device::CPU);
    if (h.dtype() == DType::F32) f32.insert(f32.end(), h.data<float>(), h.data<float>() + h.numel());
    else f64.insert(f64.end(), h.data<double>(), h.data<double>() + h.numel());
  }
  g.sum(f32.data(), static_cast<int64_t>(f32.size()));
  g.sum(f64.data(), static_cast<int64_t>(f64.size()));
  size_t a = 0, b = 0;
  for (Tensor& gr : grads) {
    const size_t n = static_cast<size_t>(gr.numel());
    Tensor h = gr.device() == Device::CPU ? gr : Tensor::empty(gr.shape(), gr.dtype());
    if (h.dtype() == DType::F32) std::copy(f32.begin() + a, f32.begin() + a + n, h.data<float>()), a += n;
    else std::copy(f64.begin() + b, f64.begin() + b + n, h.data<double>()), b += n;
    if (gr.device() != Device::CPU) gr.copy_from(h);
  }
}

// A hash of every parameter's and buffer's bytes (BatchNorm's running statistics): the same on every
// rank or the ranks have drifted apart.
std::string parameter_checksum(const Module& m) {
  uint64_t h = hash_bytes(nullptr, 0);
  for (const NamedTensors& all : {m.named_parameters(), m.named_buffers()})
    for (const auto& [name, t] : all) {
      const Tensor host = t.to(Device::CPU);
      h = hash_bytes(host.raw(), host.nbytes(), h);
    }
  return std::to_string(h);
}

}  // namespace

static std::string clock_str(double seconds) {
  int64_t s = std::isfinite(seconds) ? static_cast<int64_t>(seconds) : 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
                (long long)(s % 60));
  return buf;
}

HeldRun run_in(const std::string& dir) {
  const fs::path d(dir), metrics = d / "metrics.jsonl", last = d / "last.safetensors";
  int64_t step = -1;
  bool tested = false;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    MetricsLine m;
    if (!parse_metrics_line(line, m)) continue;
    step = std::max(step, m.step);
    tested = tested || m.split == "test";
  }
  if (tested) return {HeldRun::Finished, "a finished run (" + metrics.string() + " has its test result)"};
  if (fs::exists(last))
    return {HeldRun::Partial, "a partial run (" + last.string() +
                                  (step >= 0 ? ", metrics up to step " + std::to_string(step) : "") + ")"};
  for (const char* f : {"config.toml", "config.txt", "metrics.jsonl", "best.safetensors"})
    if (fs::exists(d / f)) return {HeldRun::Start, "the start of a run (" + (d / f).string() + ")"};
  return {};
}

void clear_run(const std::string& dir) {
  for (const char* f :
       {"config.toml", "config.txt", "metrics.jsonl", "last.safetensors", "best.safetensors", "test_predictions.tsv"})
    fs::remove(fs::path(dir) / f);
}

// Checkpoint temporaries (<name>.safetensors.tmp.<pid>) that a kill during a write left in `dir`.
static void remove_stale_temporaries(const std::string& dir) {
  if (!fs::is_directory(dir)) return;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.find(".safetensors.tmp.") != std::string::npos) fs::remove(e.path());
  }
}

// A resume continues metrics.jsonl from the checkpoint's step S, whose lines were all written before the
// checkpoint was. What a resume must find there: a train line at every multiple of log_every up to S, a
// val line at every multiple of eval_every up to S (and both at S when S is the last step), and no
// unreadable line before the last (a kill or a full disk cuts only the last). Returns what is wrong,
// "" when nothing is, and `kept`: the readable lines up to S, without a test line (the resumed run
// writes its own at the end).
static std::string check_metrics(const std::string& path, int64_t step, int64_t log_every, int64_t eval_every,
                                 int64_t total, std::string& kept, int64_t& first_gap, int64_t& last_gap) {
  std::ifstream in(path);
  std::set<int64_t> train_steps, val_steps;
  std::vector<int64_t> unreadable;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    MetricsLine m;
    if (!parse_metrics_line(line, m)) {
      if (in.peek() != EOF) unreadable.push_back(n);  // not the last line
      continue;
    }
    if (m.step > step || m.split == "test" || m.split == "stop") continue;
    if (m.split == "train") train_steps.insert(m.step);
    if (m.split == "val") val_steps.insert(m.step);
    kept += line + "\n";
  }
  int64_t missing = 0;
  first_gap = -1, last_gap = -1;
  for (int64_t k = 1; k <= step; ++k) {
    const bool logged = k % log_every == 0 || k == total, evaluated = k % eval_every == 0 || k == total;
    if ((logged && !train_steps.count(k)) || (evaluated && !val_steps.count(k))) {
      ++missing;
      if (first_gap < 0) first_gap = k;
      last_gap = k;
    }
  }
  std::string what;
  if (!in.is_open()) return path + " is missing";
  if (!unreadable.empty())
    what = "line " + std::to_string(unreadable[0]) + " of " + path + " is not a metrics line" +
           (unreadable.size() > 1 ? " (and " + std::to_string(unreadable.size() - 1) + " more)" : "");
  if (missing > 0)
    what += (what.empty() ? path : std::string("; it")) + " lacks the lines of " + std::to_string(missing) +
            " step(s) between " + std::to_string(first_gap) + " and " + std::to_string(last_gap);
  return what;
}

std::string data_fingerprint(const Splits& data) {
  std::string out;
  const std::pair<const char*, const data::Dataset*> splits[] = {
      {"train", data.train}, {"val", data.val}, {"test", data.test}};
  for (const auto& [name, d] : splits) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the labels in order
    for (int64_t i = 0; i < d->size(); ++i) h = (h ^ static_cast<uint64_t>(d->label(i))) * 1099511628211ull;
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s%s %lld #%016llx", out.empty() ? "" : ", ", name, (long long)d->size(),
                  (unsigned long long)h);
    out += buf;
  }
  return out;
}

namespace {

// How many threads the next steps use, at most `max`. When the cores are shared (another program, the
// runs of a sweep), a team of two waits at every op's barrier for the thread whose core is taken: the
// small model ran at 9.8 steps/s with 2 threads against 18.8 with 1 (tools/bench/bench_threads.sh). The CPU
// kernels give the same bits for any thread count (engine/cpu/gemm.cpp), so the loop may switch freely:
// it times windows of kWindow steps at one count, tries the other count every kProbe-th window, and keeps
// the faster one as measured last.
class ThreadChooser {
 public:
  explicit ThreadChooser(int max) : max_(std::max(1, max)), current_(max_) {}
  int threads() const { return current_; }
  // After each step: its wall time in seconds.
  void step_done(double seconds) {
    if (max_ == 1) return;
    sum_ += seconds;
    if (++steps_ < kWindow) return;
    const double per_step = sum_ / steps_;
    sum_ = 0, steps_ = 0;
    (current_ == max_ ? many_ : one_) = per_step;
    ++windows_;
    const bool probe = windows_ % kProbe == 1 || std::isnan(one_) || std::isnan(many_);
    const int best = !(one_ < many_) ? max_ : 1;
    current_ = probe ? (current_ == max_ ? 1 : max_) : best;
    omp_set_num_threads(current_);
  }

 private:
  static constexpr int kWindow = 10, kProbe = 20;
  int max_, current_;
  double sum_ = 0, one_ = NAN, many_ = NAN;  // seconds per step, as last measured with 1 and with max_ threads
  int steps_ = 0, windows_ = 0;
};

}  // namespace

namespace {

// v rounded to `digits` significant digits (the precision a metrics line keeps).
double rounded(double v, int digits) {
  if (!std::isfinite(v)) return v;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return std::strtod(buf, nullptr);
}

// Seconds to the millisecond.
double millis(double seconds) { return std::round(seconds * 1000) / 1000; }

// What one optimizer step measured on this rank (summed over the ranks before it is used).
struct StepParts {
  double loss = 0;  // the mean loss over the micro-batches, weighted by this rank's share
  double correct = 0, examples = 0;
  double bad_micro = 0;  // the first micro-batch whose loss was not finite (1-based); 0: none
};

// A run of fit: the set-up, then the loop's named parts. Rank 0 alone prints and writes the run's files.
class Training {
 public:
  Training(TaskModel& model, const RunSettings& c, const Splits& data, const TrainOptions& o);
  void resume_or_start();
  bool running() const { return st_.step < total_; }
  StepParts forward_backward();
  void update(StepParts& parts, double lr);
  bool asked_to_stop();
  void log(const StepParts& parts, double lr, bool print);
  void evaluate_and_checkpoint(bool print);
  bool due_for_eval() const { return st_.step % eval_every_ == 0 || st_.step == total_; }
  void checkpoint(const std::string& path);
  TrainResult finish(bool interrupted);
  double lr() const { return sched_.lr(st_.step); }
  // The step that began at t0 is done: its time picks the next steps' thread count.
  void step_done(Clock::time_point t0) { threads_.step_done(std::chrono::duration<double>(Clock::now() - t0).count()); }

  const std::string last, best;

 private:
  void start_fresh();
  void resume();
  void mend_metrics();
  void announce() const;
  void emit(const nlohmann::ordered_json& fields);
  Error halt(const std::string& what);
  std::string last_good() const;
  void progress_bar(double step_loss) const;

  TaskModel& model_;
  Module& m_;
  const RunSettings& c_;
  const TrainSettings& s_;
  const Splits& data_;
  const TrainOptions& o_;
  Group& g_ = Group::world();
  const int64_t ranks_ = g_.size();
  const bool quiet_;
  ThreadChooser threads_;
  std::shared_ptr<BatchNorm::Sync> bn_sync_;
  Adam opt_;
  data::BatchIterator it_;
  const int64_t per_epoch_, total_, eval_every_;
  Schedule sched_;
  const std::string metrics_path_, fingerprint_;
  TrainState st_;
  std::ofstream metrics_;
  data::Batch batch_;
  TrainResult res_;
  const Clock::time_point t0_ = Clock::now();
  Clock::time_point window_t0_ = t0_;
  int64_t first_ = 0;  // the step this process started from
  double norm_ = 0;    // the last step's gradient norm
};

ScheduleConfig schedule_of(const TrainSettings& s, int64_t total) {
  ScheduleConfig out = s.schedule;
  out.total = total;
  return out;
}

Training::Training(TaskModel& model, const RunSettings& c, const Splits& data, const TrainOptions& o)
    : last(o.run_dir + "/last.safetensors"),
      best(o.run_dir + "/best.safetensors"),
      model_(model),
      m_(model.module()),
      c_(c),
      s_(c.train),
      data_(data),
      o_(o),
      quiet_(o.quiet || !g_.root()),
      threads_(usable_threads(c.run.threads)),
      bn_sync_(std::make_shared<BatchNorm::Sync>(BatchNorm::Sync{.replicas = &g_})),
      opt_(m_.named_parameters(), s_.adam, s_.no_decay),
      // Data-parallel ranks (train/group.h): each takes its share of every global batch of batch_size x
      // ranks examples, the gradients are summed in one all-reduce, and every rank takes the same step.
      it_(*data.train, {.batch_size = s_.batch_size * ranks_, .shuffle = true, .seed = static_cast<uint64_t>(s_.seed)}),
      per_epoch_(std::max<int64_t>(1, it_.batches_per_epoch() / s_.accum)),
      total_(s_.steps > 0 ? s_.steps : s_.epochs * per_epoch_),
      eval_every_(s_.eval_every > 0 ? s_.eval_every : per_epoch_),
      sched_(schedule_of(s_, total_)),
      metrics_path_(o.run_dir + "/metrics.jsonl"),
      fingerprint_(data_fingerprint(data)) {
  omp_set_num_threads(threads_.threads());
  g_.check_same("settings", settings_toml(c));
  // Over ranks, BatchNorm takes its batch statistics over every rank's rows (synchronised BatchNorm).
  if (ranks_ > 1)
    m_.apply([&](Module& x) {
      if (auto* bn = dynamic_cast<BatchNorm*>(&x)) bn->sync = bn_sync_;
    });
  if (g_.root()) remove_stale_temporaries(o.run_dir);
  g_.check_same("training data", fingerprint_);
}

void Training::resume_or_start() {
  if (o_.resume.empty()) start_fresh();
  else resume();
  st_.data = fingerprint_;  // what every checkpoint of this run records, and where
  st_.data_dir = c_.data.data.empty() ? "" : fs::absolute(c_.data.data).lexically_normal().string();
  st_.ranks = ranks_;
  // A checkpoint at the last step (a run stopped during its test evaluation) goes straight to the test.
  if (st_.step > total_)
    throw Error("resume: the checkpoint is at step " + std::to_string(st_.step) + ", past the run's " +
                std::to_string(total_) + " steps");
  if (g_.root()) metrics_.open(metrics_path_, std::ios::app);
  it_.start_epoch(st_.epoch);
  for (int64_t k = 0; k < st_.batch; ++k) it_.next(batch_);  // continue mid-epoch where the checkpoint stood
  first_ = st_.step;
  announce();
  m_.train();
}

void Training::start_fresh() {
  if (!g_.root()) return;
  std::ofstream config(o_.run_dir + "/config.toml");
  config << settings_toml(c_) << std::flush;
  std::ofstream fresh(metrics_path_, std::ios::trunc);
  if (!config || !fresh) {
    const int err = errno;
    throw Error("cannot write the run's files in " + o_.run_dir + " (" + std::strerror(err) + ")");
  }
}

void Training::resume() {
  const std::string& from = o_.resume;
  Checkpoint ck = load_checkpoint(from);
  if (ck.state.ranks != ranks_)
    throw Error("resume: " + from + " was written by " + std::to_string(ck.state.ranks) +
                " rank(s), whose global batch " + "differs from " + std::to_string(ranks_) +
                " ranks'; resume it with mpirun -np " + std::to_string(ck.state.ranks) +
                (ck.state.ranks == 1 ? " (or without mpirun)" : ""));
  if (!ck.state.data.empty() && ck.state.data != fingerprint_)
    throw Error("resume: the data in " + c_.data.data + " is not what " + from + " trained on (then: " + ck.state.data +
                "; now: " + fingerprint_ + ")");
  if (ck.state.batch > it_.batches_per_epoch())
    throw Error("resume: " + from + " stands at micro-batch " + std::to_string(ck.state.batch) +
                " of an epoch that has " + std::to_string(it_.batches_per_epoch()));
  // The test at the end evaluates best.safetensors: find out now, not after training, that it is gone.
  if (ck.state.best_step >= 0 && !fs::exists(best))
    throw Error("resume: " + from + " records a best validation checkpoint (step " +
                std::to_string(ck.state.best_step) + ") but " + best + " is missing; copy it back into " + o_.run_dir);
  load_model(ck, m_);
  opt_.load_state(ck.file.tensors);
  st_ = ck.state;
  sched_.set_state(st_.schedule);
  model_.set_rng_state(st_.rng);
  mend_metrics();
}

// A damaged log would leave a hole in the curves that nothing shows: refused unless allowed, and then
// recorded in the log as a "gap" line, which the report marks.
void Training::mend_metrics() {
  std::string damage;  // rank 0's finding, which every rank acts on
  if (g_.root()) {
    std::string kept;
    int64_t from = -1, to = -1;
    damage = check_metrics(metrics_path_, st_.step, s_.log_every, eval_every_, total_, kept, from, to);
    if (!damage.empty() && o_.allow_gaps) {  // unreadable lines are dropped; missing steps make the gap
      std::fprintf(stderr, "resume: %s; %s (--allow-gaps)\n", damage.c_str(),
                   from >= 0 ? "recorded as a gap in the log" : "the unreadable lines dropped");
      if (from >= 0) kept += metrics_line({{"split", "gap"}, {"step", st_.step}, {"from", from}, {"to", to}}) + "\n";
    }
    if (damage.empty() || o_.allow_gaps) data::write_file_atomic(metrics_path_, kept);
  }
  std::vector<double> refused = {!damage.empty() && !o_.allow_gaps ? 1.0 : 0.0};
  if (ranks_ > 1) g_.sum(refused);
  if (refused[0] != 0)
    throw Error("resume: " + (g_.root() ? damage : "rank 0 found the metrics log damaged") +
                "; the resumed run's curves would have a hole. Resume with --allow-gaps to keep the readable lines "
                "and record the gap in the log");
}

void Training::announce() const {
  if (quiet_) return;
  std::printf("training %lld parameters on %s for %lld steps (%lld per epoch, batch %lld x %lld%s)%s\n",
              (long long)m_.parameter_count(), device_name(c_.run.device), (long long)total_, (long long)per_epoch_,
              (long long)s_.batch_size, (long long)s_.accum,
              ranks_ > 1 ? (" x " + std::to_string(ranks_) + " ranks").c_str() : "",
              first_ > 0 ? (", resuming after step " + std::to_string(first_)).c_str() : "");
}

std::string Training::last_good() const {
  return fs::exists(last) ? "the last good checkpoint " + last + " is intact" : "no checkpoint was written yet";
}

// A write that fails (a full disk) stops the run: the metrics would otherwise lose steps unseen.
void Training::emit(const nlohmann::ordered_json& fields) {
  if (!g_.root()) return;
  metrics_ << metrics_line(fields) << "\n" << std::flush;
  if (!metrics_) {
    const int err = errno;  // before anything else can set it (last_good's exists() does)
    throw Error("training stopped: cannot write " + metrics_path_ + " at step " + std::to_string(st_.step) + " (" +
                std::strerror(err) + "); " + last_good());
  }
}

// A numeric failure ends the run: the log records it (a "stop" line, which the report shows), then the error.
Error Training::halt(const std::string& what) {
  emit({{"split", "stop"}, {"step", st_.step + 1}, {"why", what}});
  return Error("training stopped: " + what + "; " + last_good());
}

// The step's micro-batches: next batch (a new seeded epoch when one ends), this rank's rows, forward,
// backward. Rank r takes rows [r R / N, (r + 1) R / N) of the global batch of R rows, weighted by its
// share so that the summed gradients are those of the global mean. A rank left without rows (R < N) runs
// row 0 at weight 0, so that it still has every gradient for the all-reduce.
StepParts Training::forward_backward() {
  StepParts p;
  for (int64_t micro = 0; micro < s_.accum; ++micro) {
    if (!it_.next(batch_)) {
      it_.start_epoch(++st_.epoch);
      st_.batch = 0;
      it_.next(batch_);
    }
    ++st_.batch;
    const data::Batch& b = batch_;
    const int64_t lo = b.size * g_.rank() / ranks_, hi = b.size * (g_.rank() + 1) / ranks_;
    const bool has_rows = lo < hi;
    const data::Batch mine = ranks_ == 1 ? data::Batch{} : rows_of(b, has_rows ? lo : 0, has_rows ? hi : 1);
    const data::Batch& rows = ranks_ == 1 ? b : mine;
    const double share = has_rows ? double(hi - lo) / double(b.size) : 0.0;
    bn_sync_->contributes = has_rows;
    Tensor logits = model_.logits(rows);
    Tensor loss = cross_entropy(logits, Tensor::from(rows.labels, {rows.size}, logits.device()));
    const double lv = loss.item();
    const bool finite = std::isfinite(lv);
    if (!finite) {
      const std::string what = "the loss is " + std::string(std::isnan(lv) ? "NaN" : "Inf") + " at step " +
                               std::to_string(st_.step + 1) + " (micro-batch " + std::to_string(micro + 1) + ")";
      if (ranks_ == 1) throw halt(what);
      if (p.bad_micro == 0) p.bad_micro = double(micro + 1);  // told to every rank after the all-reduce
    }
    // Every rank runs every backward pass, a non-finite one too (the step is dropped after the
    // all-reduce): synchronised BatchNorm makes collective calls in it that the others wait on.
    const double weight = share / double(s_.accum);
    (weight != 1 ? mul(loss, weight) : loss).backward();
    if (!finite) continue;
    p.loss += lv * share / double(s_.accum);
    if (has_rows) {
      p.correct += double(count_correct(logits, rows.labels));
      p.examples += double(rows.size);
    }
  }
  return p;
}

// The all-reduce over ranks, the NaN checks, then the clipped optimizer step at rate lr.
void Training::update(StepParts& p, double lr) {
  if (ranks_ > 1) {
    sum_gradients(m_, g_);
    std::vector<double> v = {p.loss, p.correct, p.examples, p.bad_micro};
    g_.sum(v);  // the micro-batch flags add up too: non-zero on any rank stops every rank
    p = {v[0], v[1], v[2], v[3]};
  }
  if (p.bad_micro != 0) throw halt("the loss is not finite at step " + std::to_string(st_.step + 1) + " on some rank");
  st_.window_correct += static_cast<int64_t>(p.correct);
  st_.window_examples += static_cast<int64_t>(p.examples);
  norm_ = grad_norm(m_.parameters());
  if (!std::isfinite(norm_)) throw halt("the gradient norm is not finite at step " + std::to_string(st_.step + 1));
  opt_.step(lr, clip_scale(norm_, s_.clip));
  m_.zero_grad();
  ++st_.step;
  res_.losses.push_back(p.loss);
  st_.window_loss += p.loss;
  ++st_.window_steps;
}

// Asked to stop (Ctrl-C, SIGTERM): one rank told stops them all at this step.
bool Training::asked_to_stop() {
  bool stop = o_.stop && o_.stop(st_.step);
  if (ranks_ > 1) {
    std::vector<double> flag = {stop ? 1.0 : 0.0};
    g_.sum(flag);
    stop = flag[0] > 0;
  }
  return stop;
}

// Every log_every steps a train line (the window's mean loss and accuracy) and a printed line; the
// progress bar after every step.
void Training::log(const StepParts& p, double lr, bool print) {
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0_).count();
  const double rate = double(st_.step - first_) / std::max(elapsed, 1e-9);  // steps per second in this process
  if (st_.step % s_.log_every == 0 || st_.step == total_) {
    const double wall = std::chrono::duration<double>(Clock::now() - window_t0_).count();
    const double loss = st_.window_loss / double(st_.window_steps);
    const double acc = double(st_.window_correct) / double(st_.window_examples);
    emit({{"split", "train"},
          {"step", st_.step},
          {"epoch", st_.epoch},
          {"loss", rounded(loss, 7)},
          {"accuracy", rounded(acc, 6)},
          {"lr", rounded(lr, 6)},
          {"grad_norm", rounded(norm_, 6)},
          {"examples_per_s", rounded(double(st_.window_examples) / std::max(wall, 1e-9), 4)},
          {"elapsed_s", millis(elapsed)}});
    if (print && !o_.progress_bar) {
      std::printf("step %lld/%lld  loss %.4f  acc %.1f%%  lr %.2e  %.2f steps/s  eta %s\n", (long long)st_.step,
                  (long long)total_, loss, 100 * acc, lr, rate, clock_str(double(total_ - st_.step) / rate).c_str());
      std::fflush(stdout);  // a pipe (tee, a log file) sees each line as it happens
    }
    st_.window_loss = 0, st_.window_correct = 0, st_.window_examples = 0, st_.window_steps = 0;
    window_t0_ = Clock::now();
  }
  if (print && o_.progress_bar) progress_bar(p.loss);
}

void Training::progress_bar(double step_loss) const {
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0_).count();
  const double rate = double(st_.step - first_) / std::max(elapsed, 1e-9);
  const int width = 30, done = static_cast<int>(width * st_.step / total_);
  std::fprintf(stderr, "\r[%s%s] %lld/%lld  loss %.4f  %.2f steps/s  eta %s ", std::string(done, '#').c_str(),
               std::string(width - done, '.').c_str(), (long long)st_.step, (long long)total_, step_loss, rate,
               clock_str(double(total_ - st_.step) / rate).c_str());
  std::fflush(stderr);
}

// The validation split, the plateau schedule, a val line; best.safetensors when it improved, and
// last.safetensors.
void Training::evaluate_and_checkpoint(bool print) {
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0_).count();
  g_.check_same("parameters at step " + std::to_string(st_.step), parameter_checksum(m_));
  EvalResult v = evaluate(model_, *data_.val, s_.batch_size, s_.eval_batches);
  sched_.on_eval(v.loss);
  const bool improved = v.accuracy > st_.best_val;
  if (improved) st_.best_val = v.accuracy, st_.best_step = st_.step;
  emit({{"split", "val"},
        {"step", st_.step},
        {"loss", rounded(v.loss, 7)},
        {"accuracy", rounded(v.accuracy, 6)},
        {"examples", v.examples},
        {"elapsed_s", millis(elapsed)}});
  if (print) {
    std::printf("%sval  step %lld  loss %.4f  acc %.2f%% (%lld examples)%s\n", o_.progress_bar ? "\n" : "",
                (long long)st_.step, v.loss, 100 * v.accuracy, (long long)v.examples, improved ? "  best" : "");
    std::fflush(stdout);
  }
  if (improved) checkpoint(best);
  checkpoint(last);
}

void Training::checkpoint(const std::string& path) {
  if (!g_.root()) return;
  st_.rng = model_.rng_state();
  st_.schedule = sched_.state();
  save_checkpoint(path, m_, &opt_, c_, st_);
}

// Interrupted: the result so far (last.safetensors was written). Otherwise the best-validation
// checkpoint on the test split: a test line and test_predictions.tsv.
TrainResult Training::finish(bool interrupted) {
  if (!quiet_ && o_.progress_bar) std::fputc('\n', stderr);
  if (!quiet_ && ranks_ > 1 && st_.step > first_) {  // what docs/distributed.md's cost model starts from
    const double steps_here = double(st_.step - first_),
                 wall = std::chrono::duration<double>(Clock::now() - t0_).count();
    std::printf("all-reduce: %.2f MiB and %.2f ms per step (%.1f%% of the step's %.1f ms), %lld ranks\n",
                double(g_.bytes_reduced()) / steps_here / (1 << 20), 1e3 * g_.seconds_reducing() / steps_here,
                100 * g_.seconds_reducing() / wall, 1e3 * wall / steps_here, (long long)ranks_);
  }
  res_.steps = st_.step;
  res_.best_val = st_.best_val;
  res_.best_step = st_.best_step;
  res_.interrupted = interrupted;
  if (interrupted) {
    g_.barrier();  // no rank exits before rank 0 has written last.safetensors (mpirun would kill it)
    if (!quiet_ && ranks_ == 1)
      std::printf("interrupted at step %lld; resume with --resume %s\n", (long long)st_.step, last.c_str());
    return res_;
  }
  g_.barrier();  // rank 0 has written best.safetensors before any rank reads it
  load_model(load_checkpoint(best), m_);
  res_.test = evaluate(model_, *data_.test, s_.batch_size, 0, true);
  if (g_.root()) write_predictions(o_.run_dir + "/test_predictions.tsv", *data_.test, res_.test.predictions);
  emit({{"split", "test"},
        {"step", st_.best_step},
        {"loss", rounded(res_.test.loss, 7)},
        {"accuracy", rounded(res_.test.accuracy, 6)},
        {"examples", res_.test.examples}});
  return res_;
}

}  // namespace

// The loop, as llm.c's: next batch, forward, backward, update, log; now and then evaluate and checkpoint.
TrainResult fit(TaskModel& model, const RunSettings& settings, const Splits& data, const TrainOptions& options) {
  if (!data.train || !data.val || !data.test) throw Error("fit: the train, val and test splits are all needed");
  Training run(model, settings, data, options);
  run.resume_or_start();
  while (run.running()) {
    const auto t0 = Clock::now();
    const double lr = run.lr();
    StepParts parts = run.forward_backward();
    run.update(parts, lr);
    run.step_done(t0);
    // Asked to stop: decided before this step's lines, which are then not printed, since under mpirun
    // the ranks' output is no longer read (a blocked write would hold the checkpoint).
    const bool stop = run.asked_to_stop();
    const bool print = !options.quiet && Group::world().root() && !stop;
    run.log(parts, lr, print);
    if (run.due_for_eval()) run.evaluate_and_checkpoint(print);
    else if (stop) run.checkpoint(run.last);
    if (stop) return run.finish(true);
  }
  return run.finish(false);
}

}  // namespace lasgrad::train
