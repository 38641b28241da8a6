#include "train/settings.h"

#include <algorithm>
#include <charconv>
#include <cctype>
#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "data/reader.h"
#include "engine/backend.h"
#include "engine/parse.h"
#include "layers/multihead_attention.h"
#include "train/group.h"

namespace lasgrad::train {

namespace {

[[noreturn]] void refuse(const std::string& key, const std::string& need, const std::string& got) {
  throw Error("config: " + key + " " + need + ", got '" + got + "'");
}

// Shortest text that reads back as the same double ("0.002", "1e-08").
std::string number_text(double x) {
  char buf[32];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, x).ptr);
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

// Row makers. `field` is a generic lambda giving the member of a RunSettings (const or not).
#define FIELD(path) \
  [](auto& s) -> auto& { return s.path; }

template <class F>
SettingRow integer(const char* key, F field, int64_t lo, int64_t hi, std::string help, bool odd = false) {
  return {key, std::move(help),
          [=](RunSettings& s, const std::string& v) {
            int64_t x = 0;
            if (!parse_int64(v, x)) refuse(key, "needs a whole number in the 64-bit range", v);
            if (x < lo) refuse(key, "must be >= " + std::to_string(lo), v);
            if (x > hi) refuse(key, "must be <= " + std::to_string(hi), v);
            if (odd && x % 2 == 0) refuse(key, "must be odd", v);
            field(s) = x;
          },
          [=](const RunSettings& s) { return std::to_string(field(s)); }};
}

// A number with `ok` its range, `range` that range in words ("in (0, 1)").
template <class F, class Ok>
SettingRow number(const char* key, F field, Ok ok, std::string range, std::string help) {
  return {key, std::move(help),
          [=](RunSettings& s, const std::string& v) {
            double x = 0;
            if (!parse_decimal(v, x)) refuse(key, "needs a finite decimal number", v);
            if (!ok(x)) refuse(key, "must be " + range, v);
            field(s) = x;
          },
          [=](const RunSettings& s) { return number_text(field(s)); }};
}
auto any_number = [](double) { return true; };

template <class F>
SettingRow flag(const char* key, F field, std::string help) {
  return {key, std::move(help),
          [=](RunSettings& s, const std::string& v) {
            if (v != "true" && v != "false") refuse(key, "needs true or false", v);
            field(s) = v == "true";
          },
          [=](const RunSettings& s) { return std::string(field(s) ? "true" : "false"); }};
}

template <class F>
SettingRow text(const char* key, F field, std::string help, std::vector<std::string> choices = {}) {
  return {key, std::move(help),
          [=](RunSettings& s, const std::string& v) {
            if (!choices.empty() && std::find(choices.begin(), choices.end(), v) == choices.end())
              throw Error("config: " + std::string(key) + " = '" + v + "' is not one of " + join(choices));
            field(s) = v;
          },
          [=](const RunSettings& s) { return field(s); }};
}

// One of an enum's names (its table: engine/names.h).
template <class F, class E, size_t N>
SettingRow choice(const char* key, F field, const EnumName<E> (&table)[N], std::string help) {
  return {key, names_list(table, "|") + ": " + help,
          [=, &table](RunSettings& s, const std::string& v) {
            field(s) = parse_name(table, v, "config: " + std::string(key));
          },
          [=, &table](const RunSettings& s) { return std::string(name_of(table, field(s))); }};
}

template <class F>
SettingRow words(const char* key, F field, std::string help) {
  return {key, std::move(help),
          [=](RunSettings& s, const std::string& v) { field(s) = split_commas(v, "config: " + std::string(key)); },
          [=](const RunSettings& s) { return join(field(s)); }};
}

template <class F>
SettingRow numbers(const char* key, F field, std::string help) {
  return {key, std::move(help),
          [=](RunSettings& s, const std::string& v) {
            std::vector<double> out;
            for (const auto& item : split_commas(v, "config: " + std::string(key))) {
              double x = 0;
              if (!parse_decimal(item, x)) refuse(key, "needs finite decimal numbers", item);
              if (x < 0) refuse(key, "must be >= 0", item);
              out.push_back(x);
            }
            field(s) = out;
          },
          [=](const RunSettings& s) {
            std::vector<std::string> items;
            for (double x : field(s)) items.push_back(number_text(x));
            return join(items);
          }};
}

// The smoothing spec is checked as it is set (its weights parse); its width against the sequence in validate.
SettingRow smoothing() {
  SettingRow r = text(
      "smoothing", FIELD(model.attention.smoothing),
      "las: the smoothing kernel: box (average pooling over P) | gaussian (sigma, cut at 3 sigma) | weights a/b/c");
  r.set = [](RunSettings& s, const std::string& v) {
    try {
      smoothing_weights(v, 1, 0.0);
    } catch (const Error& e) {
      throw Error(std::string("config: ") + e.what());
    }
    s.model.attention.smoothing = v;
  };
  return r;
}

std::vector<std::string> task_names() {
  std::vector<std::string> out;
  for (const auto& t : data::tasks()) out.push_back(t.name);
  return out;
}

std::vector<SettingRow> make_rows() {
  constexpr int64_t kMax = INT64_MAX, kMin = INT64_MIN;
  auto positive = [](double x) { return x > 0; };
  auto non_negative = [](double x) { return x >= 0; };
  auto unit_open = [](double x) { return x > 0 && x < 1; };
  auto unit_half_open = [](double x) { return x >= 0 && x < 1; };
  return {
      // What to train on.
      text("task", FIELD(data.task), data::task_list(), task_names()),
      text("data", FIELD(data.data), "data directory (the task's folder or the LRA release root)"),
      text("preset", FIELD(data.preset), "the preset the run started from (paper|small), for the record",
           {"paper", "small"}),
      integer("max_length", FIELD(data.max_length), 0, kMax, "sequence length per document; 0 = the task's length"),
      choice("pixel_scale", FIELD(data.pixel_scale), data::kPixelNames,
             "pixel tasks: value/255 (unit) or 0..255 (raw)"),
      text("difficulty", FIELD(data.difficulty),
           "pathfinder: curv_baseline|curv_contour_length_9|curv_contour_length_14"),
      text("permutation", FIELD(data.permutation), "psmnist: bitreversal|random", {"bitreversal", "random"}),
      integer("split_seed", FIELD(data.split_seed), kMin, kMax,
              "seed of the held-out validation splits (image, pathfinder, mnist) and of a random psmnist permutation"),
      // The model (las-attention.md §4).
      choice("attention", FIELD(model.attention.kind), kAttentionKinds, "the attention kind"),
      integer("layers", FIELD(model.layers), 1, kMax, "transformer blocks"),
      integer("width", FIELD(model.width), 1, kMax, "model width d"),
      integer("heads", FIELD(model.attention.heads), 1, kMax, "attention heads (must divide width)"),
      integer("expand", FIELD(model.expand), 1, kMax, "feed-forward width = expand * width"),
      choice("norm", FIELD(model.norm), kNormNames, "the normalisation"),
      flag("prenorm", FIELD(model.prenorm),
           "true: norm before each sublayer (and one after the last block); false: after"),
      choice("pos", FIELD(model.positions), kPositionNames, "positional encoding (the field: positions)"),
      number("dropout", FIELD(model.dropout), unit_half_open, "in [0, 1)", "dropout probability"),
      flag("causal", FIELD(model.attention.causal), "causal attention (the paper's models are causal)"),
      integer("pool", FIELD(model.attention.P), 1, kMax, "las: smoothing window P (odd); 1 = none (the field: P)",
              true),
      smoothing(),
      number("sigma", FIELD(model.attention.sigma), non_negative, ">= 0",
             "las: the gaussian's width; 0 = the standard deviation of the box of width P"),
      integer("chunk", FIELD(model.attention.C), 0, kMax,
              "las-chunk: chunk length C (>= 1; the presets set it); 0 for the other kinds (the field: C)"),
      number("decay_max", FIELD(model.attention.B), unit_open, "in (0, 1)",
             "las: B, the sharpest head's decay rate, in (0, 1) (the field: B)"),
      number("alpha_min", FIELD(model.attention.alpha_min), non_negative, ">= 0",
             "las: the gentlest decaying head's rate; 0 = 1 / sequence length"),
      numbers("alphas", FIELD(model.attention.alphas),
              "las: explicit decay rates, one per head or one for every head, comma-separated (overrides decay_max, "
              "alpha_min)"),
      flag("strict_causal", FIELD(model.attention.strict_causal),
           "las: re-mask future columns after pooling (uses the reference implementation)"),
      flag("fused", FIELD(model.attention.fused),
           "the fused O(L)-memory attention kernel; false = the literal L x L reference"),
      choice("precision", FIELD(model.precision), kPrecisionNames,
             "fp32, or bf16: matrix products and attention from bfloat16 operands with float32 sums; float32 "
             "weights, optimizer, norms and loss (docs/training.md, Precision)"),
      // Optimisation.
      choice("optimizer", FIELD(train.adam.decoupled), kOptimizerNames,
             "decoupled weight decay (adamw) or L2 added to the gradient (adam)"),
      number("lr", FIELD(train.schedule.lr), positive, "> 0", "peak learning rate"),
      number("beta1", FIELD(train.adam.beta1), unit_half_open, "in [0, 1)", "Adam beta1"),
      number("beta2", FIELD(train.adam.beta2), unit_half_open, "in [0, 1)", "Adam beta2"),
      number("eps", FIELD(train.adam.eps), any_number, "", "Adam epsilon"),
      number("weight_decay", FIELD(train.adam.weight_decay), non_negative, ">= 0", "weight decay"),
      words("no_decay", FIELD(train.no_decay), "parameters whose name contains one of these get no weight decay"),
      number("clip", FIELD(train.clip), non_negative, ">= 0", "clip gradients to this global L2 norm; 0 = off"),
      choice("schedule", FIELD(train.schedule.kind), kScheduleNames,
             "after the linear warm-up: constant, cosine, or reduced on a val loss plateau"),
      integer("warmup", FIELD(train.schedule.warmup), 0, kMax, "linear warm-up steps"),
      number("min_lr", FIELD(train.schedule.min_lr), non_negative, ">= 0", "cosine / plateau floor"),
      number("plateau_factor", FIELD(train.schedule.factor), unit_open, "in (0, 1)",
             "plateau: multiply the rate by this (the field: schedule.factor)"),
      integer("plateau_patience", FIELD(train.schedule.patience), 0, kMax,
              "plateau: evaluations without improvement before lowering (the field: schedule.patience)"),
      // The loop.
      integer("batch_size", FIELD(train.batch_size), 1, kMax, "examples per micro-batch"),
      integer("accum", FIELD(train.accum), 1, kMax, "micro-batches per optimizer step (gradient accumulation)"),
      integer("epochs", FIELD(train.epochs), 0, kMax, "passes over the training split (used when steps = 0)"),
      integer("steps", FIELD(train.steps), 0, kMax, "optimizer steps; 0 = epochs * steps per epoch"),
      integer("eval_every", FIELD(train.eval_every), 0, kMax,
              "evaluate on val every this many steps; 0 = once per epoch"),
      integer("eval_batches", FIELD(train.eval_batches), 0, kMax, "batches per evaluation; 0 = the whole split"),
      integer("log_every", FIELD(train.log_every), 1, kMax, "write a metrics line every this many steps"),
      integer("seed", FIELD(train.seed), kMin, kMax, "seed of the weights, the batch order and dropout"),
      integer("threads", FIELD(run.threads), 0, kMaxThreads,
              "CPU threads at most, 0.." + std::to_string(kMaxThreads) +
                  " (the loop uses fewer while that is faster: busy cores); 0 or more than the cores = all cores. "
                  "Any count gives the same bits"),
      choice("device", FIELD(run.device), kDeviceNames,
             "where the model trains (cuda needs a build with CUDA and a GPU)"),
  };
}

#undef FIELD

// Whether `v` is, as written, a TOML integer, float or boolean (so it can stand unquoted).
bool toml_literal(const std::string& v) {
  if (v == "true" || v == "false") return true;
  size_t i = v.size() > 0 && (v[0] == '-' || v[0] == '+') ? 1 : 0;
  auto digits = [&](bool leading_zero_ok) {
    const size_t start = i;
    while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i]))) ++i;
    if (i == start) return false;
    return leading_zero_ok || v[start] != '0' || i - start == 1;
  };
  if (!digits(false)) return false;
  if (i < v.size() && v[i] == '.') {
    ++i;
    if (!digits(true)) return false;
  }
  if (i < v.size() && (v[i] == 'e' || v[i] == 'E')) {
    ++i;
    if (i < v.size() && (v[i] == '-' || v[i] == '+')) ++i;
    if (!digits(true)) return false;
  }
  return i == v.size();
}

