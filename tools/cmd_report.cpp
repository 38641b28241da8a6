// `lasgrad report RUN_DIR|SWEEP_DIR`: one self-contained HTML file (tools/report.html with the data
// embedded as JSON) that opens from disk with no server and no network. It holds the run's curves,
// settings and results (for a sweep: the summary table and every run's validation curve), and an
// attention explorer over a few examples of one run: every layer's and head's weights for a set of
// query positions, with each head's alpha, decay kernel and smoothing kernel.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "data/reader.h"
#include "engine/autograd.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/report_page.h"
#include "tools/trained_run.h"
#include "train/settings.h"
#include "train/metrics.h"
#include "tools/study/sweep.h"

namespace lasgrad::tools {

namespace fs = std::filesystem;
using json = nlohmann::json;

static std::string base64(const std::vector<uint8_t>& bytes) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = uint32_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= bytes[i + 2];
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? abc[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? abc[v & 63] : '=';
  }
  return out;
}

// A run's metrics.jsonl as curves: {"train": {"step": [...], "loss": [...], ...}, "val": {...},
// "gaps": [[from, to], ...] (steps a resume found without lines), "ended": how the run ended}.
static json read_curves(const std::string& dir) {
  json curves = {
      {"train", {{"step", json::array()}, {"loss", json::array()}, {"accuracy", json::array()}, {"lr", json::array()}}},
      {"val", {{"step", json::array()}, {"loss", json::array()}, {"accuracy", json::array()}}},
      {"gaps", json::array()}};
  std::string ended;
  int64_t last = 0;
  for (const train::MetricsLine& m : train::read_metrics(dir + "/metrics.jsonl")) {
    last = std::max(last, m.step);
    if (m.split == "gap") curves["gaps"].push_back({m.get("from"), m.get("to")});
    if (m.split == "stop") ended = "stopped at step " + std::to_string(m.step) + ": " + m.why;
    if (m.split == "test")
      ended = "finished: the best validation checkpoint (step " + std::to_string(m.step) + ") tested";
    if (m.split != "train" && m.split != "val") continue;
    json& c = curves[m.split];
    c["step"].push_back(m.step);
    for (auto& [key, values] : c.items())
      if (key != "step") values.push_back(m.get(key));
  }
  if (curves["train"]["step"].empty() && ended.empty()) throw Error(dir + "/metrics.jsonl has no training lines");
  curves["ended"] =
      ended.empty() ? "not finished: metrics up to step " + std::to_string(last) + " (interrupted, or still running)"
                    : ended;
  return curves;
}

// A run's results as the sweep reads them (study::read_run): the last step, the best validation accuracy
// and its step, the test line, the mean examples/s. NaN (not there yet) is written as null.
static json read_results(const std::string& dir) {
  const study::RunRecord r = study::read_run(dir, study::RunPlan{});
  json out = {{"steps", r.steps},
              {"best_val", r.best_val},
              {"test", r.test},
              {"test_loss", r.test_loss},
              {"examples_per_s", r.examples_per_s}};
  if (r.best_step >= 0) out["best_step"] = r.best_step;
  return out;
}

