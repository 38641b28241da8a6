#include "train/config.h"

#include <cmath>
#include <cstdlib>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "engine/backend.h"
#include "data/dataset.h"
#include "data/reader.h"
#include "engine/parse.h"
#include "layers/multihead_attention.h"
#include "train/group.h"

namespace lasgrad::train {

Config::Config() {
  entries_ = {
      // What to train on.
      {"task", "listops", data::task_list()},
      {"data", "", "data directory (the task's folder or the LRA release root)"},
      {"preset", "small", "the preset the run started from (paper|small), for the record"},
      {"max_length", "0", "sequence length per document; 0 = the task's length"},
      {"pixel_scale", "unit", "pixel tasks: unit (value/255) or raw (0..255)"},
      {"difficulty", "curv_contour_length_14", "pathfinder: curv_baseline|curv_contour_length_9|curv_contour_length_14"},
      {"permutation", "bitreversal", "psmnist: bitreversal|random"},
      {"split_seed", "0", "seed of the held-out validation splits (image, pathfinder, mnist) and of a random psmnist permutation"},
      // The model (las-attention.md §4).
      {"attention", "las", "softmax|las|las-chunk"},
      {"layers", "6", "transformer blocks"},
      {"width", "256", "model width d"},
      {"heads", "8", "attention heads (must divide width)"},
      {"expand", "4", "feed-forward width = expand * width"},
      {"norm", "batch", "layer|batch"},
      {"prenorm", "false", "true: norm before each sublayer (and one after the last block); false: after"},
      {"pos", "sinusoidal", "positional encoding: sinusoidal|none"},
      {"dropout", "0", "dropout probability"},
      {"causal", "true", "causal attention (the paper's models are causal)"},
      {"pool", "5", "las: smoothing window P (odd); 1 = none"},
      {"smoothing", "box", "las: the smoothing kernel: box (average pooling over P) | gaussian (sigma, cut at 3 sigma) | weights a/b/c"},
      {"sigma", "0", "las: the gaussian's width; 0 = the standard deviation of the box of width P"},
      {"chunk", "0", "las-chunk: chunk length C (>= 1; the presets set it); 0 for the other kinds"},
      {"decay_max", "0.1", "las: B, the sharpest head's decay rate, in (0, 1)"},
      {"alpha_min", "0", "las: the gentlest decaying head's rate; 0 = 1 / sequence length"},
      {"alphas", "", "las: explicit decay rates, one per head or one for every head, comma-separated (overrides decay_max, alpha_min)"},
      {"strict_causal", "false", "las: re-mask future columns after pooling (uses the reference implementation)"},
      {"fused", "true", "the fused O(L)-memory attention kernel; false = the literal L x L reference"},
      // Optimisation.
      {"optimizer", "adamw", "adamw (decoupled weight decay) | adam (L2 added to the gradient)"},
      {"lr", "1e-3", "peak learning rate"},
      {"beta1", "0.9", "Adam beta1"},
      {"beta2", "0.999", "Adam beta2"},
      {"eps", "1e-8", "Adam epsilon"},
      {"weight_decay", "0.01", "weight decay"},
      {"no_decay", "bias,norm,embed", "parameters whose name contains one of these get no weight decay"},
      {"clip", "0", "clip gradients to this global L2 norm; 0 = off"},
      {"schedule", "cosine", "constant|cosine (linear warm-up then cosine)|plateau (reduce on val loss)"},
      {"warmup", "0", "linear warm-up steps"},
      {"min_lr", "0", "cosine / plateau floor"},
      {"plateau_factor", "0.5", "plateau: multiply the rate by this"},
      {"plateau_patience", "5", "plateau: evaluations without improvement before lowering"},
      // The loop.
      {"batch_size", "32", "examples per micro-batch"},
      {"accum", "1", "micro-batches per optimizer step (gradient accumulation)"},
      {"epochs", "1", "passes over the training split (used when steps = 0)"},
      {"steps", "0", "optimizer steps; 0 = epochs * steps per epoch"},
      {"eval_every", "0", "evaluate on val every this many steps; 0 = once per epoch"},
      {"eval_batches", "0", "batches per evaluation; 0 = the whole split"},
      {"log_every", "10", "write a metrics line every this many steps"},
      {"seed", "1", "seed of the weights, the batch order and dropout"},
      {"threads", "2", "CPU threads at most, 0.." + std::to_string(kMaxThreads) + " (the loop uses fewer while that is faster: busy cores); 0 or more than the cores = all cores. Any count gives the same bits"},
      {"device", "cpu", "cpu|cuda: where the model trains (cuda needs a build with CUDA and a GPU)"},
  };
}

Config::Entry& Config::find(const std::string& key) {
  for (auto& e : entries_)
    if (e.key == key) return e;
  throw Error("config: unknown setting '" + key + "' (lasgrad train --help lists them)");
}
const Config::Entry& Config::find(const std::string& key) const { return const_cast<Config*>(this)->find(key); }

void Config::set(const std::string& key, const std::string& value) { find(key).value = value; }

void Config::set_all(const std::map<std::string, std::string>& values) {
  for (auto& e : entries_) {
    auto it = values.find(e.key);
    if (it == values.end()) throw Error("config: setting '" + e.key + "' is missing");
    e.value = it->second;
  }
}

bool Config::has(const std::string& key) const {
  for (const auto& e : entries_)
    if (e.key == key) return true;
  return false;
}

const std::string& Config::str(const std::string& key) const { return find(key).value; }

int64_t Config::integer(const std::string& key) const {
  const std::string& v = str(key);
  int64_t x = 0;
  if (!parse_int64(v, x)) throw Error("config: " + key + " needs a whole number in the 64-bit range, got '" + v + "'");
  return x;
}

double Config::number(const std::string& key) const {
  const std::string& v = str(key);
  double x = 0;
  if (!parse_decimal(v, x)) throw Error("config: " + key + " needs a finite decimal number, got '" + v + "'");
  return x;
}

bool Config::flag(const std::string& key) const {
  const std::string& v = str(key);
  if (v == "true") return true;
  if (v == "false") return false;
  throw Error("config: " + key + " needs true or false, got '" + v + "'");
}

std::vector<std::string> Config::list(const std::string& key) const { return split_commas(str(key), "config: " + key); }

std::vector<double> Config::numbers(const std::string& key) const {
  std::vector<double> out;
  for (const auto& item : list(key)) {
    double x = 0;
    if (!parse_decimal(item, x)) throw Error("config: " + key + " needs finite decimal numbers, got '" + item + "'");
    out.push_back(x);
  }
  return out;
}

std::map<std::string, std::string> Config::values() const {
  std::map<std::string, std::string> out;
  for (const auto& e : entries_) out[e.key] = e.value;
  return out;
}

namespace {

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

std::string Config::toml() const {
  std::ostringstream out;
  out << "# lasgrad run settings: lasgrad train --config THIS_FILE [--set key=value ...] starts a run from them.\n";
  for (const auto& e : entries_)
    out << "\n# " << e.help << "\n" << e.key << " = " << (toml_literal(e.value) ? e.value : toml_string(e.value)) << "\n";
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
  const Config known;
  std::map<std::string, std::string> out;
  for (const auto& [key, node] : table) {
    const std::string k(key.str());
    const std::string where = path + ":" + std::to_string(node.source().begin.line);
    if (!known.has(k)) throw Error(where + ": '" + k + "' is not a setting (lasgrad train --help lists them)");
    if (const auto* s = node.as_string()) out[k] = s->get();
    else if (const auto* b = node.as_boolean()) out[k] = b->get() ? "true" : "false";
    else if (node.is_integer() || node.is_floating_point()) {
      const std::string t = source_text(node);
      out[k] = t.empty() ? (node.is_integer() ? std::to_string(node.as_integer()->get()) : std::to_string(node.as_floating_point()->get())) : t;
    } else {
      throw Error(where + ": '" + k + "' must be a string, a number or a boolean");
    }
  }
  return out;
}

Config config_from_toml(const std::string& path) {
  const auto values = read_config_toml(path);
  auto get = [&](const char* key, const char* fallback) {
    auto it = values.find(key);
    return it == values.end() ? std::string(fallback) : it->second;
  };
  Config c = preset(get("task", "listops"), get("attention", "las"), get("preset", "small"));
  for (const auto& [k, v] : values) c.set(k, v);
  validate(c);
  return c;
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

const std::vector<std::string>& attention_kinds() {
  static const std::vector<std::string> a = {"softmax", "las", "las-chunk"};
  return a;
}

int64_t task_length(const std::string& task) { return data::task_spec(task).length; }

static bool one_of(const std::string& v, const std::vector<std::string>& choices) {
  for (const auto& c : choices)
    if (v == c) return true;
  return false;
}

Config preset(const std::string& task, const std::string& attention, const std::string& name) {
  task_length(task);  // throws on an unknown task
  if (!one_of(attention, attention_kinds()))
    throw Error("unknown attention '" + attention + "' (softmax, las or las-chunk)");
  if (name != "paper" && name != "small") throw Error("unknown preset '" + name + "' (paper or small)");
  Config c;
  c.set("task", task);
  c.set("attention", attention);
  c.set("preset", name);
  bool mnist = task == "smnist" || task == "psmnist" || task == "sfmnist";
  c.set("pool", mnist ? "3" : "5");
  if (name == "paper") {
    // las-attention.md §4: 8 heads, dropout 0, AdamW (0.9, 0.999). ListOps and Retrieval are the
    // paper's own settings; the rest are the S4 code base's per-task defaults (batch sizes, epochs).
    struct Row {
      const char *task, *layers, *width, *norm, *prenorm, *lr, *wd, *epochs, *batch;
    };
    static const Row rows[] = {
        {"listops", "6", "256", "batch", "false", "1e-3", "0.01", "50", "50"},
        {"retrieval", "6", "256", "batch", "true", "2e-3", "0", "20", "64"},
        {"text", "6", "256", "batch", "true", "1e-3", "0.01", "32", "50"},
        {"image", "6", "256", "batch", "true", "1e-3", "0.01", "200", "50"},
        {"pathfinder", "6", "256", "batch", "true", "1e-3", "0.01", "200", "100"},
        {"pathx", "6", "256", "batch", "true", "1e-3", "0.01", "50", "32"},
        {"smnist", "6", "256", "batch", "true", "1e-3", "0.01", "100", "50"},
        {"psmnist", "6", "256", "batch", "true", "1e-3", "0.01", "100", "50"},
        {"sfmnist", "6", "256", "batch", "true", "1e-3", "0.01", "100", "50"},
    };
    const Row* row = nullptr;
    for (const Row& r : rows)
      if (task == r.task) row = &r;
    if (!row) throw Error("preset paper has no row for task '" + task + "' (train/config.cpp)");
    for (const Row& r : {*row}) {
      c.set("layers", r.layers);
      c.set("width", r.width);
      c.set("norm", r.norm);
      c.set("prenorm", r.prenorm);
      c.set("lr", r.lr);
      c.set("weight_decay", r.wd);
      c.set("epochs", r.epochs);
      c.set("batch_size", r.batch);
    }
    c.set("heads", "8");
    c.set("dropout", "0");
    c.set("schedule", "cosine");
    c.set("warmup", "1000");
    c.set("eval_every", "0");
    if (attention == "las-chunk") c.set("chunk", task == "pathx" ? "1024" : "256");
  } else {
    // Minutes on two cores: 2 blocks of width 64, 4 heads, short sequences, a fixed step budget.
    c.set("layers", "2");
    c.set("width", "64");
    c.set("heads", "4");
    c.set("expand", "2");
    c.set("norm", "layer");
    c.set("prenorm", "true");
    c.set("lr", "2e-3");
    c.set("weight_decay", "0.01");
    c.set("batch_size", "32");
    c.set("steps", "600");
    c.set("warmup", "30");
    c.set("eval_every", "100");
    c.set("eval_batches", "0");
    c.set("decay_max", "0.5");
    c.set("max_length", task == "listops" ? "128" : task == "text" || task == "retrieval" ? "256" : "0");
    if (attention == "las-chunk") c.set("chunk", "32");
    // Two threads: 1.6x one thread on this preset when the cores are free (tools/bench_threads.sh), and
    // no slower when they are not, since the loop then drops to one (the bits do not change).
    c.set("threads", "2");
  }
  return c;
}

// The settings that name one of a few choices, and the choices.
static const std::map<std::string, std::vector<std::string>>& choices() {
  static const std::map<std::string, std::vector<std::string>> all = [] {
    std::vector<std::string> tasks;
    for (const auto& t : data::tasks()) tasks.push_back(t.name);
    return std::map<std::string, std::vector<std::string>>{
        {"task", tasks},
        {"attention", attention_kinds()},
        {"norm", {"layer", "batch"}},
        {"pos", {"sinusoidal", "none"}},
        {"optimizer", {"adamw", "adam"}},
        {"schedule", {"constant", "cosine", "plateau"}},
        {"pixel_scale", {"unit", "raw"}},
        {"permutation", {"bitreversal", "random"}},
        {"device", {"cpu", "cuda"}}};
  }();
  return all;
}

static void check_choice(const Config& c, const std::string& key, const std::vector<std::string>& ok) {
  if (one_of(c.str(key), ok)) return;
  std::string all;
  for (const auto& o : ok) all += (all.empty() ? "" : ", ") + o;
  throw Error("config: " + key + " = '" + c.str(key) + "' is not one of " + all);
}

void apply_override(Config& config, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) throw Error("--set needs key=value, got '" + assignment + "'");
  const std::string key = assignment.substr(0, eq);
  config.set(key, assignment.substr(eq + 1));
  // An unknown name is a mistake in the command, like an unknown key (the rest is checked by validate).
  if (auto it = choices().find(key); it != choices().end()) check_choice(config, key, it->second);
}

int64_t sequence_length(const Config& config) {
  int64_t m = config.integer("max_length");
  return m > 0 ? m : task_length(config.str("task"));
}

std::vector<double> smoothing_kernel(const Config& c) {
  try {
    return smoothing_weights(c.str("smoothing"), c.integer("pool"), c.number("sigma"));
  } catch (const Error& e) {
    throw Error(std::string("config: ") + e.what());
  }
}

Device run_device(const Config& config) {
  const Device d = parse_device(config.str("device"), "setting device");
  std::string why;
  if (!device_available(d, &why)) throw Error("setting device = " + config.str("device") + ": " + why);
  // Each data-parallel rank drives the GPU of its local rank, round-robin where ranks outnumber GPUs
  // (docs/distributed.md).
  if (d == Device::CUDA && Group::world().size() > 1) use_cuda_device(Group::world().local_rank());
  return d;
}

void validate(const Config& c) {
  for (const auto& [key, ok] : choices()) check_choice(c, key, ok);
  for (const char* key : {"prenorm", "causal", "strict_causal", "fused"}) c.flag(key);
  for (const char* key : {"layers", "width", "heads", "expand", "batch_size", "accum", "log_every", "pool"})
    if (c.integer(key) < 1) throw Error(std::string("config: ") + key + " must be >= 1");
  for (const char* key : {"epochs", "steps", "eval_every", "eval_batches", "warmup", "threads", "max_length", "chunk",
                          "plateau_patience"})
    if (c.integer(key) < 0) throw Error(std::string("config: ") + key + " must be >= 0");
  if (c.integer("threads") > kMaxThreads)
    throw Error("config: threads must be <= " + std::to_string(kMaxThreads) + " (0 = all cores), got " + c.str("threads"));
  if (c.integer("steps") == 0 && c.integer("epochs") == 0) throw Error("config: set steps or epochs (both are 0)");
  int64_t width = c.integer("width"), heads = c.integer("heads"), L = sequence_length(c);
  if (width % heads)
    throw Error("config: heads = " + std::to_string(heads) + " does not divide width = " + std::to_string(width));
  if (c.integer("pool") % 2 == 0) throw Error("config: pool (P) must be odd, got " + c.str("pool"));
  if (c.integer("pool") > L) throw Error("config: pool = " + c.str("pool") + " is longer than the sequence (" + std::to_string(L) + ")");
  const std::vector<double> kernel = smoothing_kernel(c);
  if (static_cast<int64_t>(kernel.size()) > L)
    throw Error("config: smoothing = " + c.str("smoothing") + " spans " + std::to_string(kernel.size()) +
                " positions, more than the sequence (" + std::to_string(L) + ")");
  int64_t chunk = c.integer("chunk");
  if (chunk > L)
    throw Error("config: chunk = " + std::to_string(chunk) + " is longer than the sequence (" + std::to_string(L) + ")");
  if (c.str("schedule") == "cosine" && c.integer("steps") > 0 && c.integer("warmup") >= c.integer("steps"))
    throw Error("config: warmup = " + c.str("warmup") + " must be shorter than steps = " + c.str("steps") + " for the cosine schedule");
  if (c.str("attention") == "las-chunk" && chunk == 0) throw Error("config: attention = las-chunk needs chunk >= 1");
  if (c.str("attention") != "las-chunk" && chunk != 0)
    throw Error("config: chunk = " + c.str("chunk") + " is only for attention = las-chunk");
  if (c.str("attention") != "softmax") {
    double B = c.number("decay_max");
    if (!(B > 0 && B < 1)) throw Error("config: decay_max (B) must be in (0, 1), got " + c.str("decay_max"));
  }
  const size_t rates = c.numbers("alphas").size();
  if (rates > 1 && static_cast<int64_t>(rates) != heads)
    throw Error("config: alphas lists " + std::to_string(rates) + " rates for " + std::to_string(heads) +
                " heads (give one rate per head, or one for every head)");
  for (double a : c.numbers("alphas"))
    if (a < 0) throw Error("config: alphas must be >= 0");
  double p = c.number("dropout");
  if (!(p >= 0 && p < 1)) throw Error("config: dropout must be in [0, 1)");
  if (!(c.number("lr") > 0)) throw Error("config: lr must be > 0");
  if (c.number("weight_decay") < 0 || c.number("clip") < 0) throw Error("config: weight_decay and clip must be >= 0");
  for (const char* key : {"beta1", "beta2"}) {
    double b = c.number(key);
    if (!(b >= 0 && b < 1)) throw Error(std::string("config: ") + key + " must be in [0, 1)");
  }
}

}  // namespace lasgrad::train