std::string toml_string(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else out += c;
  }
  return out + "\"";
}

}  // namespace

const std::vector<SettingRow>& setting_rows() {
  static const std::vector<SettingRow> rows = make_rows();
  return rows;
}

bool is_setting(const std::string& key) {
  for (const auto& r : setting_rows())
    if (r.key == key) return true;
  return false;
}

const SettingRow& setting_row(const std::string& key) {
  for (const auto& r : setting_rows())
    if (r.key == key) return r;
  throw Error("config: unknown setting '" + key + "' (lasgrad train --help lists them)");
}

void set_setting(RunSettings& s, const std::string& key, const std::string& value) { setting_row(key).set(s, value); }

std::string get_setting(const RunSettings& s, const std::string& key) { return setting_row(key).get(s); }

std::map<std::string, std::string> setting_values(const RunSettings& s) {
  std::map<std::string, std::string> out;
  for (const auto& r : setting_rows()) out[r.key] = r.get(s);
  return out;
}

RunSettings settings_from_values(const std::map<std::string, std::string>& values) {
  RunSettings s;
  for (const auto& r : setting_rows()) {
    auto it = values.find(r.key);
    if (it == values.end()) throw Error("config: setting '" + r.key + "' is missing");
    r.set(s, it->second);
  }
  return s;
}

