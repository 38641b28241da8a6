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

TrainSettings train_settings(const Config& c) {
  TrainSettings s;
  s.adam = {c.number("beta1"), c.number("beta2"), c.number("eps"), c.number("weight_decay"), c.str("optimizer") == "adamw"};
  s.no_decay = c.list("no_decay");
  s.lr = c.number("lr");
  s.clip = c.number("clip");
  s.schedule = c.str("schedule");
  s.warmup = c.integer("warmup");
  s.min_lr = c.number("min_lr");
  s.plateau_factor = c.number("plateau_factor");
  s.plateau_patience = c.integer("plateau_patience");
  s.batch_size = c.integer("batch_size");
  s.accum = c.integer("accum");
  s.epochs = c.integer("epochs");
  s.steps = c.integer("steps");
  s.eval_every = c.integer("eval_every");
  s.eval_batches = c.integer("eval_batches");
  s.log_every = c.integer("log_every");
  s.seed = static_cast<uint64_t>(c.integer("seed"));
  s.threads = c.integer("threads");
  return s;
}

int usable_threads(int64_t threads) {
  const int n = data::worker_threads(threads);
  static bool said = false;
  if (threads > n && !said)
    std::fprintf(stderr, "threads = %lld is more than this machine's %d cores: using %d\n", (long long)threads, n, n);
  said = said || threads > n;
  return n;
}

data::Options data_options(const Config& c) {
  data::Options o;
  o.max_length = c.integer("max_length");
  o.split_seed = static_cast<uint64_t>(c.integer("split_seed"));
  o.pixel_scale = c.str("pixel_scale") == "raw" ? data::Pixels::Raw : data::Pixels::Unit;
  o.difficulty = c.str("difficulty");
  o.permutation = c.str("permutation");
  o.permutation_seed = o.split_seed;  // a property of the data, not of the run
  return o;
}

