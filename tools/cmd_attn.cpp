// `lasgrad attn`: what a trained model attends to. For example N of a split it writes, per layer, a
// grid of every head's attention matrix; the decay kernels E_c of every head with its alpha; and the
// training curves of the run from its metrics.jsonl.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/trained_run.h"
#include "train/metrics.h"
#include "tools/study/plot.h"

namespace lasgrad::tools {

namespace fs = std::filesystem;
using study::Figure;

// A T x T matrix shrunk to at most `side` x `side` by averaging blocks (attention of long tasks).
static std::vector<float> shrink(const float* m, int T, int side, int& out_T) {
  int k = (T + side - 1) / side;
  out_T = (T + k - 1) / k;
  std::vector<float> out(size_t(out_T) * out_T, 0.0f);
  for (int i = 0; i < T; ++i)
    for (int j = 0; j < T; ++j) out[size_t(i / k) * out_T + j / k] += m[size_t(i) * T + j] / float(k * k);
  return out;
}

static std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Loss, accuracy and learning rate against step, train and val, from metrics.jsonl.
static Figure curves(const std::string& path) {
  study::Series tl{"train", {}, {}, {31, 119, 180}}, vl{"val", {}, {}, {214, 39, 40}};
  study::Series ta = tl, va = vl, lr{"lr", {}, {}, {44, 160, 44}};
  for (const train::MetricsLine& m : train::read_metrics(path)) {
    const double step = double(m.step);
    if (m.split == "train") {
      tl.x.push_back(step), tl.y.push_back(m.get("loss"));
      ta.x.push_back(step), ta.y.push_back(100 * m.get("accuracy"));
      lr.x.push_back(step), lr.y.push_back(m.get("lr"));
    } else if (m.split == "val") {
      vl.x.push_back(step), vl.y.push_back(m.get("loss"));
      va.x.push_back(step), va.y.push_back(100 * m.get("accuracy"));
    }
  }
  if (tl.x.empty()) throw Error(path + " has no training lines");
  return study::line_plots({{"loss", {tl, vl}, "step", "cross-entropy", true},
                            {"accuracy", {ta, va}, "step", "accuracy %"},
                            {"learning rate", {lr}, "step", "learning rate", true}});
}

bool is_attn_file(const std::string& name) {
  static const std::regex names(R"((attention_layer\d+|query_layer\d+|decay_kernels|curves)\.(png|svg)|alphas\.txt)");
  return std::regex_match(name, names);
}

namespace {

// What the figures of one example share.
struct Example {
  const data::Dataset& ds;
  int64_t index = 0;
  int T = 0;          // the padded length
  int64_t query = 0;  // the query position of query_layer<l>
  int max_side = 512;
  std::vector<std::string> tokens;  // the axes' labels; empty: positions
};

// Every head's attention matrix A[h] (shown as sqrt(A)) of one layer, a[h T T + i T + j], in a grid.
Figure head_grid(const Example& e, const std::vector<float>& a, int H, size_t layer,
                 const std::vector<double>& alphas) {
  const int T = e.T;
  std::vector<Figure> heads;
  for (int h = 0; h < H; ++h) {
    int side = 0;
    std::vector<float> m = shrink(a.data() + size_t(h) * T * T, T, e.max_side, side);
    for (float& x : m) x = std::sqrt(std::max(0.0f, x));
    int cell = e.tokens.empty() ? std::max(1, 256 / side) : std::max(6, 256 / side);
    heads.push_back(study::heatmap(m, side, side, cell,
                                   "layer " + std::to_string(layer) + ", head " + std::to_string(h) + ": alpha " +
                                       fmt("%.3g", alphas[h]) + ", sqrt(A)",
                                   {"key", "query", double(T) / side, e.tokens, e.tokens}, 0, 1));
  }
  return study::grid(heads, H <= 4 ? H : (H + 1) / 2);
}

// The query's weights A[h, query, :] over the input: folded onto the image for pixel tasks (step t's
// weight goes to the pixel it shows; psMNIST: through its permutation), else one row per head over the keys.
Figure query_weights(const Example& e, const std::vector<float>& a, int H, size_t layer) {
  const int T = e.T;
  const std::vector<int32_t> order = e.ds.pixel_order();
  const int image_side = e.ds.info().image_side;
  if (image_side > 0 && !order.empty()) {
    std::vector<Figure> over;
    const std::vector<uint8_t> img = e.ds.image_bytes(e.index);
    std::vector<float> pic(img.begin(), img.end());
    const int cell = std::max(2, 224 / image_side);
    over.push_back(study::heatmap(pic, image_side, image_side, cell, "the input", {"", "", 1, {}, {}, true}, 0, 255));
    const int qr = static_cast<int>(order[e.query]);
    for (int h = 0; h < H; ++h) {
      std::vector<float> fold(static_cast<size_t>(image_side) * image_side, 0.0f);
      for (int t = 0; t < T && t < static_cast<int>(order.size()); ++t)
        fold[order[t]] = a[(size_t(h) * T + e.query) * T + t];
      over.push_back(study::heatmap(fold, image_side, image_side, cell,
                                    "head " + std::to_string(h) + ": query pixel (" + std::to_string(qr % image_side) +
                                        ", " + std::to_string(qr / image_side) + ")"));
    }
    return study::grid(over, static_cast<int>(over.size()) <= 5 ? static_cast<int>(over.size()) : 5);
  }
  std::vector<float> rows(static_cast<size_t>(H) * T);
  for (int h = 0; h < H; ++h)
    for (int t = 0; t < T; ++t) rows[size_t(h) * T + t] = a[(size_t(h) * T + e.query) * T + t];
  std::vector<std::string> head_names;
  for (int h = 0; h < H; ++h) head_names.push_back("head " + std::to_string(h));
  const int cell = e.tokens.empty() ? std::max(1, 768 / T) : std::max(10, 768 / T);
  return study::heatmap(rows, H, T, cell,
                        "layer " + std::to_string(layer) + ": the weights of query " + std::to_string(e.query) +
                            (e.tokens.empty() ? "" : " ('" + e.tokens[e.query] + "')") + " over the keys",
                        {"key", "", 1, e.tokens, head_names});
}

// E_c of each head of the first layer (every layer has the same rates): the multiplier of the logits.
Figure decay_kernels(const std::vector<double>& alphas, int T, int max_side) {
  std::vector<Figure> kernels;
  for (size_t h = 0; h < alphas.size(); ++h) {
    int side = std::min<int>(T, max_side);
    std::vector<float> e(size_t(side) * side, 0.0f);
    double stride = double(T) / side;  // one row/column per `stride` positions
    for (int i = 0; i < side; ++i)
      for (int j = 0; j <= i; ++j)
        e[size_t(i) * side + j] = static_cast<float>(std::exp(-alphas[h] * (i - j) * stride));
    kernels.push_back(
        study::heatmap(e, side, side, std::max(1, 256 / side),
                       "E_" + std::to_string(h) + " = exp(-alpha |i - j|), alpha " + fmt("%.3g", alphas[h]),
                       {"key position j", "query position i", stride, {}, {}}, 0, 1));
  }
  return study::grid(kernels,
                     kernels.size() <= 4 ? static_cast<int>(kernels.size()) : static_cast<int>(kernels.size() + 1) / 2);
}

cli::Flags attn_flags() {
  cli::Flags f("lasgrad attn",
               "Draw a checkpoint's attention for one example: per layer a grid of every head's attention matrix\n"
               "(row = query position, column = key position; the weights after decay, softmax and smoothing,\n"
               "shown as sqrt so small weights stay visible; the tokens along both axes when the sequence is short),\n"
               "one query's weights over the input per layer (query_layer<l>.png: over the tokens, or for pixel\n"
               "tasks folded back onto the image, beside the image), the decay kernels E_c[i,j] = exp(-alpha_c (i-j))\n"
               "of every head with its alpha, and the run's training curves from metrics.jsonl.");
  f.option("checkpoint", "", "a checkpoint written by lasgrad train (required)")
      .option("index", "0", "the example's index in the split")
      .option("split", "test", "train, val or test")
      .option("out", "", "output folder (required)")
      .option("data", "", "data folder; empty = the one the run was trained on")
      .option("max-side", "512", "matrices longer than this are averaged down to it")
      .option("query", "-1",
              "the query position of query_layer<l>.png; -1 = the last valid one (what the mean-pooled classifier's "
              "last token sees)")
      .option("max-tokens", "64", "label the axes with the tokens up to this length (else positions)")
      .option("device", "", "cpu or cuda; empty = the run's setting")
      .toggle("svg", "also write every figure as SVG beside its PNG");
  return f;
}

}  // namespace

int cmd_attn(int argc, char** argv) {
  cli::Flags f = attn_flags();
  if (!f.parse(argc, argv)) return 0;
  if (f.str("out").empty()) throw cli::UsageError("--out DIR is required");
  const int64_t index = f.integer("index"), max_side = f.integer("max-side");
  if (max_side < 8) throw cli::UsageError("--max-side must be at least 8");
  if (f.integer("query") < -1)
    throw cli::UsageError("--query must be a position >= 0, or -1 for the last, got " + f.str("query"));
  if (f.integer("max-tokens") < 0) throw cli::UsageError("--max-tokens must be >= 0, got " + f.str("max-tokens"));
  TrainedRun run = open_trained_run(f.str("checkpoint"), f);
  const data::Dataset& ds = *run.data;
  if (index < 0 || index >= ds.size())
    throw cli::UsageError("--index " + std::to_string(index) + " is outside the " + f.str("split") + " split (" +
                          std::to_string(ds.size()) + " examples)");
  data::Batch b;
  const int64_t rows[] = {index};
  ds.make_batch(rows, false, b);
  const std::string out = f.str("out");
  fs::create_directories(out);
  // out/NAME.png, and out/NAME.svg with --svg; returns what it wrote.
  std::vector<std::string> written;
  auto save = [&](const Figure& fig, const std::string& name) {
    const std::string png = out + "/" + name + ".png";
    study::write_png(png, fig);
    if (f.on("svg")) study::write_svg(out + "/" + name + ".svg", fig);
    written.push_back(f.on("svg") ? png + " (and .svg)" : png);
  };

  std::vector<Tensor> maps = run.model->attention_maps(b);
  std::vector<std::vector<double>> alphas = run.model->alphas();
  const int valid = b.lengths[0];
  Example e{ds,
            index,
            static_cast<int>(b.length),
            f.integer("query") < 0 ? valid - 1 : f.integer("query"),
            static_cast<int>(max_side),
            ds.token_texts(index)};
  if (e.query >= valid)
    throw cli::UsageError("--query " + std::to_string(e.query) + " is past the example's " + std::to_string(valid) +
                          " positions");
  std::printf("example %lld of the %s split: length %d, label %d; query position %lld\n", (long long)index,
              f.str("split").c_str(), valid, b.labels[0], (long long)e.query);
  // What the axes show: the tokens when the sequence is short enough to read, positions otherwise.
  if (static_cast<int64_t>(e.tokens.size()) > f.integer("max-tokens")) e.tokens.clear();
  e.tokens.resize(e.tokens.empty() ? 0 : e.T);
  for (size_t l = 0; l < maps.size(); ++l) {
    const int H = static_cast<int>(maps[l].dim(0));
    const std::vector<float> a = maps[l].to_floats();
    save(head_grid(e, a, H, l, alphas[l]), "attention_layer" + std::to_string(l));
    save(query_weights(e, a, H, l), "query_layer" + std::to_string(l));
  }
  std::ofstream txt(out + "/alphas.txt");
  for (size_t l = 0; l < alphas.size(); ++l) {
    txt << "layer " << l << ":";
    for (double a : alphas[l]) txt << " " << a;
    txt << "\n";
  }
  save(decay_kernels(alphas[0], e.T, e.max_side), "decay_kernels");
  written.push_back(out + "/alphas.txt");
  std::string metrics = (fs::path(f.str("checkpoint")).parent_path() / "metrics.jsonl").string();
  if (fs::exists(metrics)) save(curves(metrics), "curves");
  else std::printf("no %s next to the checkpoint: no curves\n", metrics.c_str());
  for (const auto& p : written) std::printf("wrote %s\n", p.c_str());
  return 0;
}

}  // namespace lasgrad::tools
