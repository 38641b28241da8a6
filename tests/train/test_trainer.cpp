// The trainer on a toy task and a toy model (seconds): determinism, bit-exact resume after an
// interruption, NaN stop with the last checkpoint intact, checkpoint round trip and corruption.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/ops.h"
#include "engine/rng.h"
#include "layers/layers.h"
#include "tests/train/random_tokens.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace lasgrad;
using namespace lasgrad::train;
namespace fs = std::filesystem;

namespace {

// n sequences of 3..8 tokens in [2, 8); label = the first token mod 3.
testing::RandomTokens toy_data(int64_t n, uint64_t seed) {
  return {{"toy", 3, 8, 8, false, false, 0}, n, seed, 3, 2, [](const std::vector<int32_t>& t) { return t[0] % 3; }};
}

// Embedding of the first token concatenated with the mean embedding -> dropout -> Linear; optionally
// poisons its output with NaN on the k-th forward in training.
class ToyModel : public TaskModel, public Module {
 public:
  // `seed` draws the weights; the dropout stream's seed is fixed, as the config's seed fixes a real model's.
  explicit ToyModel(uint64_t seed) : rng_(seed) {
    add_child("embed", embed_ = std::make_shared<Embedding>(8, 6, rng_));
    add_child("head", head_ = std::make_shared<Linear>(12, 3, rng_));
    seeds_->seed = 7;
    drop_ = std::make_shared<Dropout>(0.2, seeds_);
  }
  Module& module() override { return *this; }
  Tensor logits(const data::Batch& b) override {
    Tensor ids = Tensor::from(b.tokens, {b.size, b.length});
    Tensor e = embed_->forward(ids);  // [R, T, 6]
    Tensor h = concat({reshape(slice(e, 1, 0, 1), {b.size, 6}), mean(e, {1})}, 1);
    Tensor y = head_->forward(drop_->forward(h));
    if (training() && ++calls_ == nan_at) y = add(y, std::nan(""));
    return y;
  }
  uint64_t rng_state() const override { return seeds_->count; }
  void set_rng_state(uint64_t s) override { seeds_->count = s; }
  std::vector<Tensor> attention_maps(const data::Batch&) override { return {}; }
  std::vector<std::vector<double>> alphas() const override { return {}; }
  int64_t nan_at = -1;

 private:
  Rng rng_;
  std::shared_ptr<SeedCounter> seeds_ = std::make_shared<SeedCounter>();
  std::shared_ptr<Embedding> embed_;
  std::shared_ptr<Linear> head_;
  std::shared_ptr<Dropout> drop_;
  int64_t calls_ = 0;
};

struct Fixture {
  testing::RandomTokens train = toy_data(200, 1), val = toy_data(60, 2), test = toy_data(60, 3);
  Splits splits{&train, &val, &test};
  RunSettings config = [] {
    RunSettings c;
    c.train.batch_size = 16;
    c.train.accum = 2;
    c.train.steps = 24;
    c.train.eval_every = 5;
    c.train.log_every = 3;
    c.train.schedule.lr = 0.05;
    c.train.schedule.warmup = 3;
    c.train.clip = 1.0;
    c.train.seed = 7;
    return c;
  }();
  std::string dir(const std::string& name) {
    std::string d = (fs::temp_directory_path() / ("lasgrad_train_test_" + name)).string();
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }
};

std::vector<double> params_of(Module& m) {
  std::vector<double> out;
  for (auto& [n, t] : m.named_parameters())
    for (double x : t.to_doubles()) out.push_back(x);
  return out;
}

// metrics.jsonl without the timing fields, which differ between runs.
std::vector<std::string> metric_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    for (const char* key : {", \"examples_per_s\"", ", \"elapsed_s\""}) {
      auto at = line.find(key);
      if (at != std::string::npos) line.erase(at, line.find_first_of(",}", at + 2) - at);
    }
    out.push_back(line);
  }
  return out;
}

}  // namespace

