#include "train/checkpoint.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "engine/parse.h"
#include "train/group.h"  // hash_bytes

namespace lasgrad::train {

static const char* kFormat = "lasgrad-checkpoint-1";

static std::string exact(double v) {  // round-trips every double
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// FNV-1a of a tensor's bytes, as 16 hex digits: stored per tensor, so that a flipped bit is found on load.
static std::string checksum(const Tensor& host) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)hash_bytes(host.raw(), host.nbytes()));
  return buf;
}

static bool all_finite(const Tensor& host) {
  if (host.dtype() == DType::F32) {
    const float* p = host.data<float>();
    for (int64_t i = 0; i < host.numel(); ++i)
      if (!std::isfinite(p[i])) return false;
  } else if (host.dtype() == DType::F64) {
    const double* p = host.data<double>();
    for (int64_t i = 0; i < host.numel(); ++i)
      if (!std::isfinite(p[i])) return false;
  }
  return true;
}

void save_checkpoint(const std::string& path, const Module& model, const Adam* optimizer, const RunSettings& settings,
                     const TrainState& s) {
  NamedTensors tensors;
  for (auto& [name, t] : model.named_parameters()) tensors.emplace_back("model." + name, t);
  for (auto& [name, t] : model.named_buffers()) tensors.emplace_back("model." + name, t);
  if (optimizer)
    for (auto& nt : optimizer->state()) tensors.push_back(nt);
  std::map<std::string, std::string> meta = {
      {"format", kFormat},
      {"step", std::to_string(s.step)},
      {"epoch", std::to_string(s.epoch)},
      {"batch", std::to_string(s.batch)},
      {"rng", std::to_string(s.rng)},
      {"schedule.scale", exact(s.schedule.scale)},
      {"schedule.best", exact(s.schedule.best)},
      {"schedule.bad", std::to_string(s.schedule.bad)},
      {"schedule.seen", s.schedule.seen ? "1" : "0"},
      {"best_val", exact(s.best_val)},
      {"best_step", std::to_string(s.best_step)},
      {"window.loss", exact(s.window_loss)},
      {"window.correct", std::to_string(s.window_correct)},
      {"window.examples", std::to_string(s.window_examples)},
      {"window.steps", std::to_string(s.window_steps)},
      {"data", s.data},
      {"data_dir", s.data_dir},
      {"ranks", std::to_string(s.ranks)},
  };
  for (const auto& [key, value] : setting_values(settings)) meta["config." + key] = value;
  // Each tensor comes to the host once, for its checks and the file.
  for (auto& [name, t] : tensors) {
    const Tensor host = t = t.to(Device::CPU);
    if (!all_finite(host))
      throw Error("checkpoint " + path + " not written: " + name +
                  " holds NaN or Inf values (the weights diverged at step " + std::to_string(s.step) + ")");
    meta["checksum." + name] = checksum(host);
  }
  save_safetensors(path, tensors, meta);
}

// The tensors: each as written (checkpoints written before checksums were stored have none), finite.
static void check_tensors(const SafeTensors& file, const std::string& path) {
  const auto& meta = file.metadata;
  size_t sums = 0;
  for (const auto& [key, value] : meta) sums += key.rfind("checksum.", 0) == 0;
  for (const auto& [name, t] : file.tensors) {
    if (sums > 0) {
      auto it = meta.find("checksum." + name);
      if (it == meta.end()) throw Error(path + ": " + name + " has no checksum in __metadata__ (the file was altered)");
      if (it->second != checksum(t))
        throw Error(path + ": " + name + " does not match its checksum (its bytes were altered or corrupted)");
    }
    if (!all_finite(t)) throw Error(path + ": " + name + " holds NaN or Inf values");
  }
  if (sums > file.tensors.size()) throw Error(path + ": __metadata__ holds checksums of tensors the file lacks");
}

