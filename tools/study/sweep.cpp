#include "tools/study/sweep.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "data/baselines.h"
#include "data/reader.h"
#include "engine/parse.h"
#include "train/metrics.h"
#include "tools/study/plot.h"
#include "train/trainer.h"

namespace lasgrad::study {

namespace fs = std::filesystem;

namespace {

// The built-in variants (issue: the paper's comparisons and ablations), each as settings over the preset.
const std::vector<Variant>& builtins() {
  static const std::vector<Variant> v = {
      {"softmax", {{"attention", "softmax"}}},
      {"las", {{"attention", "las"}}},
      {"las-chunk", {{"attention", "las-chunk"}}},
      {"local-only", {{"attention", "las"}, {"pool", "1"}}},                // the decay without smoothing
      {"smooth-only", {{"attention", "las"}, {"alphas", "0"}}},             // smoothing without decay: every alpha 0
      {"las-gaussian", {{"attention", "las"}, {"smoothing", "gaussian"}}},  // sigma of the box of width P
  };
  return v;
}

// "k=v,k=v" where a piece without '=' continues the previous value (alphas=0,0.1).
Settings parse_settings(const std::string& text, const std::string& what) {
  Settings out;
  std::stringstream in(text);
  for (std::string piece; std::getline(in, piece, ',');) {
    const auto eq = piece.find('=');
    if (eq == std::string::npos) {
      if (out.empty()) throw Error(what + ": '" + piece + "' is not key=value");
      out.back().second += "," + piece;
    } else {
      if (eq == 0) throw Error(what + ": '" + piece + "' has no key");
      out.emplace_back(piece.substr(0, eq), piece.substr(eq + 1));
    }
  }
  if (out.empty()) throw Error(what + ": no settings");
  return out;
}

// A folder name for a group: characters other than letters, digits and ._=- become '-'.
std::string folder_name(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '=' && c != '-') c = '-';
  return out;
}

// v printed with f, or "-" when it is not a number (no run, no test yet).
std::string number_text(double v, const char* f) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string percent(double v) { return number_text(100 * v, "%.2f"); }

const char* state_name(RunState s) { return s == RunState::Done ? "done" : s == RunState::Partial ? "partial" : "new"; }

}  // namespace

const std::vector<std::string>& builtin_variants() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& v : builtins()) n.push_back(v.name);
    return n;
  }();
  return names;
}

Variant variant(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) {
    for (const auto& v : builtins())
      if (v.name == text) return v;
    std::string all;
    for (const auto& n : builtin_variants()) all += (all.empty() ? "" : ", ") + n;
    throw Error("variant '" + text + "' is not built in (" + all + "); define your own as name:key=value,key=value");
  }
  const std::string name = text.substr(0, colon);
  if (name.empty()) throw Error("variant '" + text + "' has no name before ':'");
  if (folder_name(name) != name) throw Error("variant name '" + name + "' may hold only letters, digits and . _ = -");
  return {name, parse_settings(text.substr(colon + 1), "variant '" + text + "'")};
}

GridAxis grid_axis(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) throw Error("grid '" + text + "' is not key=value,value,...");
  GridAxis a{text.substr(0, eq), split_commas(text.substr(eq + 1), "grid " + text.substr(0, eq))};
  if (a.values.empty()) throw Error("grid '" + text + "' lists no values");
  return a;
}