TEST_CASE("the same seed gives the same losses bit for bit, and the model learns") {
  Fixture f;
  ToyModel a(7), b(7);
  TrainOptions o{.run_dir = f.dir("det_a"), .quiet = true};
  TrainResult ra = fit(a, f.config, f.splits, o);
  o.run_dir = f.dir("det_b");
  TrainResult rb = fit(b, f.config, f.splits, o);
  REQUIRE(ra.losses.size() == 24);
  CHECK(ra.losses == rb.losses);
  CHECK(params_of(a) == params_of(b));
  CHECK(ra.losses.back() < ra.losses.front());
  CHECK(ra.best_val > 0.5);  // chance is 1/3
  CHECK(ra.test.examples == 60);
  CHECK(fs::exists(o.run_dir + "/best.safetensors"));
  CHECK(fs::exists(o.run_dir + "/config.toml"));
  auto lines = metric_lines(o.run_dir + "/metrics.jsonl");
  CHECK(lines.back().find("\"split\": \"test\"") != std::string::npos);
}

TEST_CASE("evaluate keeps each example's prediction on request, and fit writes the test split's") {
  Fixture f;
  ToyModel m(7);
  const std::string dir = f.dir("predictions");
  TrainResult r = fit(m, f.config, f.splits, {.run_dir = dir, .quiet = true});
  // The file: a header, then one line per test example, right where the reported accuracy says.
  std::ifstream in(dir + "/test_predictions.tsv");
  std::string line;
  REQUIRE(std::getline(in, line));
  CHECK(line == "index\tlabel\tprediction");
  int64_t n = 0, right = 0;
  for (int64_t index, label, prediction; in >> index >> label >> prediction; ++n) {
    CHECK(index == n);
    CHECK(label == f.test.label(index));
    CHECK((prediction >= 0 && prediction < 3));
    right += label == prediction;
  }
  CHECK(n == 60);
  CHECK(double(right) / double(n) == doctest::Approx(r.test.accuracy));
  // Two batches of 16 of the 60: those 32 predicted, the rest -1; none kept unless asked.
  EvalResult part = evaluate(m, f.test, 16, 2, true);
  REQUIRE(part.predictions.size() == 60);
  CHECK(std::count(part.predictions.begin(), part.predictions.end(), -1) == 28);
  CHECK(std::count(part.predictions.begin(), part.predictions.begin() + 32, -1) == 0);
  CHECK(evaluate(m, f.test, 16).predictions.empty());
}

TEST_CASE("threads = 1 and threads = 2 train to the same bits, so the loop may switch between them") {
  Fixture f;
  ToyModel a(7), b(7);
  f.config.run.threads = 1;
  TrainResult ra = fit(a, f.config, f.splits, {.run_dir = f.dir("t1"), .quiet = true});
  f.config.run.threads = 2;
  TrainResult rb = fit(b, f.config, f.splits, {.run_dir = f.dir("t2"), .quiet = true});
  CHECK(ra.losses == rb.losses);
  CHECK(params_of(a) == params_of(b));
}

TEST_CASE("an interrupted and resumed run equals an uninterrupted one bit for bit") {
  Fixture f;
  ToyModel full(7);
  std::string d1 = f.dir("full"), d2 = f.dir("resumed");
  TrainResult r1 = fit(full, f.config, f.splits, {.run_dir = d1, .quiet = true});

  ToyModel first(7);  // interrupted after step 8 (not an evaluation step: mid-epoch, mid-window)
  TrainResult ri =
      fit(first, f.config, f.splits, {.run_dir = d2, .quiet = true, .stop = [](int64_t step) { return step == 8; }});
  CHECK(ri.interrupted);
  CHECK(ri.steps == 8);
  ToyModel second(99);  // different weights: everything must come from the checkpoint
  TrainResult r2 = fit(second, f.config, f.splits, {.run_dir = d2, .resume = d2 + "/last.safetensors", .quiet = true});
  CHECK(r2.steps == 24);

  std::vector<double> joined = ri.losses;
  joined.insert(joined.end(), r2.losses.begin(), r2.losses.end());
  CHECK(joined == r1.losses);
  CHECK(params_of(second) == params_of(full));
  CHECK(r2.best_step == r1.best_step);
  CHECK(r2.test.accuracy == r1.test.accuracy);
  CHECK(metric_lines(d2 + "/metrics.jsonl") == metric_lines(d1 + "/metrics.jsonl"));
}

