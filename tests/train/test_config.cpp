// Presets (las-attention.md §4), overrides and the consistency checks.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "data/dataset.h"
#include "engine/backend.h"
#include "engine/tensor.h"
#include "models/model.h"
#include "train/settings.h"
#include "train/task_model.h"

using namespace lasgrad;
using namespace lasgrad::train;
namespace fs = std::filesystem;

TEST_CASE("the settings table: one row per member, every row reads back what it writes") {
  // The defaults are the structs' initialisers; the table only names them. A row whose get and set do
  // not touch the same member (or format what they cannot parse) fails the round trip.
  const RunSettings defaults;
  const auto& rows = setting_rows();
  CHECK(rows.size() == 51);
  std::set<std::string> keys;
  for (const auto& row : rows) {
    CAPTURE(row.key);
    CHECK(keys.insert(row.key).second);  // each key once
    CHECK_FALSE(row.help.empty());
    RunSettings s;
    row.set(s, row.get(defaults));
    CHECK(setting_values(s) == setting_values(defaults));
  }
  // Each row sets its own member and no other: a changed value shows up under its key alone.
  const std::map<std::string, std::string> changed = {{"task", "text"},
                                                      {"data", "d"},
                                                      {"preset", "paper"},
                                                      {"max_length", "7"},
                                                      {"pixel_scale", "raw"},
                                                      {"difficulty", "curv_baseline"},
                                                      {"permutation", "random"},
                                                      {"split_seed", "3"},
                                                      {"attention", "softmax"},
                                                      {"layers", "3"},
                                                      {"width", "96"},
                                                      {"heads", "3"},
                                                      {"expand", "5"},
                                                      {"norm", "layer"},
                                                      {"prenorm", "true"},
                                                      {"pos", "none"},
                                                      {"dropout", "0.25"},
                                                      {"causal", "false"},
                                                      {"pool", "7"},
                                                      {"smoothing", "gaussian"},
                                                      {"sigma", "1.5"},
                                                      {"chunk", "9"},
                                                      {"decay_max", "0.25"},
                                                      {"alpha_min", "0.125"},
                                                      {"alphas", "0.5,0.25"},
                                                      {"strict_causal", "true"},
                                                      {"fused", "false"},
                                                      {"precision", "bf16"},
                                                      {"optimizer", "adam"},
                                                      {"lr", "0.5"},
                                                      {"beta1", "0.5"},
                                                      {"beta2", "0.75"},
                                                      {"eps", "0.001"},
                                                      {"weight_decay", "0.5"},
                                                      {"no_decay", "a,b"},
                                                      {"clip", "2"},
                                                      {"schedule", "plateau"},
                                                      {"warmup", "4"},
                                                      {"min_lr", "0.125"},
                                                      {"plateau_factor", "0.25"},
                                                      {"plateau_patience", "6"},
                                                      {"batch_size", "5"},
                                                      {"accum", "2"},
                                                      {"epochs", "4"},
                                                      {"steps", "11"},
                                                      {"eval_every", "12"},
                                                      {"eval_batches", "13"},
                                                      {"log_every", "14"},
                                                      {"seed", "15"},
                                                      {"threads", "3"},
                                                      {"device", "cuda"}};
  CHECK(changed.size() == rows.size());
  for (const auto& [key, value] : changed) {
    CAPTURE(key);
    REQUIRE(setting_values(defaults).at(key) != value);
    RunSettings s;
    set_setting(s, key, value);
    auto want = setting_values(defaults);
    want[key] = value;
    CHECK(setting_values(s) == want);
  }
  // The typed members, read directly.
  RunSettings s;
  for (const auto& [key, value] : changed) set_setting(s, key, value);
  CHECK(s.model.attention.P == 7);
  CHECK(s.model.attention.C == 9);
  CHECK(s.model.attention.B == 0.25);
  CHECK_FALSE(s.model.positions);
  CHECK_FALSE(s.train.adam.decoupled);
  CHECK(s.train.schedule.kind == ScheduleKind::Plateau);
  CHECK(s.train.schedule.factor == 0.25);
  CHECK(s.data.pixel_scale == data::Pixels::Raw);
  CHECK(s.run.device == Device::CUDA);
  CHECK(s.model.precision == Precision::Bf16);
  CHECK(s.model.attention.alphas == std::vector<double>{0.5, 0.25});
}