std::string settings_toml(const RunSettings& s) {
  std::ostringstream out;
  out << "# lasgrad run settings: lasgrad train --config THIS_FILE [--set key=value ...] starts a run from them.\n";
  for (const auto& r : setting_rows()) {
    const std::string v = r.get(s);
    out << "\n# " << r.help << "\n" << r.key << " = " << (toml_literal(v) ? v : toml_string(v)) << "\n";
  }
  return out.str();
}

std::map<std::string, std::string> read_config_toml(const std::string& path) {
  std::string text = data::read_file("settings file", path);
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // a UTF-8 byte order mark, which TOML allows
  toml::table table;
  try {
    table = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw Error(path + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  // The text of a node as written (numbers keep "1e-3" rather than becoming 0.001).
  std::vector<std::string> lines;
  std::istringstream all(text);
  for (std::string line; std::getline(all, line);) lines.push_back(line);
  auto source_text = [&](const toml::node& n) {
    const auto& r = n.source();
    if (r.begin.line != r.end.line || r.begin.line == 0 || r.begin.line > lines.size()) return std::string();
    const std::string& line = lines[r.begin.line - 1];
    return line.substr(r.begin.column - 1, r.end.column - r.begin.column);
  };
  std::map<std::string, std::string> out;
  for (const auto& [key, node] : table) {
    const std::string k(key.str());
    const std::string where = path + ":" + std::to_string(node.source().begin.line);
    if (!is_setting(k)) throw Error(where + ": '" + k + "' is not a setting (lasgrad train --help lists them)");
    if (const auto* s = node.as_string()) out[k] = s->get();
    else if (const auto* b = node.as_boolean()) out[k] = b->get() ? "true" : "false";
    else if (node.is_integer() || node.is_floating_point()) {
      const std::string t = source_text(node);
      out[k] = t.empty() ? (node.is_integer() ? std::to_string(node.as_integer()->get())
                                              : std::to_string(node.as_floating_point()->get()))
                         : t;
    } else {
      throw Error(where + ": '" + k + "' must be a string, a number or a boolean");
    }
  }
  return out;
}

std::map<std::string, std::string> read_run_settings(const std::string& dir) {
  const std::string toml_path = dir + "/config.toml";
  if (std::filesystem::exists(toml_path)) return read_config_toml(toml_path);
  std::map<std::string, std::string> out;
  std::ifstream in(dir + "/config.txt");
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find(" = ");
    if (eq == std::string::npos) continue;
    std::string v = line.substr(eq + 3);
    const auto hash = v.find("    # ");
    if (hash != std::string::npos) v = v.substr(0, hash);
    out[line.substr(0, eq)] = v;
  }
  return out;
}

int64_t task_length(const std::string& task) { return data::task_spec(task).length; }

namespace {

// las-attention.md §4: 8 heads, dropout 0, AdamW (0.9, 0.999), cosine with 1000 warm-up steps. ListOps
// and Retrieval are the paper's own settings; the rest are the S4 code base's per-task defaults.
void paper_preset(RunSettings& s) {
  struct Row {
    const char* task;
    bool prenorm;
    double lr, weight_decay;
    int64_t epochs, batch_size;
  };
  static const Row rows[] = {
      {"listops", false, 1e-3, 0.01, 50, 50},     {"retrieval", true, 2e-3, 0, 20, 64},
      {"text", true, 1e-3, 0.01, 32, 50},         {"image", true, 1e-3, 0.01, 200, 50},
      {"pathfinder", true, 1e-3, 0.01, 200, 100}, {"pathx", true, 1e-3, 0.01, 50, 32},
      {"smnist", true, 1e-3, 0.01, 100, 50},      {"psmnist", true, 1e-3, 0.01, 100, 50},
      {"sfmnist", true, 1e-3, 0.01, 100, 50},
  };
  const Row* row = nullptr;
  for (const Row& r : rows)
    if (s.data.task == r.task) row = &r;
  if (!row) throw Error("preset paper has no row for task '" + s.data.task + "' (train/settings.cpp)");
  s.model.layers = 6;
  s.model.width = 256;
  s.model.norm = NormKind::Batch;
  s.model.prenorm = row->prenorm;
  s.train.schedule.lr = row->lr;
  s.train.adam.weight_decay = row->weight_decay;
  s.train.epochs = row->epochs;
  s.train.batch_size = row->batch_size;
  s.model.attention.heads = 8;
  s.model.dropout = 0;
  s.train.schedule.kind = ScheduleKind::Cosine;
  s.train.schedule.warmup = 1000;
  s.train.eval_every = 0;
  if (s.model.attention.kind == AttentionKind::LasChunk) s.model.attention.C = s.data.task == "pathx" ? 1024 : 256;
}

// Minutes on two cores: 2 blocks of width 64, 4 heads, short sequences, a fixed step budget.
void small_preset(RunSettings& s) {
  const std::string& task = s.data.task;
  s.model.layers = 2;
  s.model.width = 64;
  s.model.attention.heads = 4;
  s.model.expand = 2;
  s.model.norm = NormKind::Layer;
  s.model.prenorm = true;
  s.train.schedule.lr = 2e-3;
  s.train.adam.weight_decay = 0.01;
  s.train.batch_size = 32;
  s.train.steps = 600;
  s.train.schedule.warmup = 30;
  s.train.eval_every = 100;
  s.train.eval_batches = 0;
  s.model.attention.B = 0.5;
  s.data.max_length = task == "listops" ? 128 : task == "text" || task == "retrieval" ? 256 : 0;
  if (s.model.attention.kind == AttentionKind::LasChunk) s.model.attention.C = 32;
  // Two threads: 1.6x one thread on this preset when the cores are free (tools/bench/bench_threads.sh), and
  // no slower when they are not, since the loop then drops to one (the bits do not change).
  s.run.threads = 2;
}

}  // namespace

RunSettings preset(const std::string& task, const std::string& attention, const std::string& name) {
  task_length(task);  // throws on an unknown task
  RunSettings s;
  s.data.task = task;
  s.model.attention.kind = parse_name(kAttentionKinds, attention, "attention");
  if (name != "paper" && name != "small") throw Error("unknown preset '" + name + "' (paper or small)");
  s.data.preset = name;
  const bool mnist = task == "smnist" || task == "psmnist" || task == "sfmnist";
  s.model.attention.P = mnist ? 3 : 5;
  if (name == "paper") paper_preset(s);
  else small_preset(s);
  return s;
}

void apply_override(RunSettings& s, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) throw Error("--set needs key=value, got '" + assignment + "'");
  set_setting(s, assignment.substr(0, eq), assignment.substr(eq + 1));
}