TEST_CASE("a resume refuses a checkpoint past the data: a micro-batch beyond the epoch, other data") {
  Fixture f;
  ToyModel a(7);
  const std::string d = f.dir("resume_checks");
  f.config.train.steps = 10;
  fit(a, f.config, f.splits, {.run_dir = d, .quiet = true});
  SafeTensors file = load_safetensors(d + "/last.safetensors");
  file.metadata["batch"] = "99999";
  save_safetensors(d + "/far.safetensors", file.tensors, file.metadata);
  ToyModel b(7);
  CHECK_THROWS_WITH_AS(fit(b, f.config, f.splits, {.run_dir = d, .resume = d + "/far.safetensors", .quiet = true}),
                       doctest::Contains("stands at micro-batch 99999 of an epoch that has 13"), Error);
  // Other data under the same settings (100 training examples instead of 200): refused, naming both.
  testing::RandomTokens fewer = toy_data(100, 1);
  Splits other{&fewer, f.splits.val, f.splits.test};
  ToyModel c(7);
  CHECK_THROWS_WITH_AS(fit(c, f.config, other, {.run_dir = d, .resume = d + "/last.safetensors", .quiet = true}),
                       doctest::Contains("train 200 #"), Error);
}

TEST_CASE("a NaN loss stops training naming the step; the last checkpoint stays loadable") {
  Fixture f;
  ToyModel m(7);
  m.nan_at = 2 * 13 + 1;  // the first micro-batch of step 14 (accum 2); checkpoints at steps 5 and 10
  std::string d = f.dir("nan");
  CHECK_THROWS_WITH_AS(fit(m, f.config, f.splits, {.run_dir = d, .quiet = true}),
                       doctest::Contains("loss is NaN at step 14"), Error);
  Checkpoint ck = load_checkpoint(d + "/last.safetensors");
  CHECK(ck.state.step == 10);
  ToyModel fresh(1);
  load_model(ck, fresh);
  for (double x : params_of(fresh)) CHECK(std::isfinite(x));
}

