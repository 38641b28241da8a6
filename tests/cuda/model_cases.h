// The whole-model cases, declared once and run on every device that serves Device::CUDA: a GPU
// (test_cuda) and the emulator of the CUDA kernels (test_models_emulated, on every build). A GPU found
// what no single-op case could: the first GPU training failed at its first forward, because the model
// made a constant (the position table) on the CPU. So each case goes the way `lasgrad train`, `eval` and
// `attn` go, on the CPU and on the device from the same weights:
//   1. one forward and backward of a padded batch: the loss and every parameter's gradient;
//   2. train::fit for two AdamW steps with an evaluation: every step's loss, the validation and the test
//      result, and the device run's checkpoint evaluated on the CPU;
//   3. one example's attention maps from the trained model (what `lasgrad attn` draws).
// Between them the cases take every attention kind, both norms, both prenorm settings, token and pixel
// input, the retrieval model and both precisions. A bf16 case also evaluates its device checkpoint on the
// CPU in fp32: the weights are float32 masters.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "tests/train/random_tokens.h"
#include "train/checkpoint.h"
#include "train/task_model.h"
#include "train/trainer.h"

namespace lasgrad::test {

struct ModelCase {
  const char* task;  // listops: token ids; smnist: pixel values; retrieval: two documents
  const char* attention;
  const char* norm;
  bool prenorm;
  const char* precision = "fp32";
};

inline std::vector<ModelCase> model_cases() {
  return {
      {"listops", "softmax", "layer", true},     {"listops", "las", "batch", false},
      {"listops", "las-chunk", "layer", false},  {"smnist", "las", "layer", true},
      {"smnist", "las-chunk", "batch", true},    {"smnist", "softmax", "batch", false},
      {"retrieval", "las", "layer", false},      {"retrieval", "las-chunk", "batch", true},
      {"listops", "las", "layer", true, "bf16"}, {"smnist", "las-chunk", "batch", false, "bf16"},
  };
}

inline std::string case_name(const ModelCase& c) {
  return std::string(c.task) + " " + c.attention + " " + c.norm + (c.prenorm ? " prenorm " : " postnorm ") +
         c.precision;
}

// Tolerances scale by this in bf16: the devices' float32 sums differ in the last bits, and where such a
// value is then rounded to bfloat16, the two roundings can differ by one bfloat16 step (2^-8).
inline double precision_slack(const ModelCase& c) { return std::string(c.precision) == "bf16" ? 10 : 1; }

// |got - want| <= tol * (1 + |want|) entry by entry; one CHECK naming the worst entry.
inline void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol,
                        const std::string& what) {
  REQUIRE_MESSAGE(got.size() == want.size(), what << ": " << got.size() << " values against " << want.size());
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::isfinite(got[i]) ? std::abs(got[i] - want[i]) / (1 + std::abs(want[i])) : INFINITY;
    if (e > worst) worst = e, at = i;
  }
  INFO(what << ": worst entry " << at << " device " << (got.empty() ? 0 : got[at]) << " cpu "
            << (want.empty() ? 0 : want[at]) << " (error " << worst << ", tolerance " << tol << ")");
  CHECK(worst <= tol);
}

// The case's data: sequences of 3..max_length symbols, label = (number of 3s) mod classes, so that two
// steps move the loss. Lengths differ inside every batch, so padding and masks take part.
inline data::TaskInfo case_info(const ModelCase& c) {
  const std::string task = c.task;
  if (task == "smnist") return {"smnist", 10, 0, 24, true, false, 0};
  if (task == "retrieval") return {"retrieval", 2, 12, 20, false, true, 0};
  return {"listops", 4, 12, 24, false, false, 0};
}

inline testing::RandomTokens case_data(const ModelCase& c, int64_t n, uint64_t seed) {
  const data::TaskInfo info = case_info(c);
  return {info, n, seed, 3, 1, [k = info.num_classes](const std::vector<int32_t>& t) {
            return static_cast<int32_t>(std::count(t.begin(), t.end(), 3) % k);
          }};
}

inline train::RunSettings case_config(const ModelCase& c, const char* device) {
  train::RunSettings cfg = train::preset(c.task, c.attention, "small");
  const std::string max_length = std::to_string(case_info(c).max_length);
  for (auto [k, v] : {std::pair{"max_length", max_length.c_str()},
                      {"width", "16"},
                      {"layers", "2"},
                      {"heads", "2"},
                      {"expand", "2"},
                      {"dropout", "0.1"},
                      {"batch_size", "8"},
                      {"steps", "2"},
                      {"eval_every", "2"},
                      {"log_every", "1"},
                      {"warmup", "1"},
                      {"clip", "1"},
                      {"lr", "3e-3"},
                      {"device", device}})
    train::set_setting(cfg, k, v);
  train::set_setting(cfg, "norm", c.norm);
  train::set_setting(cfg, "precision", c.precision);
  cfg.model.prenorm = c.prenorm;
  cfg.model.attention.C = std::string(c.attention) == "las-chunk" ? 8 : 0;
  train::validate(cfg);
  return cfg;
}