TEST_CASE("the model built from settings is the settings' model, with the task's facts") {
  const data::TaskInfo info{.name = "listops", .num_classes = 10, .vocab_size = 20, .max_length = 2000};
  RunSettings s;
  s.model.width = 96;
  s.train.seed = 5;
  const ModelConfig m = model_config(s, info);
  CHECK(m.vocab == 20);
  CHECK(m.classes == 10);
  CHECK(m.max_len == 2000);  // max_length 0: the task's
  CHECK(m.width == 96);
  CHECK(m.seed == 5);
  s.data.max_length = 300;
  CHECK(model_config(s, info).max_len == 300);
}

TEST_CASE("the paper preset holds las-attention.md section 4") {
  const RunSettings l = preset("listops", "las", "paper");
  CHECK(l.model.layers == 6);
  CHECK(l.model.width == 256);
  CHECK(l.model.attention.heads == 8);
  CHECK(l.model.norm == NormKind::Batch);
  CHECK_FALSE(l.model.prenorm);
  CHECK(l.train.schedule.lr == 1e-3);
  CHECK(l.train.adam.weight_decay == 0.01);
  CHECK(l.train.epochs == 50);
  CHECK(l.train.batch_size == 50);
  CHECK(l.model.dropout == 0);
  CHECK(l.train.adam.decoupled);
  CHECK(l.train.adam.beta1 == 0.9);
  CHECK(l.train.adam.beta2 == 0.999);
  CHECK(l.model.attention.causal);
  CHECK(l.model.attention.P == 5);
  const RunSettings r = preset("retrieval", "las", "paper");
  CHECK(r.model.norm == NormKind::Batch);
  CHECK(r.model.prenorm);
  CHECK(r.train.schedule.lr == 2e-3);
  CHECK(r.train.adam.weight_decay == 0);
  CHECK(r.train.epochs == 20);
  CHECK(r.train.batch_size == 64);
  CHECK(preset("smnist", "las", "paper").model.attention.P == 3);
  CHECK(preset("pathx", "softmax", "paper").train.batch_size == 32);
  CHECK(preset("pathx", "las-chunk", "paper").model.attention.C == 1024);
  CHECK(preset("listops", "las-chunk", "small").model.attention.C == 32);
  // Every task of the registry has its preset rows (a task added without one fails here), and its
  // length is the registry's.
  for (const auto& spec : data::tasks())
    for (const auto& [kind, att] : kAttentionKinds)
      for (const char* name : {"paper", "small"}) {
        const std::string task = spec.name;
        INFO(task << " " << att << " " << name);
        CHECK_NOTHROW(validate(preset(task, att, name)));
        CHECK(task_length(task) == spec.length);
      }
  CHECK(data::task_list() == "listops, text, retrieval, image, pathfinder, pathx, smnist, psmnist or sfmnist");
  CHECK_THROWS_WITH_AS(task_length("cifar"), doctest::Contains("unknown task 'cifar' (listops, text"), Error);
}