TEST_CASE("checkpoints: round trip, and truncated, corrupted or foreign files are refused") {
  Fixture f;
  ToyModel m(7);
  std::string d = f.dir("ckpt");
  Adam opt(m.named_parameters(), {}, {});
  TrainState s;
  s.step = 12, s.epoch = 3, s.batch = 4, s.rng = 99, s.best_val = 0.625, s.best_step = 10;
  s.schedule = {0.25, 1.5, 2, true};
  f.config.train.schedule.lr = 0.123;
  save_checkpoint(d + "/c.safetensors", m, &opt, f.config, s);
  Checkpoint ck = load_checkpoint(d + "/c.safetensors");
  CHECK(ck.state.step == 12);
  CHECK(ck.state.batch == 4);
  CHECK(ck.state.rng == 99);
  CHECK(ck.state.best_val == 0.625);
  CHECK(ck.state.schedule.scale == 0.25);
  CHECK(ck.settings.train.schedule.lr == 0.123);
  CHECK(ck.file.contains("model.embed.weight"));
  CHECK(ck.file.contains("adam.m.head.weight"));
  CHECK(ck.settings.run.device == Device::CPU);

  // Written before the device setting existed: read as a CPU run. Any other missing setting is refused.
  auto without = [&](const std::string& key) {
    std::map<std::string, std::string> meta = ck.file.metadata;
    meta.erase(key);
    save_safetensors(d + "/old.safetensors", ck.file.tensors, meta);
    return d + "/old.safetensors";
  };
  CHECK(load_checkpoint(without("config.device")).settings.run.device == Device::CPU);
  CHECK_THROWS_WITH_AS(load_checkpoint(without("config.lr")), doctest::Contains("no 'config.lr'"), Error);
  CHECK(load_checkpoint(without("config.smoothing")).settings.model.attention.smoothing == "box");
  CHECK(load_checkpoint(without("data")).state.data.empty());  // before the data fingerprint: no check

  // Every metadata field is checked: a value out of its range would resume on garbage.
  auto with = [&](const std::string& key, const std::string& value) {
    std::map<std::string, std::string> meta = ck.file.metadata;
    meta[key] = value;
    save_safetensors(d + "/edited.safetensors", ck.file.tensors, meta);
    return d + "/edited.safetensors";
  };
  const std::pair<const char*, const char*> bad_fields[] = {
      {"step", "-5"},          {"epoch", "-1"},        {"batch", "x4"},         {"rng", "zzz"},
      {"rng", "-3"},           {"best_val", "7"},      {"best_step", "13"},     {"schedule.seen", "2"},
      {"schedule.scale", "0"}, {"window.loss", "nan"}, {"window.correct", "5"}, {"step", "99999999999999999999"}};
  for (const auto& [key, value] : bad_fields) {
    CAPTURE(key);
    CAPTURE(value);
    CHECK_THROWS_WITH_AS(load_checkpoint(with(key, value)), doctest::Contains(key), Error);
  }

  std::string bytes;
  {
    std::ifstream in(d + "/c.safetensors", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(d + "/" + name, std::ios::binary) << content;
    return d + "/" + name;
  };
  CHECK_THROWS_AS(load_checkpoint(write("trunc.safetensors", bytes.substr(0, bytes.size() - 10))), Error);
  CHECK_THROWS_AS(load_checkpoint(write("short.safetensors", bytes.substr(0, 5))), Error);
  std::string bad = bytes;
  bad[12] = '#';  // inside the JSON header
  CHECK_THROWS_AS(load_checkpoint(write("corrupt.safetensors", bad)), Error);
  CHECK_THROWS_WITH_AS(load_checkpoint(d + "/missing.safetensors"), doctest::Contains("missing.safetensors"), Error);

  save_safetensors(d + "/foreign.safetensors", {{"w", Tensor::zeros({2})}});
  CHECK_THROWS_WITH_AS(load_checkpoint(d + "/foreign.safetensors"), doctest::Contains("not a lasgrad checkpoint"),
                       Error);

  struct Other : Module {
    Other() { add_parameter("embed.weight", Tensor::zeros({3, 3})); }
  } other;
  CHECK_THROWS_WITH_AS(load_model(ck, other), doctest::Contains("model.embed.weight has shape [8, 6]"), Error);
}

TEST_CASE("a checkpoint holds a checksum of each tensor and only finite values; its settings are checked on load") {
  Fixture f;
  ToyModel m(7);
  const std::string d = f.dir("ckpt_integrity");
  save_checkpoint(d + "/c.safetensors", m, nullptr, f.config, TrainState{});
  const SafeTensors file = load_safetensors(d + "/c.safetensors");
  CHECK(file.metadata.count("checksum.model.head.weight") == 1);

  // One flipped bit in a tensor's data (the file's last byte): refused, naming the tensor.
  std::string bytes;
  {
    std::ifstream in(d + "/c.safetensors", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes.back() ^= 1;
  std::ofstream(d + "/flipped.safetensors", std::ios::binary) << bytes;
  CHECK_THROWS_WITH_AS(load_checkpoint(d + "/flipped.safetensors"), doctest::Contains("does not match its checksum"),
                       Error);

  // Written before checksums were stored: still loads. With a NaN in it: refused.
  std::map<std::string, std::string> old;
  for (const auto& [key, value] : file.metadata)
    if (key.rfind("checksum.", 0) != 0) old[key] = value;
  save_safetensors(d + "/old.safetensors", file.tensors, old);
  CHECK(load_checkpoint(d + "/old.safetensors").file.contains("model.head.weight"));
  auto tensors = file.tensors;
  tensors[0].second = mul(tensors[0].second, std::nan(""));
  save_safetensors(d + "/nan.safetensors", tensors, old);
  CHECK_THROWS_WITH_AS(load_checkpoint(d + "/nan.safetensors"), doctest::Contains("holds NaN or Inf values"), Error);

  // A model that diverged is not written as a checkpoint: the last good one stays the last good one.
  for (auto& [name, t] : m.named_parameters()) t.copy_from(mul(t, std::nan("")));
  CHECK_THROWS_WITH_AS(save_checkpoint(d + "/c.safetensors", m, nullptr, f.config, TrainState{}),
                       doctest::Contains("not written"), Error);
  CHECK(load_checkpoint(d + "/c.safetensors").file.contains("model.head.weight"));

  // Stored settings that are not valid settings: refused as the checkpoint's, not left to the model build.
  std::map<std::string, std::string> bad = file.metadata;
  bad["config.heads"] = "0";
  save_safetensors(d + "/heads.safetensors", file.tensors, bad);
  CHECK_THROWS_WITH_AS(
      load_checkpoint(d + "/heads.safetensors"),
      doctest::Contains(
          (d + "/heads.safetensors: the settings it holds are not valid: config: heads must be >= 1").c_str()),
      Error);
}

TEST_CASE("a resume over a metrics log with a hole is refused, or with allow_gaps records the gap") {
  Fixture f;
  ToyModel a(7);
  const std::string d = f.dir("gaps");
  fit(a, f.config, f.splits, {.run_dir = d, .quiet = true, .stop = [](int64_t step) { return step == 12; }});
  const std::string log = d + "/metrics.jsonl", ck = d + "/at12.safetensors";
  fs::copy_file(d + "/last.safetensors", ck);                // every resume below starts at step 12
  const std::vector<std::string> whole = metric_lines(log);  // train lines at 3, 6, 9, 12; val at 5, 10
  auto write_log = [&](const std::vector<std::string>& lines) {
    std::ofstream out(log, std::ios::trunc);
    for (const auto& l : lines) out << l << "\n";
  };
  auto resume = [&](bool allow) {
    ToyModel b(7);
    return fit(b, f.config, f.splits,
               {.run_dir = d, .resume = ck, .quiet = true, .allow_gaps = allow, .stop = [](int64_t step) {
                  return step == 13;
                }});
  };
  REQUIRE(whole.size() == 6);
  write_log({whole[0], whole[1]});  // cut
  CHECK_THROWS_WITH_AS(resume(false), doctest::Contains("lacks the lines of 4 step(s) between 6 and 12"), Error);
  CHECK(metric_lines(log).size() == 2);  // refused: nothing written
  write_log({whole[0], "garbage", whole[1], whole[2], whole[3], whole[4], whole[5]});
  CHECK_THROWS_WITH_AS(resume(false), doctest::Contains(("line 2 of " + log + " is not a metrics line").c_str()),
                       Error);
  fs::remove(log);
  CHECK_THROWS_WITH_AS(resume(false), doctest::Contains((log + " is missing").c_str()), Error);
  write_log(whole);
  CHECK(resume(false).steps == 13);  // a whole log resumes as before

  write_log({whole[0], whole[1]});
  CHECK(resume(true).steps == 13);
  const std::vector<std::string> now = metric_lines(log);
  CHECK(std::find(now.begin(), now.end(), "{\"split\": \"gap\", \"step\": 12, \"from\": 6, \"to\": 12}") != now.end());
}