// Runs every check of the header's comment for case c on `device` against the CPU. Tolerances are
// relative, |device - cpu| <= tol (1 + |cpu|), at float32: sums run in other orders on the device.
inline void check_model_case_on_device(const ModelCase& c, Device device) {
  namespace fs = std::filesystem;
  const char* device_name = device == Device::CUDA ? "cuda" : "cpu";
  const std::string name = case_name(c);
  const testing::RandomTokens tr = case_data(c, 24, 1), va = case_data(c, 8, 2), te = case_data(c, 8, 3);
  const double slack = precision_slack(c);

  // 1. One forward and backward of the first 8 training examples.
  {
    data::Batch b;
    const std::vector<int64_t> rows = {0, 1, 2, 3, 4, 5, 6, 7};
    tr.make_batch(rows, false, b);
    std::vector<double> loss[2];
    std::vector<NamedTensors> params;
    std::vector<std::unique_ptr<train::TaskModel>> models;
    for (const char* dev : {"cpu", device_name}) {
      models.push_back(train::build_model(case_config(c, dev), tr.info()));
      Tensor logits = models.back()->logits(b);
      REQUIRE(logits.device() == (models.size() == 1 ? Device::CPU : device));
      Tensor l = cross_entropy(logits, Tensor::from(b.labels, {b.size}, logits.device()));
      l.backward();
      loss[models.size() - 1] = l.to_doubles();
      params.push_back(models.back()->module().named_parameters());
    }
    check_close(loss[1], loss[0], 5e-4 * slack, name + ": loss of one batch");
    REQUIRE(params[0].size() == params[1].size());
    for (size_t i = 0; i < params[0].size(); ++i) {
      REQUIRE_MESSAGE(params[1][i].second.grad().defined(), name << ": no gradient for " << params[1][i].first);
      check_close(params[1][i].second.grad().to_doubles(), params[0][i].second.grad().to_doubles(), 1e-3 * slack,
                  name + ": gradient of " + params[0][i].first);
    }
  }

  // 2. Two training steps with an evaluation, then 3. the trained models' attention.
  std::vector<train::TrainResult> results;
  std::vector<std::unique_ptr<train::TaskModel>> models;
  std::string device_dir;
  for (const char* dev : {"cpu", device_name}) {
    const train::RunSettings cfg = case_config(c, dev);
    models.push_back(train::build_model(cfg, tr.info()));
    std::string dir = (fs::temp_directory_path() / ("lasgrad_model_case_" + name + "_" + dev)).string();
    std::replace(dir.begin(), dir.end(), ' ', '_');
    fs::remove_all(dir);
    fs::create_directories(dir);
    results.push_back(train::fit(*models.back(), cfg, {&tr, &va, &te}, {.run_dir = dir, .quiet = true}));
    device_dir = dir;
  }
  const train::TrainResult &cpu = results[0], &dev = results[1];
  check_close(dev.losses, cpu.losses, 2e-3 * slack, name + ": training losses");
  REQUIRE(cpu.best_step == 2);  // one evaluation, at the end: both test the final weights
  REQUIRE(dev.best_step == 2);
  check_close({dev.best_val, dev.test.loss, dev.test.accuracy}, {cpu.best_val, cpu.test.loss, cpu.test.accuracy},
              2e-3 * slack, name + ": validation accuracy, test loss and accuracy");
  // The device run's checkpoint on the CPU evaluates to the loss the device run reported; it holds no
  // bfloat16 in either precision (float32 masters).
  train::Checkpoint ck = train::load_checkpoint(device_dir + "/best.safetensors");
  CHECK(ck.settings.run.device == device);
  CHECK(name_of(kPrecisionNames, ck.settings.model.precision) == std::string(c.precision));
  for (const auto& [key, t] : ck.file.tensors) CHECK_MESSAGE(t.dtype() != DType::BF16, name << ": " << key);
  ck.settings.run.device = Device::CPU;
  auto on_cpu = train::build_model(ck.settings, te.info());
  train::load_model(ck, on_cpu->module());
  check_close({train::evaluate(*on_cpu, te, 8).loss}, {dev.test.loss}, 2e-3 * slack,
              name + ": device checkpoint on the cpu");
  if (slack > 1) {  // the bf16 checkpoint in fp32: the same weights, within bfloat16's rounding of them
    ck.settings.model.precision = Precision::Fp32;
    auto fp32 = train::build_model(ck.settings, te.info());
    train::load_model(ck, fp32->module());
    check_close({train::evaluate(*fp32, te, 8).loss}, {dev.test.loss}, 5e-2, name + ": bf16 checkpoint in fp32");
  }

  data::Batch one;
  const std::vector<int64_t> first = {1};
  te.make_batch(first, false, one);
  std::vector<Tensor> maps_cpu = models[0]->attention_maps(one), maps_dev = models[1]->attention_maps(one);
  REQUIRE(maps_cpu.size() == maps_dev.size());
  for (size_t l = 0; l < maps_cpu.size(); ++l) {
    REQUIRE(maps_dev[l].shape() == maps_cpu[l].shape());
    check_close(maps_dev[l].to_doubles(), maps_cpu[l].to_doubles(), 5e-4 * slack,
                name + ": attention of layer " + std::to_string(l));
  }
}

}  // namespace lasgrad::test