Checkpoint load_checkpoint(const std::string& path) {
  Checkpoint c;
  c.file = load_safetensors(path);
  const auto& meta = c.file.metadata;
  auto get = [&](const std::string& key) -> const std::string& {
    auto it = meta.find(key);
    if (it == meta.end()) throw Error(path + ": not a lasgrad checkpoint (no '" + key + "' in __metadata__)");
    return it->second;
  };
  if (get("format") != kFormat) throw Error(path + ": unknown checkpoint format '" + get("format") + "'");
  // Every field is checked: a value out of its range would resume on garbage.
  auto integer = [&](const std::string& key, int64_t lo = 0) {
    const std::string& v = get(key);
    int64_t x = 0;
    if (!parse_int64(v, x)) throw Error(path + ": __metadata__ '" + key + "' is not a whole number: '" + v + "'");
    if (x < lo) throw Error(path + ": __metadata__ '" + key + "' = " + v + " is below " + std::to_string(lo));
    return x;
  };
  auto number = [&](const std::string& key) {
    const std::string& v = get(key);
    double x = 0;
    if (!parse_decimal(v, x)) throw Error(path + ": __metadata__ '" + key + "' is not a finite number: '" + v + "'");
    return x;
  };
  TrainState& s = c.state;
  s.step = integer("step");
  s.epoch = integer("epoch");
  s.batch = integer("batch");
  {
    const std::string& v = get("rng");
    errno = 0;
    char* end = nullptr;
    s.rng = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || *end || errno == ERANGE)
      throw Error(path + ": __metadata__ 'rng' is not an unsigned 64-bit number: '" + v + "'");
  }
  const int64_t seen = integer("schedule.seen");
  if (seen > 1) throw Error(path + ": __metadata__ 'schedule.seen' must be 0 or 1, got " + std::to_string(seen));
  s.schedule = {number("schedule.scale"), number("schedule.best"), integer("schedule.bad"), seen != 0};
  if (!(s.schedule.scale > 0)) throw Error(path + ": __metadata__ 'schedule.scale' must be > 0");
  s.best_val = number("best_val");
  s.best_step = integer("best_step", -1);
  if (!(s.best_val == -1 || (s.best_val >= 0 && s.best_val <= 1)) || s.best_step > s.step)
    throw Error(path + ": __metadata__ best_val = " + get("best_val") + " at best_step = " + get("best_step") +
                " is not a validation accuracy of this run (step " + get("step") + ")");
  s.window_loss = number("window.loss");
  s.window_correct = integer("window.correct");
  s.window_examples = integer("window.examples");
  s.window_steps = integer("window.steps");
  s.data = meta.count("data") ? meta.at("data") : "";
  s.data_dir = meta.count("data_dir") ? meta.at("data_dir") : "";
  s.ranks = meta.count("ranks") ? integer("ranks", 1) : 1;
  if (s.window_correct > s.window_examples)
    throw Error(path + ": __metadata__ window.correct = " + get("window.correct") +
                " exceeds window.examples = " + get("window.examples"));
  // Settings added after a checkpoint was written take the value every earlier run had: device (before
  // GPU training: the CPU), smoothing and sigma (before other kernels: the box), precision (before bf16:
  // fp32). Any other gap is refused.
  static const std::map<std::string, std::string> added = {
      {"device", "cpu"}, {"smoothing", "box"}, {"sigma", "0"}, {"precision", "fp32"}};
  std::map<std::string, std::string> values;
  for (const auto& row : setting_rows()) {
    auto old = added.find(row.key);
    values[row.key] = old != added.end() && !meta.count("config." + row.key) ? old->second : get("config." + row.key);
  }
  try {
    c.settings = settings_from_values(values);
    validate(c.settings);
  } catch (const Error& e) {
    throw Error(path + ": the settings it holds are not valid: " + e.what());
  }
  check_tensors(c.file, path);
  return c;
}

void load_model(const Checkpoint& ckpt, Module& model) {
  NamedTensors all = model.named_parameters();
  for (auto& nt : model.named_buffers()) all.push_back(nt);
  for (auto& [name, t] : all) {
    const Tensor& src = ckpt.file.at("model." + name);
    if (src.shape() != t.shape())
      throw Error(ckpt.file.path + ": model." + name + " has shape " + shape_str(src.shape()) + ", the model expects " +
                  shape_str(t.shape()));
    t.copy_from(src);
  }
  size_t in_file = 0;
  for (const auto& [name, t] : ckpt.file.tensors) in_file += name.rfind("model.", 0) == 0;
  if (in_file != all.size())
    throw Error(ckpt.file.path + ": holds " + std::to_string(in_file) + " model tensors, the model has " +
                std::to_string(all.size()) + " (a different configuration?)");
}

}  // namespace lasgrad::train