// The first `count` examples of the split through the trained model: for each layer, head and stored
// query, that query's weights over the example's valid positions, each row scaled to bytes by its
// maximum. Queries are every position when they fit in `budget` bytes per example, else evenly spaced
// ones that always include the first and the last valid position.
static json explore(TrainedRun& run, const std::string& checkpoint, const std::string& split, int64_t count,
                    int64_t budget) {
  data::Dataset& ds = *run.data;
  train::TaskModel& model = *run.model;
  const AttentionSettings& a = run.checkpoint.settings.model.attention;
  json e;
  e["checkpoint"] = checkpoint;
  e["split"] = split;
  e["task"] = ds.info().name;
  e["classes"] = ds.num_classes();
  e["image_side"] = ds.info().image_side;
  e["attention"] = name_of(kAttentionKinds, a.kind);
  e["pool"] = a.P;
  e["kernel"] = smoothing_weights(a.smoothing, a.P, a.sigma);  // empty: the box of width pool
  e["alphas"] = model.alphas();
  if (ds.info().image_side > 0) e["order"] = ds.pixel_order();
  e["examples"] = json::array();
  count = std::min<int64_t>(count, ds.size());
  for (int64_t index = 0; index < count; ++index) {
    data::Batch b;
    const int64_t rows[] = {index};
    ds.make_batch(rows, false, b);
    std::vector<Tensor> maps = model.attention_maps(b);
    std::vector<float> probs;
    {
      NoGradGuard no_grad;
      const bool was_training = model.module().training();
      model.module().eval();
      probs = model.logits(b).to_floats();
      model.module().train(was_training);
    }
    const float top = *std::max_element(probs.begin(), probs.end());
    double z = 0;
    for (float& p : probs) z += (p = std::exp(p - top));
    for (float& p : probs) p = static_cast<float>(p / z);
    const int T = static_cast<int>(b.length), valid = b.lengths[0];
    const int L = static_cast<int>(maps.size()), H = static_cast<int>(maps[0].dim(0));
    const int64_t per_query = int64_t(L) * H * valid;
    const int Q =
        static_cast<int>(std::clamp<int64_t>(budget / std::max<int64_t>(per_query, 1), std::min(valid, 2), valid));
    std::vector<int> queries(Q);
    for (int k = 0; k < Q; ++k)
      queries[k] = Q == valid ? k : static_cast<int>(std::lround(double(k) * (valid - 1) / (Q - 1)));
    std::vector<uint8_t> bytes;
    bytes.reserve(size_t(per_query) * Q);
    json scale = json::array();
    for (int l = 0; l < L; ++l) {
      const std::vector<float> a = maps[l].to_floats();  // [H, T, T]
      json sl = json::array();
      for (int h = 0; h < H; ++h) {
        json sh = json::array();
        for (int q : queries) {
          const float* row = a.data() + (size_t(h) * T + q) * T;
          const float m = *std::max_element(row, row + valid);
          sh.push_back(m);
          for (int k = 0; k < valid; ++k)
            bytes.push_back(m > 0 ? static_cast<uint8_t>(std::lround(255.0 * std::max(0.0f, row[k]) / m)) : 0);
        }
        sl.push_back(sh);
      }
      scale.push_back(sl);
    }
    json x = {{"index", index},
              {"label", b.labels[0]},
              {"length", valid},
              {"probs", probs},
              {"predicted", std::max_element(probs.begin(), probs.end()) - probs.begin()},
              {"layers", L},
              {"heads", H},
              {"queries", queries},
              {"scale", scale},
              {"weights", base64(bytes)}};
    if (ds.info().image_side > 0) {
      x["image"] = base64(ds.image_bytes(index));
    } else {
      std::vector<std::string> tokens = ds.token_texts(index);
      tokens.resize(valid);
      x["tokens"] = tokens;
    }
    e["examples"].push_back(x);
  }
  return e;
}

bool is_report(const std::string& path) {
  static const std::string head = std::string(kReportPage).substr(0, 64);  // the doctype and the comment naming it
  return fs::is_regular_file(path) && data::read_file("report", path, head.size()) == head;
}

// A sweep's summary with every run's validation curve; `run_dir` gets the run to explore: --run, or the
// first finished run.
static json sweep_page(const std::string& dir, const std::string& run, std::string& run_dir) {
  const std::string path = (fs::path(dir) / "summary.json").string();
  json summary;
  try {
    summary = json::parse(data::read_file("sweep summary", path));
  } catch (const json::exception& e) {
    throw Error(path + ": not a sweep summary: " + e.what());
  }
  if (!summary.contains("runs") || !summary["runs"].is_array() || !summary.contains("groups"))
    throw Error(path + ": not a sweep summary (no \"runs\" and \"groups\")");
  json curves = json::array();
  std::string first_done;
  for (const json& r : summary["runs"]) {
    const std::string rd = r.value("dir", "");
    const fs::path metrics = fs::path(dir) / rd / "metrics.jsonl";
    if (rd.empty() || !fs::exists(metrics)) continue;
    const json rc = read_curves((fs::path(dir) / rd).string());
    curves.push_back({{"dir", rd},
                      {"group", r.value("group", "")},
                      {"step", rc["val"]["step"]},
                      {"accuracy", rc["val"]["accuracy"]}});
    if (first_done.empty() && r.value("state", "") == "done") first_done = rd;
  }
  summary["curves"] = curves;
  const std::string chosen = run.empty() ? first_done : run;
  if (chosen.empty()) throw Error(path + ": no finished run to explore; --run names one");
  run_dir = (fs::path(dir) / chosen).string();
  if (!fs::exists(fs::path(run_dir) / "metrics.jsonl"))
    throw cli::UsageError("--run " + chosen + ": no run in " + run_dir);
  return summary;
}