std::vector<RunPlan> expand(const SweepSpec& spec) {
  if (spec.variants.empty()) throw Error("sweep: no variants");
  if (spec.seeds.empty()) throw Error("sweep: no seeds");
  // Grid points: the cross product of the axes, first axis outermost. An axis given twice would label
  // runs with values they did not train (the second wins in the settings): refused.
  for (size_t i = 0; i < spec.grid.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (spec.grid[i].key == spec.grid[j].key)
        throw Error("sweep: the grid varies " + spec.grid[i].key + " twice; give its values in one --grid " +
                    spec.grid[i].key + "=v1,v2,...");
  std::vector<Settings> points{{}};
  for (const GridAxis& a : spec.grid) {
    std::vector<Settings> next;
    for (const Settings& p : points)
      for (const std::string& v : a.values) {
        Settings q = p;
        q.emplace_back(a.key, v);
        next.push_back(q);
      }
    points = next;
  }
  std::vector<RunPlan> runs;
  std::set<std::string> dirs;
  for (const Variant& var : spec.variants)
    for (const Settings& point : points) {
      std::string group = var.name;
      for (const auto& [k, v] : point) group += "_" + k + "=" + v;
      group = folder_name(group);
      for (int64_t seed : spec.seeds) {
        RunPlan r;
        r.group = group;
        r.seed = seed;
        r.dir = group + "/seed" + std::to_string(seed);
        if (!dirs.insert(r.dir).second) throw Error("sweep: two runs would share the folder " + r.dir);
        r.settings.emplace_back("data", spec.data);
        for (const auto& s : spec.sets) r.settings.push_back(s);
        for (const auto& s : var.settings) r.settings.push_back(s);
        for (const auto& s : point) r.settings.push_back(s);
        r.settings.emplace_back("seed", std::to_string(seed));
        std::string attention = "las";
        for (const auto& [k, v] : r.settings)
          if (k == "attention") attention = v;
        try {
          r.resolved = train::preset(spec.task, attention, spec.preset);
          for (const auto& [k, v] : r.settings) train::set_setting(r.resolved, k, v);
          train::validate(r.resolved);
        } catch (const Error& e) {
          throw Error("sweep: run " + r.dir + ": " + e.what());
        }
        runs.push_back(std::move(r));
      }
    }
  return runs;
}

RunRecord read_run(const std::string& run_dir, const RunPlan& plan) {
  RunRecord r;
  r.group = plan.group;
  r.dir = plan.dir;
  r.seed = plan.seed;
  const fs::path d(run_dir);
  if (fs::exists(d / "error.txt")) r.error = data::read_file("sweep", (d / "error.txt").string());
  if (fs::exists(d / "wall_s.txt"))
    r.wall_s = std::strtod(data::read_file("sweep", (d / "wall_s.txt").string()).c_str(), nullptr);
  if (fs::exists(d / "last.safetensors")) r.state = RunState::Partial;
  if (!fs::exists(d / "metrics.jsonl")) return r;
  std::vector<train::MetricsLine> lines;
  try {
    lines = train::read_metrics((d / "metrics.jsonl").string());
  } catch (const Error&) {  // a line cut by a kill: no failure, the resume truncates it
    return r;
  }
  double rate_sum = 0;
  int64_t rates = 0;
  for (const train::MetricsLine& m : lines) {
    if (m.split == "train") {
      r.steps = std::max(r.steps, m.step);
      if (std::isfinite(m.get("examples_per_s"))) rate_sum += m.get("examples_per_s"), ++rates;
    } else if (m.split == "val") {
      r.val.emplace_back(m.step, m.get("accuracy"));
      if (!(m.get("accuracy") <= r.best_val)) r.best_val = m.get("accuracy"), r.best_step = m.step;
    } else if (m.split == "test") {
      r.test = m.get("accuracy");
      r.test_loss = m.get("loss");
      r.state = RunState::Done;
    }
  }
  if (rates) r.examples_per_s = rate_sum / double(rates);
  if (r.state == RunState::Done) r.error.clear();  // an earlier attempt's: the run has since finished
  if (r.state == RunState::Done && fs::exists(d / "test_predictions.tsv")) {
    std::istringstream in(data::read_file("sweep", (d / "test_predictions.tsv").string()));
    std::string header;
    std::getline(in, header);
    for (int64_t index, label, prediction; in >> index >> label >> prediction;) {
      if (index != static_cast<int64_t>(r.test_right.size()))
        throw Error("sweep: " + (d / "test_predictions.tsv").string() + ": example " + std::to_string(index) +
                    " where " + std::to_string(r.test_right.size()) + " was due");
      r.test_right.push_back(label == prediction);
    }
  }
  return r;
}

const char* verdict(const Interval& diff) {
  if (diff.n >= 2 && diff.lo > 0) return "better";
  if (diff.n >= 2 && diff.hi < 0) return "worse";
  return "cannot tell";
}

std::vector<GroupSummary> summarize(const std::vector<RunRecord>& runs, const std::string& reference) {
  std::vector<GroupSummary> out;
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> acc;  // group -> (val, test) of done runs
  for (const RunRecord& r : runs) {
    auto it = std::find_if(out.begin(), out.end(), [&](const GroupSummary& g) { return g.group == r.group; });
    if (it == out.end()) {
      GroupSummary g;
      g.group = r.group;
      it = out.insert(out.end(), g);
    }
    ++it->runs;
    if (r.state == RunState::Done) {
      ++it->done;
      acc[r.group].first.push_back(r.best_val);
      acc[r.group].second.push_back(r.test);
    } else if (!r.error.empty()) {
      ++it->failed;
    }
  }
  for (GroupSummary& g : out) {
    g.val = mean_interval(acc[g.group].first);
    g.test = mean_interval(acc[g.group].second);
  }
  if (std::none_of(out.begin(), out.end(), [&](const GroupSummary& g) { return g.group == reference; })) return out;
  std::map<int64_t, const RunRecord*> base;  // seed -> the reference's finished run
  for (const RunRecord& r : runs)
    if (r.group == reference && r.state == RunState::Done) base[r.seed] = &r;
  for (GroupSummary& g : out) {
    if (g.group == reference) continue;
    std::vector<double> diffs;
    std::vector<bool> ref_right, var_right;
    for (const RunRecord& r : runs) {
      auto b = base.find(r.seed);
      if (r.group != g.group || r.state != RunState::Done || b == base.end()) continue;
      diffs.push_back(r.test - b->second->test);
      if (!r.test_right.empty() && r.test_right.size() == b->second->test_right.size()) {
        ref_right.insert(ref_right.end(), b->second->test_right.begin(), b->second->test_right.end());
        var_right.insert(var_right.end(), r.test_right.begin(), r.test_right.end());
      }
    }
    g.diff = mean_interval(diffs);
    if (!ref_right.empty()) g.mcnemar = mcnemar(ref_right, var_right);
  }
  return out;
}

namespace {

// Test accuracy per group as bars with the 95% interval of the mean (none for one seed), the best
// validation mean as a black line, the baselines as lines across.
Figure accuracy_bars(const std::vector<GroupSummary>& groups, const std::vector<Baseline>& baselines) {
  std::vector<Bar> bars;
  for (size_t k = 0; k < groups.size(); ++k) {
    const GroupSummary& g = groups[k];
    bars.push_back({g.group, 100 * g.test.mean, 100 * (g.test.hi - g.test.lo) / 2, 100 * g.val.mean, palette(k)});
  }
  std::vector<Level> levels;
  for (size_t k = 0; k < baselines.size(); ++k)
    levels.push_back({baselines[k].name, 100 * baselines[k].accuracy, k == 0 ? Rgb{127, 127, 127} : Rgb{0, 0, 0}});
  return bar_chart("test accuracy, mean and 95% CI over seeds", "accuracy %", bars, "best validation accuracy (mean)",
                   levels);
}

// Validation accuracy against step, each group's mean over its seeds at every step they share.
Figure val_curves(const std::vector<GroupSummary>& groups, const std::vector<RunRecord>& runs) {
  Panel p{"validation accuracy, mean over seeds", {}, "step", "accuracy %"};
  for (size_t k = 0; k < groups.size(); ++k) {
    std::map<int64_t, std::vector<double>> at;
    for (const RunRecord& r : runs)
      if (r.group == groups[k].group)
        for (const auto& [step, a] : r.val) at[step].push_back(100 * a);
    Series s{groups[k].group, {}, {}, palette(k)};
    for (const auto& [step, v] : at) s.x.push_back(double(step)), s.y.push_back(mean_interval(v).mean);
    p.series.push_back(s);
  }
  return line_plots({p});
}

}  // namespace

std::vector<Baseline> test_baselines(const train::RunSettings& settings) {
  const auto train = train::open_split(settings, data::Split::Train),
             test = train::open_split(settings, data::Split::Test);
  const data::BaselineScore s = data::score_baselines(data::fit_baselines(*train), *test);
  std::vector<Baseline> out = {{"majority class", s.majority}};
  if (s.root_rule) out.push_back({"root-operator rule", *s.root_rule});
  return out;
}

namespace {

// summary.md: the variants with the baselines, the paired differences, the runs, the command.
std::string summary_md(const std::vector<GroupSummary>& groups, const std::vector<RunRecord>& runs,
                       const std::string& command, const std::string& spec_text, const std::string& reference,
                       const std::vector<Baseline>& baselines) {
  std::ostringstream md;
  md << "# Sweep summary\n\nAccuracies in %, mean ± sample standard deviation over the finished seeds, and the "
        "95% confidence interval of the test mean (Student's t); \"best val\" is each run's best validation "
        "accuracy, \"test\" that checkpoint's test accuracy.\n\n"
     << "| variant | runs done | best val | test | test 95% CI |\n|---|---|---|---|---|\n";
  for (const auto& g : groups)
    md << "| " << g.group << " | " << g.done << "/" << g.runs
       << (g.failed ? " (" + std::to_string(g.failed) + " failed)" : "") << " | " << percent(g.val.mean) << " ± "
       << percent(g.val.sd) << " | " << percent(g.test.mean) << " ± " << percent(g.test.sd) << " | ["
       << percent(g.test.lo) << ", " << percent(g.test.hi) << "] |\n";
  for (const Baseline& b : baselines)
    md << "| *" << b.name << "* (fitted on train) |  |  | *" << percent(b.accuracy) << "* |  |\n";
  if (std::any_of(groups.begin(), groups.end(), [](const GroupSummary& g) { return g.diff.n > 0; })) {
    md << "\n## Against " << reference << ", seed by seed\n\nThe test accuracy minus " << reference
       << "'s on the same seed, in points, with the 95% interval of its mean over the seeds both finished; a "
          "variant is called better or worse only when that interval excludes zero. McNemar's exact test pools "
          "those seeds' test predictions: the examples only "
       << reference << " got right, those only the variant got right, and the two-sided p.\n\n"
       << "| variant | seeds | difference | 95% CI | verdict | only " << reference << " | only variant | McNemar p |\n"
       << "|---|---|---|---|---|---|---|---|\n";
    for (const auto& g : groups) {
      if (g.diff.n == 0) continue;
      md << "| " << g.group << " | " << g.diff.n << " | " << number_text(100 * g.diff.mean, "%+.2f") << " | ["
         << number_text(100 * g.diff.lo, "%+.2f") << ", " << number_text(100 * g.diff.hi, "%+.2f") << "] | "
         << verdict(g.diff) << " | ";
      if (g.mcnemar)
        md << g.mcnemar->only_reference << " | " << g.mcnemar->only_variant << " | "
           << number_text(g.mcnemar->p, "%.3g");
      else md << "- | - | -";
      md << " |\n";
    }
  }
  md << "\n## Runs\n\n| run | state | steps | best val (step) | test | wall s | examples/s | error |\n"
        "|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : runs) {
    std::string err = r.error;
    std::replace(err.begin(), err.end(), '\n', ' ');
    std::replace(err.begin(), err.end(), '|', '/');
    md << "| " << r.dir << " | " << state_name(r.state) << " | " << r.steps << " | " << percent(r.best_val) << " ("
       << r.best_step << ") | " << percent(r.test) << " | " << number_text(r.wall_s, "%.0f") << " | "
       << number_text(r.examples_per_s, "%.1f") << " | " << err << " |\n";
  }
  md << "\n## Reproduce\n\n```sh\n" << command << "\n```\n";
  if (!spec_text.empty())
    md << "\nwith the spec file:\n\n```\n" << spec_text << (spec_text.back() == '\n' ? "" : "\n") << "```\n";
  return md.str();
}

// summary.json: the same numbers; NaN (no finished run, no test yet) is written as null.
std::string summary_json(const std::vector<GroupSummary>& groups, const std::vector<RunRecord>& runs,
                         const std::string& command, const std::string& spec_text, const std::string& reference,
                         const std::vector<Baseline>& baselines) {
  using json = nlohmann::ordered_json;
  json js = {{"command", command}, {"spec", spec_text}, {"groups", json::array()}, {"runs", json::array()}};
  js["reference"] = reference;
  js["baselines"] = json::array();
  for (const Baseline& b : baselines) js["baselines"].push_back({{"name", b.name}, {"test", b.accuracy}});
  for (const auto& g : groups) {
    json jg = {{"group", g.group},         {"runs", g.runs},         {"done", g.done},
               {"failed", g.failed},       {"val_mean", g.val.mean}, {"val_std", g.val.sd},
               {"test_mean", g.test.mean}, {"test_std", g.test.sd},  {"test_ci95", {g.test.lo, g.test.hi}}};
    if (g.diff.n > 0) {
      jg["vs_reference"] = {{"seeds", g.diff.n},
                            {"diff_mean", g.diff.mean},
                            {"diff_ci95", {g.diff.lo, g.diff.hi}},
                            {"verdict", verdict(g.diff)}};
      if (g.mcnemar)
        jg["vs_reference"]["mcnemar"] = {{"only_reference", g.mcnemar->only_reference},
                                         {"only_variant", g.mcnemar->only_variant},
                                         {"p", g.mcnemar->p}};
    }
    js["groups"].push_back(jg);
  }
  for (const auto& r : runs)
    js["runs"].push_back({{"dir", r.dir},
                          {"group", r.group},
                          {"seed", r.seed},
                          {"state", state_name(r.state)},
                          {"steps", r.steps},
                          {"best_val", r.best_val},
                          {"best_step", r.best_step},
                          {"test", r.test},
                          {"test_loss", r.test_loss},
                          {"wall_s", r.wall_s},
                          {"examples_per_s", r.examples_per_s},
                          {"error", r.error}});
  return js.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace

void write_summary(const std::string& sweep_dir, const std::vector<RunRecord>& runs, const std::string& command,
                   const std::string& spec_text, const std::string& reference, const std::vector<Baseline>& baselines) {
  const std::vector<GroupSummary> groups = summarize(runs, reference);
  const fs::path dir(sweep_dir);
  data::write_file_atomic((dir / "summary.md").string(),
                          summary_md(groups, runs, command, spec_text, reference, baselines));
  data::write_file_atomic((dir / "summary.json").string(),
                          summary_json(groups, runs, command, spec_text, reference, baselines));
  const fs::path png = dir / "summary.png", tmp = dir / "summary.png.tmp";
  const Figure figure = grid({accuracy_bars(groups, baselines), val_curves(groups, runs)}, 2);
  write_png(tmp.string(), figure);
  fs::rename(tmp, png);
  write_svg((dir / "summary.svg.tmp").string(), figure);
  fs::rename(dir / "summary.svg.tmp", dir / "summary.svg");
}

}  // namespace lasgrad::study