RunSettings settings_from_toml(const std::string& path) {
  const auto values = read_config_toml(path);
  auto get = [&](const char* key, const char* fallback) {
    auto it = values.find(key);
    return it == values.end() ? std::string(fallback) : it->second;
  };
  try {
    RunSettings s = preset(get("task", "listops"), get("attention", "las"), get("preset", "small"));
    for (const auto& [k, v] : values) set_setting(s, k, v);
    validate(s);
    return s;
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

int64_t sequence_length(const RunSettings& s) {
  return s.data.max_length > 0 ? s.data.max_length : task_length(s.data.task);
}

Device run_device(const RunSettings& s) {
  const Device d = s.run.device;
  std::string why;
  if (!device_available(d, &why)) throw Error("setting device = " + std::string(device_name(d)) + ": " + why);
  // Each data-parallel rank drives the GPU of its local rank, round-robin where ranks outnumber GPUs
  // (docs/distributed.md).
  if (d == Device::CUDA && Group::world().size() > 1) use_cuda_device(Group::world().local_rank());
  return d;
}

void validate(const RunSettings& s) {
  const AttentionSettings& a = s.model.attention;
  const std::string L = std::to_string(sequence_length(s));
  auto refuse_if = [](bool bad, const std::string& why) {
    if (bad) throw Error("config: " + why);
  };
  refuse_if(s.train.steps == 0 && s.train.epochs == 0, "set steps or epochs (both are 0)");
  refuse_if(a.P > sequence_length(s), "pool = " + std::to_string(a.P) + " is longer than the sequence (" + L + ")");
  refuse_if(a.C > sequence_length(s), "chunk = " + std::to_string(a.C) + " is longer than the sequence (" + L + ")");
  refuse_if(a.kind != AttentionKind::LasChunk && a.C != 0,
            "chunk = " + std::to_string(a.C) + " is only for attention = las-chunk");
  refuse_if(
      s.train.schedule.kind == ScheduleKind::Cosine && s.train.steps > 0 && s.train.schedule.warmup >= s.train.steps,
      "warmup = " + std::to_string(s.train.schedule.warmup) +
          " must be shorter than steps = " + std::to_string(s.train.steps) + " for the cosine schedule");
  // The attention's own rules (heads dividing width, a chunk for las-chunk, the decay rates, the
  // smoothing kernel) are the layer's: resolve_options checks them, as it does for every model.
  AttentionSettings at_length = a;
  at_length.max_len = sequence_length(s);
  AttentionOptions o;
  try {
    o = resolve_options(s.model.width, at_length);
  } catch (const Error& e) {
    throw Error(std::string("config: ") + e.what());
  }
  refuse_if(o.P > sequence_length(s), "smoothing = " + a.smoothing + " spans " + std::to_string(o.P) +
                                          " positions, more than the sequence (" + L + ")");
}

}  // namespace lasgrad::train