int cmd_report(int argc, char** argv) {
  std::string dir;
  if (argc >= 2 && argv[1][0] != '-') dir = argv[1], --argc, ++argv;
  cli::Flags f(
      "lasgrad report RUN_DIR|SWEEP_DIR",
      "Write one self-contained HTML page (no server, no network; open it from disk) with a run's curves,\n"
      "settings and results, or a sweep's summary table and every run's validation curve, and an attention\n"
      "explorer: pick an example, a layer and a head, hover or click a query position, and see that query's\n"
      "weights over the input (tokens coloured by weight, or the image overlaid), with every head's alpha and\n"
      "decay kernel. A URL hash such as #example=1&layer=0&head=2&query=17 opens it in that state.");
  f.option("out", "", "the HTML file; empty = DIR/report.html")
      .option("run", "", "a sweep's run whose attention to explore (GROUP/seedN); empty = its first finished run")
      .option("checkpoint", "", "the checkpoint to explore; empty = the run's best.safetensors (else last.safetensors)")
      .option("split", "test", "train, val or test: the split the examples come from")
      .option("examples", "3", "explore the first N examples of the split")
      .option("max-kib", "256", "attention data per example, in KiB: longer examples keep evenly spaced queries")
      .option("data", "", "data folder; empty = the one the run was trained on")
      .option("device", "", "cpu or cuda; empty = the run's setting")
      .toggle("overwrite", "replace an existing report file");
  if (!f.parse(argc, argv)) return 0;
  if (dir.empty()) throw cli::UsageError("give the run or sweep folder: lasgrad report RUN_DIR|SWEEP_DIR");
  if (!fs::is_directory(dir)) throw cli::UsageError("'" + dir + "' is not a folder");
  const int64_t examples = f.integer("examples"), max_kib = f.integer("max-kib");
  if (examples < 1) throw cli::UsageError("--examples must be at least 1, got " + f.str("examples"));
  if (max_kib < 1) throw cli::UsageError("--max-kib must be at least 1, got " + f.str("max-kib"));
  const std::string out = f.str("out").empty() ? (fs::path(dir) / "report.html").string() : f.str("out");
  if (fs::exists(out) && !f.on("overwrite"))
    throw cli::UsageError(out + " exists; --overwrite replaces it, or --out names another file");
  // --overwrite replaces an earlier report, never another file (the run's metrics, a checkpoint, data).
  if (fs::exists(out) && !is_report(out))
    throw cli::UsageError(out +
                          " is not a report that lasgrad wrote; report replaces nothing else, even with "
                          "--overwrite: --out names another file");

  json page;
  page["source"] = dir;
  std::string run_dir = dir;
  if (fs::exists(fs::path(dir) / "summary.json")) {
    page["kind"] = "sweep";
    page["sweep"] = sweep_page(dir, f.str("run"), run_dir);
  } else if (fs::exists(fs::path(dir) / "metrics.jsonl")) {
    page["kind"] = "run";
    if (!f.str("run").empty()) throw cli::UsageError("--run picks a run of a sweep; " + dir + " is a run");
  } else {
    throw cli::UsageError("'" + dir + "' holds neither a run (metrics.jsonl) nor a sweep (summary.json)");
  }
  page["run"] = {{"dir", run_dir},
                 {"settings", train::read_run_settings(run_dir)},
                 {"results", read_results(run_dir)},
                 {"curves", read_curves(run_dir)}};

  std::string checkpoint = f.str("checkpoint");
  if (checkpoint.empty()) {
    checkpoint = (fs::path(run_dir) / "best.safetensors").string();
    if (!fs::exists(checkpoint)) checkpoint = (fs::path(run_dir) / "last.safetensors").string();
    if (!fs::exists(checkpoint))
      throw Error(run_dir + " has no best.safetensors or last.safetensors; --checkpoint names one");
  }
  TrainedRun run = open_trained_run(checkpoint, f);
  page["explorer"] = explore(run, checkpoint, f.str("split"), examples, max_kib * 1024);
  std::string text = page.dump(-1, ' ', false, json::error_handler_t::replace);
  // Inside <script>, "</" could close the element: JSON allows "<\/" for it.
  for (size_t at = text.find("</"); at != std::string::npos; at = text.find("</", at + 3)) text.insert(at + 1, "\\");
  std::string html = kReportPage;
  const std::string slot = "__LASGRAD_DATA__";
  html.replace(html.find(slot), slot.size(), text);
  data::write_file_atomic(out, html);
  std::printf("wrote %s (%.0f KiB; %lld examples of the %s split of %s)\n", out.c_str(), double(html.size()) / 1024,
              (long long)page["explorer"]["examples"].size(), f.str("split").c_str(), run_dir.c_str());
  return 0;
}

}  // namespace lasgrad::tools