TEST_CASE("overrides, and errors that name what is wrong") {
  RunSettings c = preset("listops", "las", "small");
  apply_override(c, "lr=5e-4");
  CHECK(c.train.schedule.lr == 5e-4);
  CHECK_THROWS_WITH_AS(apply_override(c, "learning_rate=1"), doctest::Contains("learning_rate"), Error);
  CHECK_THROWS_WITH_AS(apply_override(c, "lr"), doctest::Contains("key=value"), Error);
  CHECK_THROWS_WITH_AS(preset("cifar", "las", "small"), doctest::Contains("unknown task 'cifar'"), Error);
  CHECK_THROWS_WITH_AS(preset("listops", "linear", "small"), doctest::Contains("attention = 'linear'"), Error);
  CHECK_THROWS_WITH_AS(preset("listops", "las", "huge"), doctest::Contains("unknown preset"), Error);

  // Cross-field rules: validate.
  RunSettings h = c;
  set_setting(h, "heads", "3");
  CHECK_THROWS_WITH_AS(validate(h), doctest::Contains("width 64 is not a multiple of 3 heads"), Error);
  RunSettings k = preset("listops", "las-chunk", "small");
  set_setting(k, "chunk", "4096");
  CHECK_THROWS_WITH_AS(validate(k), doctest::Contains("chunk = 4096 is longer than the sequence (128)"), Error);
  RunSettings only = c;
  set_setting(only, "chunk", "8");
  CHECK_THROWS_WITH_AS(validate(only), doctest::Contains("chunk = 8 is only for attention = las-chunk"), Error);
  RunSettings a = c;
  set_setting(a, "alphas", "0,0.1");
  CHECK_THROWS_WITH_AS(validate(a), doctest::Contains("alphas lists 2 rates for 4 heads"), Error);
  RunSettings one = c;
  set_setting(one, "alphas", "0");  // one rate for every head
  validate(one);
  RunSettings w = c;
  set_setting(w, "warmup", "600");
  CHECK_THROWS_WITH_AS(validate(w), doctest::Contains("warmup = 600 must be shorter than steps = 600"), Error);
  RunSettings none = c;
  set_setting(none, "steps", "0");
  set_setting(none, "epochs", "0");
  CHECK_THROWS_WITH_AS(validate(none), doctest::Contains("set steps or epochs"), Error);

  // A value's own range: its row, as it is set; the settings keep their old value.
  CHECK_THROWS_WITH_AS(set_setting(c, "norm", "group"), doctest::Contains("norm = 'group' is not one of layer, batch"),
                       Error);
  CHECK_THROWS_WITH_AS(set_setting(c, "task", "cifar"), doctest::Contains("task = 'cifar' is not one of listops"),
                       Error);
  CHECK_THROWS_WITH_AS(set_setting(c, "lr", "fast"), doctest::Contains("lr needs a finite decimal number"), Error);
  CHECK_THROWS_WITH_AS(set_setting(c, "lr", "0"), doctest::Contains("lr must be > 0, got '0'"), Error);
  CHECK_THROWS_WITH_AS(set_setting(c, "heads", "0"), doctest::Contains("heads must be >= 1"), Error);
  CHECK_THROWS_WITH_AS(set_setting(c, "decay_max", "1"), doctest::Contains("decay_max must be in (0, 1)"), Error);
  CHECK_THROWS_WITH_AS(set_setting(c, "dropout", "1"), doctest::Contains("dropout must be in [0, 1)"), Error);
  CHECK_THROWS_WITH_AS(set_setting(c, "threads", "1025"), doctest::Contains("threads must be <= 1024"), Error);
  CHECK_THROWS_WITH_AS(set_setting(c, "alphas", "0.1,-1"), doctest::Contains("alphas must be >= 0"), Error);
  CHECK_THROWS_WITH_AS(set_setting(c, "prenorm", "yes"), doctest::Contains("prenorm needs true or false"), Error);
  CHECK_THROWS_WITH_AS(set_setting(c, "pool", "4"), doctest::Contains("pool must be odd, got '4'"), Error);
  CHECK(c.train.schedule.lr == 5e-4);
  // Out of range or in another base: refused, never clamped to INT64_MAX or read as hexadecimal.
  for (const char* big : {"99999999999999999999", "1e3", " 5", "0x10"}) {
    CAPTURE(big);
    CHECK_THROWS_WITH_AS(set_setting(c, "batch_size", big),
                         doctest::Contains("batch_size needs a whole number in the 64-bit range"), Error);
  }
  for (const char* odd : {"0x10", "inf", "nan", "1e999", "2e-3 "}) {
    CAPTURE(odd);
    CHECK_THROWS_WITH_AS(set_setting(c, "lr", odd), doctest::Contains("lr needs a finite decimal number"), Error);
  }
  RunSettings g = c;
  set_setting(g, "smoothing", "gaussian");
  CHECK(resolve_options(64, g.model.attention).kernel.size() == 9);  // P = 5: sigma sqrt(2), cut at 3 sigma
  CHECK_THROWS_WITH_AS(set_setting(g, "smoothing", "0.2/0.3"), doctest::Contains("odd count"), Error);
  set_setting(g, "sigma", "50");
  CHECK_THROWS_WITH_AS(validate(g), doctest::Contains("spans 301 positions, more than the sequence (128)"), Error);
}

