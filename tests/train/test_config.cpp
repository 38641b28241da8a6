// Presets (las-attention.md §4), overrides and the consistency checks.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "data/dataset.h"
#include "engine/backend.h"
#include "engine/tensor.h"
#include "models/model.h"
#include "train/config.h"
#include "train/model.h"

using namespace lasgrad;
using namespace lasgrad::train;
namespace fs = std::filesystem;

TEST_CASE("one set of model defaults: the settings' built-in defaults give ModelConfig's") {
  const data::TaskInfo info{.name = "listops", .num_classes = 10, .vocab_size = 20, .max_length = 2000};
  const ModelConfig got = model_config(Config(), info), want;
  // The task's fields come from the task, not from defaults.
  CHECK(got.vocab == 20);
  CHECK(got.classes == 10);
  CHECK(got.max_len == 2000);
  CHECK(got.attention.max_len == 2000);
  CHECK(got.width == want.width);
  CHECK(got.layers == want.layers);
  CHECK(got.expand == want.expand);
  CHECK(got.norm == want.norm);
  CHECK(got.prenorm == want.prenorm);
  CHECK(got.positions == want.positions);
  CHECK(got.dropout == want.dropout);
  CHECK(got.norm_eps == want.norm_eps);
  CHECK(got.bn_momentum == want.bn_momentum);
  CHECK(got.dtype == want.dtype);
  CHECK(got.seed == want.seed);
  const AttentionSettings &a = got.attention, &b = want.attention;
  CHECK(a.kind == b.kind);
  CHECK(a.causal == b.causal);
  CHECK(a.heads == b.heads);
  CHECK(a.B == b.B);
  CHECK(a.alpha_min == b.alpha_min);
  CHECK(a.alphas == b.alphas);
  CHECK(a.P == b.P);
  CHECK(a.kernel == b.kernel);
  CHECK(a.strict_causal == b.strict_causal);
  CHECK(a.C == b.C);
  CHECK(a.fused == b.fused);
}

TEST_CASE("the paper preset holds las-attention.md section 4") {
  Config l = preset("listops", "las", "paper");
  CHECK(l.str("layers") == "6");
  CHECK(l.str("width") == "256");
  CHECK(l.str("heads") == "8");
  CHECK(l.str("norm") == "batch");
  CHECK(l.str("prenorm") == "false");
  CHECK(l.number("lr") == 1e-3);
  CHECK(l.number("weight_decay") == 0.01);
  CHECK(l.str("epochs") == "50");
  CHECK(l.str("batch_size") == "50");
  CHECK(l.str("dropout") == "0");
  CHECK(l.str("optimizer") == "adamw");
  CHECK(l.number("beta1") == 0.9);
  CHECK(l.number("beta2") == 0.999);
  CHECK(l.flag("causal"));
  CHECK(l.str("pool") == "5");
  Config r = preset("retrieval", "las", "paper");
  CHECK(r.str("norm") == "batch");
  CHECK(r.str("prenorm") == "true");
  CHECK(r.number("lr") == 2e-3);
  CHECK(r.number("weight_decay") == 0);
  CHECK(r.str("epochs") == "20");
  CHECK(r.str("batch_size") == "64");
  CHECK(preset("smnist", "las", "paper").str("pool") == "3");
  CHECK(preset("pathx", "softmax", "paper").str("batch_size") == "32");
  // Every task of the registry has its preset rows (a task added without one fails here), and its
  // length is the registry's.
  for (const auto& spec : data::tasks())
    for (const auto& att : attention_kinds())
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
  Config c = preset("listops", "las", "small");
  apply_override(c, "lr=5e-4");
  CHECK(c.number("lr") == 5e-4);
  CHECK_THROWS_WITH_AS(apply_override(c, "learning_rate=1"), doctest::Contains("learning_rate"), Error);
  CHECK_THROWS_WITH_AS(apply_override(c, "lr"), doctest::Contains("key=value"), Error);
  CHECK_THROWS_WITH_AS(preset("cifar", "las", "small"), doctest::Contains("unknown task 'cifar'"), Error);
  CHECK_THROWS_WITH_AS(preset("listops", "linear", "small"), doctest::Contains("unknown attention"), Error);
  CHECK_THROWS_WITH_AS(preset("listops", "las", "huge"), doctest::Contains("unknown preset"), Error);

  Config h = c;
  h.set("heads", "3");
  CHECK_THROWS_WITH_AS(validate(h), doctest::Contains("does not divide width"), Error);
  Config k = preset("listops", "las-chunk", "small");
  k.set("chunk", "4096");
  CHECK_THROWS_WITH_AS(validate(k), doctest::Contains("chunk = 4096 is longer than the sequence (128)"), Error);
  Config p = c;
  p.set("pool", "4");
  CHECK_THROWS_WITH_AS(validate(p), doctest::Contains("odd"), Error);
  Config n = c;
  n.set("norm", "group");
  CHECK_THROWS_WITH_AS(validate(n), doctest::Contains("norm = 'group'"), Error);
  Config a = c;
  a.set("alphas", "0,0.1");
  CHECK_THROWS_WITH_AS(validate(a), doctest::Contains("alphas"), Error);
  Config one = c;
  one.set("alphas", "0");  // one rate for every head
  validate(one);
  Config x = c;
  x.set("lr", "fast");
  CHECK_THROWS_WITH_AS(validate(x), doctest::Contains("lr needs a finite decimal number"), Error);
  // Out of range or in another base: refused, never clamped to INT64_MAX or read as hexadecimal.
  for (const char* big : {"99999999999999999999", "1e3", " 5", "0x10"}) {
    Config b = c;
    b.set("batch_size", big);
    CAPTURE(big);
    CHECK_THROWS_WITH_AS(validate(b), doctest::Contains("batch_size needs a whole number in the 64-bit range"), Error);
  }
  for (const char* odd : {"0x10", "inf", "nan", "1e999", "2e-3 "}) {
    Config l = c;
    l.set("lr", odd);
    CAPTURE(odd);
    CHECK_THROWS_WITH_AS(validate(l), doctest::Contains("lr needs a finite decimal number"), Error);
  }
  Config g = c;
  g.set("smoothing", "gaussian");
  CHECK(smoothing_kernel(g).size() == 9);  // P = 5: sigma sqrt(2), cut at 3 sigma
  g.set("smoothing", "0.2/0.3");
  CHECK_THROWS_WITH_AS(validate(g), doctest::Contains("odd count"), Error);
  g.set("smoothing", "gaussian");
  g.set("sigma", "50");
  CHECK_THROWS_WITH_AS(validate(g), doctest::Contains("spans 301 positions, more than the sequence (128)"), Error);
}