std::unique_ptr<data::Dataset> open_split(const Config& c, data::Split split) {
  const std::string& dir = c.str("data");
  if (dir.empty()) throw Error("no data folder: give --data DIR (or --set data=DIR)");
  if (fs::exists(dir) && !fs::is_directory(dir)) throw Error("data folder " + dir + " is a file, not a folder");
  if (!fs::is_directory(dir)) throw Error("data folder " + dir + " does not exist");
  auto d = data::open_task(c.str("task"), dir, split, data_options(c));
  // Refused here, when the data is opened, not as an internal error mid-run or after the whole training.
  if (d->size() == 0)
    throw Error("the " + std::string(data::split_name(split)) + " split of " + c.str("task") + " in " + dir +
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
      if (predictions[i] >= 0) out << i << '\t' << data.label(static_cast<int64_t>(i)) << '\t' << predictions[i] << '\n';
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

// A metrics value: JSON has no inf or nan (an overflowed gradient norm), so those are written as null.
static std::string fmt(const char* f, double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

static std::string clock_str(double seconds) {
  int64_t s = std::isfinite(seconds) ? static_cast<int64_t>(seconds) : 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60), (long long)(s % 60));
  return buf;
}

std::string run_in(const std::string& dir) {
  const fs::path d(dir);
  const fs::path metrics = d / "metrics.jsonl";
  int64_t step = -1;
  bool tested = false;
  if (fs::exists(metrics)) {
    std::ifstream in(metrics);
    for (std::string line; std::getline(in, line);) {
      auto at = line.find("\"step\": ");
      if (at != std::string::npos) step = std::max<int64_t>(step, std::atoll(line.c_str() + at + 8));
      tested = tested || line.find("\"split\": \"test\"") != std::string::npos;
    }
  }
  if (tested) return "a finished run (" + metrics.string() + " has its test result)";
  if (fs::exists(d / "last.safetensors"))
    return "a partial run (" + (d / "last.safetensors").string() + (step >= 0 ? ", metrics up to step " + std::to_string(step) : "") + ")";
  for (const char* f : {"config.toml", "config.txt", "metrics.jsonl", "best.safetensors"})
    if (fs::exists(d / f)) return "the start of a run (" + (d / f).string() + ")";
  return "";
}

void clear_run(const std::string& dir) {
  for (const char* f : {"config.toml", "config.txt", "metrics.jsonl", "last.safetensors", "best.safetensors",
                        "test_predictions.tsv"})
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
  const std::pair<const char*, const data::Dataset*> splits[] = {{"train", data.train}, {"val", data.val}, {"test", data.test}};
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
// small model ran at 9.8 steps/s with 2 threads against 18.8 with 1 (tools/bench_threads.sh). The CPU
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

TrainResult fit(TaskModel& model, const Config& c, const Splits& data, const TrainOptions& o) {
  if (!data.train || !data.val || !data.test) throw Error("fit: the train, val and test splits are all needed");
  // c is read once, here; below it is only recorded (config.toml, checkpoints), named in messages and
  // compared across ranks.
  const TrainSettings s = train_settings(c);
  ThreadChooser threads(usable_threads(s.threads));
  omp_set_num_threads(threads.threads());
  // Data-parallel ranks (train/group.h): each takes its share of every global batch of batch_size x
  // ranks examples, the gradients are summed in one all-reduce, and every rank takes the same step.
  Group& g = Group::world();
  const int64_t ranks = g.size();
  const bool quiet = o.quiet || !g.root();  // rank 0 alone prints and writes the run's files
  g.check_same("settings", c.toml());
  Module& m = model.module();
  // Over ranks, BatchNorm takes its batch statistics over every rank's rows (synchronised BatchNorm).
  auto bn_sync = std::make_shared<BatchNorm::Sync>(BatchNorm::Sync{.replicas = &g});
  if (ranks > 1)
    m.apply([&](Module& x) {
      if (auto* bn = dynamic_cast<BatchNorm*>(&x)) bn->sync = bn_sync;
    });
  const int64_t batch_size = s.batch_size, accum = s.accum;
  Adam opt(m.named_parameters(), s.adam, s.no_decay);
  data::BatchIterator it(*data.train, {.batch_size = batch_size * ranks, .shuffle = true, .seed = s.seed});
  const int64_t per_epoch = std::max<int64_t>(1, it.batches_per_epoch() / accum);
  const int64_t total = s.steps > 0 ? s.steps : s.epochs * per_epoch;
  const int64_t eval_every = s.eval_every > 0 ? s.eval_every : per_epoch;
  const int64_t log_every = s.log_every, eval_batches = s.eval_batches;
  Schedule sched({s.schedule, s.lr, s.warmup, total, s.min_lr, s.plateau_factor, s.plateau_patience});
  const double clip = s.clip;

  const std::string last = o.run_dir + "/last.safetensors", best = o.run_dir + "/best.safetensors";
  const std::string metrics_path = o.run_dir + "/metrics.jsonl";
  if (g.root()) remove_stale_temporaries(o.run_dir);
  TrainState st;
  const std::string fingerprint = data_fingerprint(data);
  g.check_same("training data", fingerprint);
  if (!o.resume.empty()) {
    Checkpoint ck = load_checkpoint(o.resume);
    if (ck.state.ranks != ranks)
      throw Error("resume: " + o.resume + " was written by " + std::to_string(ck.state.ranks) + " rank(s), whose global batch " +
                  "differs from " + std::to_string(ranks) + " ranks'; resume it with mpirun -np " + std::to_string(ck.state.ranks) +
                  (ck.state.ranks == 1 ? " (or without mpirun)" : ""));
    if (!ck.state.data.empty() && ck.state.data != fingerprint)
      throw Error("resume: the data in " + c.str("data") + " is not what " + o.resume + " trained on (then: " +
                  ck.state.data + "; now: " + fingerprint + ")");
    if (ck.state.batch > it.batches_per_epoch())
      throw Error("resume: " + o.resume + " stands at micro-batch " + std::to_string(ck.state.batch) +
                  " of an epoch that has " + std::to_string(it.batches_per_epoch()));
    // The test at the end evaluates best.safetensors: find out now, not after training, that it is gone.
    if (ck.state.best_step >= 0 && !fs::exists(best))
      throw Error("resume: " + o.resume + " records a best validation checkpoint (step " + std::to_string(ck.state.best_step) +
                  ") but " + best + " is missing; copy it back into " + o.run_dir);
    load_model(ck, m);
    opt.load_state(ck.file.tensors);
    st = ck.state;
    sched.set_state(st.schedule);
    model.set_rng_state(st.rng);
    // A damaged log would leave a hole in the curves that nothing shows: refused unless allowed, and
    // then recorded in the log as a "gap" line, which the report marks.
    std::string damage;  // rank 0's finding, which every rank acts on
    if (g.root()) {
      std::string kept;
      int64_t from = -1, to = -1;
      damage = check_metrics(metrics_path, st.step, log_every, eval_every, total, kept, from, to);
      if (!damage.empty() && o.allow_gaps) {  // unreadable lines are dropped; missing steps make the gap
        std::fprintf(stderr, "resume: %s; %s (--allow-gaps)\n", damage.c_str(),
                     from >= 0 ? "recorded as a gap in the log" : "the unreadable lines dropped");
        if (from >= 0)
          kept += "{\"split\": \"gap\", \"step\": " + std::to_string(st.step) + ", \"from\": " + std::to_string(from) +
                  ", \"to\": " + std::to_string(to) + "}\n";
      }
      if (damage.empty() || o.allow_gaps) data::write_file_atomic(metrics_path, kept);
    }
    std::vector<double> refused = {!damage.empty() && !o.allow_gaps ? 1.0 : 0.0};
    if (ranks > 1) g.sum(refused);
    if (refused[0] != 0)
      throw Error("resume: " + (g.root() ? damage : "rank 0 found the metrics log damaged") +
                  "; the resumed run's curves would have a hole. Resume with --allow-gaps to keep the readable lines "
                  "and record the gap in the log");
  } else if (g.root()) {
    std::ofstream config(o.run_dir + "/config.toml");
    config << c.toml() << std::flush;
    std::ofstream fresh(metrics_path, std::ios::trunc);
    if (!config || !fresh) {
      const int err = errno;
      throw Error("cannot write the run's files in " + o.run_dir + " (" + std::strerror(err) + ")");
    }
  }
  st.data = fingerprint;  // what every checkpoint of this run records, and where
  st.data_dir = c.str("data").empty() ? "" : fs::absolute(c.str("data")).lexically_normal().string();
  st.ranks = ranks;
  // A checkpoint at the last step (a run stopped during its test evaluation) goes straight to the test.
  if (st.step > total) throw Error("resume: the checkpoint is at step " + std::to_string(st.step) + ", past the run's " +
                                   std::to_string(total) + " steps");
  auto last_good = [&]() -> std::string {
    return fs::exists(last) ? "the last good checkpoint " + last + " is intact" : "no checkpoint was written yet";
  };

  std::ofstream metrics;
  if (g.root()) metrics.open(metrics_path, std::ios::app);
  // A write that fails (a full disk) stops the run: the metrics would otherwise lose steps unseen.
  auto emit = [&](const std::string& json) {
    if (!g.root()) return;
    metrics << json << "\n" << std::flush;
    if (!metrics) {
      const int err = errno;  // before anything else can set it (last_good's exists() does)
      throw Error("training stopped: cannot write " + metrics_path + " at step " + std::to_string(st.step) + " (" +
                  std::strerror(err) + "); " + last_good());
    }
  };

  // A numeric failure ends the run: the log records it (a "stop" line, which the report shows), then the error.
  auto halt = [&](const std::string& what) {
    emit("{\"split\": \"stop\", \"step\": " + std::to_string(st.step + 1) + ", \"why\": " + nlohmann::json(what).dump() + "}");
    return Error("training stopped: " + what + "; " + last_good());
  };

  it.start_epoch(st.epoch);
  data::Batch b;
  for (int64_t k = 0; k < st.batch; ++k) it.next(b);  // continue mid-epoch where the checkpoint stood
  auto save = [&](const std::string& path) {
    if (!g.root()) return;
    st.rng = model.rng_state();
    st.schedule = sched.state();
    save_checkpoint(path, m, &opt, c, st);
  };


  TrainResult res;
  const auto t0 = Clock::now();
  auto window_t0 = t0;
  const int64_t first = st.step;
  if (!quiet)
    std::printf("training %lld parameters on %s for %lld steps (%lld per epoch, batch %lld x %lld%s)%s\n",
                (long long)m.parameter_count(), c.str("device").c_str(), (long long)total, (long long)per_epoch,
                (long long)batch_size, (long long)accum,
                ranks > 1 ? (" x " + std::to_string(ranks) + " ranks").c_str() : "",
                first > 0 ? (", resuming after step " + std::to_string(first)).c_str() : "");
  m.train();
  while (st.step < total) {
    const auto step_t0 = Clock::now();
    const double lr = sched.lr(st.step);
    // This rank's part of the step: the mean loss over micro-batches, right answers, examples, and
    // the first micro-batch whose loss was not finite (0: none); summed over the ranks below.
    std::vector<double> part = {0, 0, 0, 0};
    for (int64_t micro = 0; micro < accum; ++micro) {
      if (!it.next(b)) {  // epoch over: the next one in a new seeded order
        it.start_epoch(++st.epoch);
        st.batch = 0;
        it.next(b);
      }
      ++st.batch;
      // Rank r takes rows [r R / N, (r + 1) R / N) of the global batch of R rows, weighted by its share
      // so that the summed gradients are those of the global mean. A rank left without rows (R < N)
      // runs row 0 at weight 0, so that it still has every gradient for the all-reduce.
      const int64_t lo = b.size * g.rank() / ranks, hi = b.size * (g.rank() + 1) / ranks;
      const bool has_rows = lo < hi;
      const data::Batch mine = ranks == 1 ? data::Batch{} : rows_of(b, has_rows ? lo : 0, has_rows ? hi : 1);
      const data::Batch& rows = ranks == 1 ? b : mine;
      const double share = has_rows ? double(hi - lo) / double(b.size) : 0.0;
      bn_sync->contributes = has_rows;
      Tensor logits = model.logits(rows);
      Tensor loss = cross_entropy(logits, Tensor::from(rows.labels, {rows.size}, logits.device()));
      const double lv = loss.item();
      const bool finite = std::isfinite(lv);
      if (!finite) {
        const std::string what = "the loss is " + std::string(std::isnan(lv) ? "NaN" : "Inf") + " at step " +
                                 std::to_string(st.step + 1) + " (micro-batch " + std::to_string(micro + 1) + ")";
        if (ranks == 1) throw halt(what);
        if (part[3] == 0) part[3] = double(micro + 1);  // told to every rank after the all-reduce
      }
      // Every rank runs every backward pass, a non-finite one too (the step is dropped after the
      // all-reduce): synchronised BatchNorm makes collective calls in it that the others wait on.
      const double weight = share / double(accum);
      (weight != 1 ? mul(loss, weight) : loss).backward();
      if (!finite) continue;
      part[0] += lv * share / double(accum);
      if (has_rows) {
        part[1] += double(count_correct(logits, rows.labels));
        part[2] += double(rows.size);
      }
    }
    if (ranks > 1) {
      sum_gradients(m, g);
      g.sum(part);  // the micro-batch flags add up too: non-zero on any rank stops every rank
    }
    if (part[3] != 0)
      throw halt("the loss is not finite at step " + std::to_string(st.step + 1) + " on some rank");
    const double step_loss = part[0];
    st.window_correct += static_cast<int64_t>(part[1]);
    st.window_examples += static_cast<int64_t>(part[2]);
    const double norm = grad_norm(m.parameters());
    if (!std::isfinite(norm))
      throw halt("the gradient norm is not finite at step " + std::to_string(st.step + 1));
    opt.step(lr, clip_scale(norm, clip));
    m.zero_grad();
    ++st.step;
    threads.step_done(std::chrono::duration<double>(Clock::now() - step_t0).count());
    res.losses.push_back(step_loss);
    st.window_loss += step_loss;
    ++st.window_steps;

    // Asked to stop (Ctrl-C, SIGTERM): decided before this step's lines, which are then not printed,
    // since under mpirun the ranks' output is no longer read (a blocked write would hold the checkpoint).
    bool stop = o.stop && o.stop(st.step);
    if (ranks > 1) {  // one rank told to stop stops them all at this step
      std::vector<double> flag = {stop ? 1.0 : 0.0};
      g.sum(flag);
      stop = flag[0] > 0;
    }
    const bool print = !quiet && !stop;
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    const double rate = double(st.step - first) / std::max(elapsed, 1e-9);  // steps per second in this process
    if (st.step % log_every == 0 || st.step == total) {
      double wall = std::chrono::duration<double>(Clock::now() - window_t0).count();
      double loss = st.window_loss / double(st.window_steps), acc = double(st.window_correct) / double(st.window_examples);
      std::ostringstream j;
      j << "{\"split\": \"train\", \"step\": " << st.step << ", \"epoch\": " << st.epoch << ", \"loss\": "
        << fmt("%.7g", loss) << ", \"accuracy\": " << fmt("%.6g", acc) << ", \"lr\": " << fmt("%.6g", lr)
        << ", \"grad_norm\": " << fmt("%.6g", norm) << ", \"examples_per_s\": "
        << fmt("%.4g", double(st.window_examples) / std::max(wall, 1e-9)) << ", \"elapsed_s\": " << fmt("%.3f", elapsed) << "}";
      emit(j.str());
      std::string line = "step " + std::to_string(st.step) + "/" + std::to_string(total) + "  loss " + fmt("%.4f", loss) +
                         "  acc " + fmt("%.1f%%", 100 * acc) + "  lr " + fmt("%.2e", lr) + "  " + fmt("%.2f", rate) +
                         " steps/s  eta " + clock_str(double(total - st.step) / rate);
      if (print && !o.progress_bar) {
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);  // a pipe (tee, a log file) sees each line as it happens
      }
      st.window_loss = 0, st.window_correct = 0, st.window_examples = 0, st.window_steps = 0;
      window_t0 = Clock::now();
    }
    if (print && o.progress_bar) {
      int width = 30, done = static_cast<int>(width * st.step / total);
      std::fprintf(stderr, "\r[%s%s] %lld/%lld  loss %.4f  %.2f steps/s  eta %s ", std::string(done, '#').c_str(),
                   std::string(width - done, '.').c_str(), (long long)st.step, (long long)total, step_loss, rate,
                   clock_str(double(total - st.step) / rate).c_str());
      std::fflush(stderr);
    }

    if (st.step % eval_every == 0 || st.step == total) {
      g.check_same("parameters at step " + std::to_string(st.step), parameter_checksum(m));
      EvalResult v = evaluate(model, *data.val, batch_size, eval_batches);
      sched.on_eval(v.loss);
      bool improved = v.accuracy > st.best_val;
      if (improved) st.best_val = v.accuracy, st.best_step = st.step;
      emit("{\"split\": \"val\", \"step\": " + std::to_string(st.step) + ", \"loss\": " + fmt("%.7g", v.loss) +
           ", \"accuracy\": " + fmt("%.6g", v.accuracy) + ", \"examples\": " + std::to_string(v.examples) +
           ", \"elapsed_s\": " + fmt("%.3f", elapsed) + "}");
      if (print)
        std::printf("%sval  step %lld  loss %.4f  acc %.2f%% (%lld examples)%s\n", o.progress_bar ? "\n" : "",
                    (long long)st.step, v.loss, 100 * v.accuracy, (long long)v.examples, improved ? "  best" : "");
      if (print) std::fflush(stdout);
      if (improved) save(best);
      save(last);
    } else if (stop) {
      save(last);
    }
    if (stop) {
      g.barrier();  // no rank exits before rank 0 has written last.safetensors (mpirun would kill it)
      res.interrupted = true;
      break;
    }
  }
  if (!quiet && o.progress_bar) std::fputc('\n', stderr);
  if (!quiet && ranks > 1 && st.step > first) {  // what docs/distributed.md's cost model starts from
    const double steps_here = double(st.step - first), wall = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("all-reduce: %.2f MiB and %.2f ms per step (%.1f%% of the step's %.1f ms), %lld ranks\n",
                double(g.bytes_reduced()) / steps_here / (1 << 20), 1e3 * g.seconds_reducing() / steps_here,
                100 * g.seconds_reducing() / wall, 1e3 * wall / steps_here, (long long)ranks);
  }
  res.steps = st.step;
  res.best_val = st.best_val;
  res.best_step = st.best_step;
  if (res.interrupted) {
    if (!quiet && ranks == 1) std::printf("interrupted at step %lld; resume with --resume %s\n", (long long)st.step, last.c_str());
    return res;
  }
  g.barrier();  // rank 0 has written best.safetensors before any rank reads it
  load_model(load_checkpoint(best), m);
  res.test = evaluate(model, *data.test, batch_size, 0, true);
  if (g.root()) write_predictions(o.run_dir + "/test_predictions.tsv", *data.test, res.test.predictions);
  emit("{\"split\": \"test\", \"step\": " + std::to_string(st.best_step) + ", \"loss\": " + fmt("%.7g", res.test.loss) +
       ", \"accuracy\": " + fmt("%.6g", res.test.accuracy) + ", \"examples\": " + std::to_string(res.test.examples) + "}");
  return res;
}

}  // namespace lasgrad::train