TEST_CASE("the device setting: cpu or cuda, and cuda refused with the reason where it cannot run") {
  RunSettings c = preset("listops", "las", "small");
  CHECK(c.run.device == Device::CPU);
  CHECK(run_device(c) == Device::CPU);
  CHECK_THROWS_WITH_AS(set_setting(c, "device", "gpu"), doctest::Contains("device = 'gpu' is not one of cpu, cuda"),
                       Error);
  set_setting(c, "device", "cuda");
  CHECK_NOTHROW(validate(c));
  std::string why;
  if (device_available(Device::CUDA, &why)) {
    CHECK(run_device(c) == Device::CUDA);  // a GPU is here: tests/cuda/test_cuda trains on it
  } else {
    // No GPU (or no CUDA in this build): the reason, and no model is built.
    CHECK_FALSE(why.empty());
    CHECK_THROWS_WITH_AS(run_device(c), doctest::Contains(("setting device = cuda: " + why).c_str()), Error);
    const data::TaskInfo info{"listops", 10, 20, 128, false, false, 0};
    CHECK_THROWS_WITH_AS(build_model(c, info), doctest::Contains(why.c_str()), Error);
  }
}

TEST_CASE("config.toml lists every key once and reads back to the same settings") {
  RunSettings c = preset("listops", "las-chunk", "small");
  set_setting(c, "lr", "1e-3");               // written back as the shortest text of the number
  set_setting(c, "alphas", "0,0.1,0.2,0.3");  // not a TOML literal: a string
  set_setting(c, "data", "my \"data\"\\dir");
  const std::string t = settings_toml(c);
  for (const auto& row : setting_rows()) CHECK(("\n" + t).find("\n" + row.key + " = ") != std::string::npos);
  CHECK(t.find("\nlr = 0.001\n") != std::string::npos);
  CHECK(t.find("\neps = 1e-08\n") != std::string::npos);
  CHECK(t.find("\nlayers = 2\n") != std::string::npos);
  CHECK(t.find("\nalphas = \"0,0.1,0.2,0.3\"\n") != std::string::npos);
  const fs::path dir = fs::temp_directory_path();
  const std::string path = (dir / "lasgrad_config_test.toml").string();
  std::ofstream(path) << t;
  CHECK(setting_values(settings_from_toml(path)) == setting_values(c));

  // A user's own file: a few lines over the preset it names; errors name the file and the line.
  std::ofstream(path) << "task = \"listops\"\nattention = \"softmax\"\n# a comment\nsteps = 50\nlr = 2e-3\n";
  RunSettings mine = settings_from_toml(path);
  CHECK(mine.model.attention.kind == AttentionKind::Softmax);
  CHECK(mine.train.steps == 50);
  CHECK(mine.train.schedule.lr == 2e-3);
  CHECK(mine.model.layers == 2);  // from the small preset
  std::ofstream(path) << "steps = 50\nlearning_rate = 1\n";
  CHECK_THROWS_WITH_AS(settings_from_toml(path), doctest::Contains(":2: 'learning_rate' is not a setting"), Error);
  std::ofstream(path) << "steps = [1, 2]\n";
  CHECK_THROWS_WITH_AS(settings_from_toml(path),
                       doctest::Contains(":1: 'steps' must be a string, a number or a boolean"), Error);
  std::ofstream(path) << "steps = = 3\n";
  CHECK_THROWS_WITH_AS(settings_from_toml(path), doctest::Contains("lasgrad_config_test.toml:1:"), Error);
  std::ofstream(path) << "steps = 0x10\n";  // TOML reads it; the setting's own parser refuses it, naming the file
  CHECK_THROWS_WITH_AS(settings_from_toml(path),
                       doctest::Contains("lasgrad_config_test.toml: config: steps needs a whole number"), Error);
  fs::remove(path);

  std::map<std::string, std::string> v = setting_values(c);
  v.erase("lr");
  CHECK_THROWS_WITH_AS(settings_from_values(v), doctest::Contains("'lr' is missing"), Error);
}