TEST_CASE("the device setting: cpu or cuda, and cuda refused with the reason where it cannot run") {
  Config c = preset("listops", "las", "small");
  CHECK(c.str("device") == "cpu");
  CHECK(run_device(c) == Device::CPU);
  c.set("device", "gpu");
  CHECK_THROWS_WITH_AS(validate(c), doctest::Contains("device = 'gpu'"), Error);
  CHECK_THROWS_WITH_AS(run_device(c), doctest::Contains("unknown device 'gpu'"), Error);
  c.set("device", "cuda");
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
  Config c = preset("listops", "las-chunk", "small");
  c.set("lr", "1e-3");           // a TOML float, kept as written
  c.set("alphas", "0,0.1,0.2,0.3");  // not a TOML literal: a string
  c.set("data", "my \"data\"\\dir");
  const std::string t = c.toml();
  for (const auto& e : c.entries()) CHECK(("\n" + t).find("\n" + e.key + " = ") != std::string::npos);
  CHECK(t.find("\nlr = 1e-3\n") != std::string::npos);
  CHECK(t.find("\nlayers = 2\n") != std::string::npos);
  CHECK(t.find("\nalphas = \"0,0.1,0.2,0.3\"\n") != std::string::npos);
  const fs::path dir = fs::temp_directory_path();
  const std::string path = (dir / "lasgrad_config_test.toml").string();
  std::ofstream(path) << t;
  CHECK(config_from_toml(path).values() == c.values());

  // A user's own file: a few lines over the preset it names; errors name the file and the line.
  std::ofstream(path) << "task = \"listops\"\nattention = \"softmax\"\n# a comment\nsteps = 50\nlr = 0.002\n";
  Config mine = config_from_toml(path);
  CHECK(mine.str("attention") == "softmax");
  CHECK(mine.str("steps") == "50");
  CHECK(mine.str("lr") == "0.002");
  CHECK(mine.str("layers") == "2");  // from the small preset
  std::ofstream(path) << "steps = 50\nlearning_rate = 1\n";
  CHECK_THROWS_WITH_AS(config_from_toml(path), doctest::Contains(":2: 'learning_rate' is not a setting"), Error);
  std::ofstream(path) << "steps = [1, 2]\n";
  CHECK_THROWS_WITH_AS(config_from_toml(path), doctest::Contains(":1: 'steps' must be a string, a number or a boolean"), Error);
  std::ofstream(path) << "steps = = 3\n";
  CHECK_THROWS_WITH_AS(config_from_toml(path), doctest::Contains("lasgrad_config_test.toml:1:"), Error);
  std::ofstream(path) << "steps = 0x10\n";  // TOML reads it; the setting's own parser refuses it
  CHECK_THROWS_WITH_AS(config_from_toml(path), doctest::Contains("steps needs a whole number"), Error);
  fs::remove(path);

  std::map<std::string, std::string> v = c.values();
  v.erase("lr");
  CHECK_THROWS_WITH_AS(c.set_all(v), doctest::Contains("'lr' is missing"), Error);
}
