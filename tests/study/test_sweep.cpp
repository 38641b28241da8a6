// lasgrad sweep's library part: variants and grid expansion, run records read from a run folder, and
// the summary's statistics against numbers worked out here by hand.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "train/metrics.h"
#include "tools/study/sweep.h"

using namespace lasgrad;
using namespace lasgrad::train;
using namespace lasgrad::study;
namespace fs = std::filesystem;

TEST_CASE("variants: the built-ins, a user's own, and clear errors") {
  CHECK(builtin_variants() ==
        std::vector<std::string>{"softmax", "las", "las-chunk", "local-only", "smooth-only", "las-gaussian"});
  CHECK(variant("local-only").settings == Settings{{"attention", "las"}, {"pool", "1"}});
  CHECK(variant("smooth-only").settings == Settings{{"attention", "las"}, {"alphas", "0"}});
  Variant mine = variant("mine:attention=las,alphas=0,0.1,0.2,0.3,pool=3");
  CHECK(mine.name == "mine");
  CHECK(mine.settings == Settings{{"attention", "las"}, {"alphas", "0,0.1,0.2,0.3"}, {"pool", "3"}});
  CHECK_THROWS_WITH_AS(variant("linear"), doctest::Contains("'linear' is not built in"), Error);
  CHECK_THROWS_WITH_AS(variant(":pool=3"), doctest::Contains("no name"), Error);
  CHECK_THROWS_WITH_AS(variant("a/b:pool=3"), doctest::Contains("may hold only"), Error);
  CHECK_THROWS_WITH_AS(variant("x:3"), doctest::Contains("not key=value"), Error);
  CHECK(grid_axis("pool=3,5,7").values == std::vector<std::string>{"3", "5", "7"});
  CHECK_THROWS_WITH_AS(grid_axis("pool"), doctest::Contains("key=value"), Error);
}

TEST_CASE("expand: variants x grid x seeds, in order, each config resolved over its own preset") {
  SweepSpec s;
  s.task = "listops";
  s.data = "some/data";
  s.variants = {variant("softmax"), variant("las-chunk")};
  s.seeds = {1, 7};
  s.sets = {{"steps", "50"}, {"warmup", "5"}};
  s.grid = {grid_axis("pool=3,5"), grid_axis("lr=1e-3,2e-3")};
  std::vector<RunPlan> runs = expand(s);
  REQUIRE(runs.size() == 2 * 2 * 2 * 2);
  CHECK(runs[0].dir == "softmax_pool=3_lr=1e-3/seed1");
  CHECK(runs[1].dir == "softmax_pool=3_lr=1e-3/seed7");
  CHECK(runs[2].dir == "softmax_pool=3_lr=2e-3/seed1");
  CHECK(runs[4].dir == "softmax_pool=5_lr=1e-3/seed1");
  CHECK(runs[15].dir == "las-chunk_pool=5_lr=2e-3/seed7");
  const RunSettings& r15 = runs[15].resolved;
  CHECK(r15.model.attention.kind == AttentionKind::LasChunk);
  CHECK(r15.model.attention.C == 32);  // the small preset's chunk for las-chunk
  CHECK(r15.model.attention.P == 5);
  CHECK(r15.train.schedule.lr == 2e-3);
  CHECK(r15.train.seed == 7);
  CHECK(r15.train.steps == 50);
  CHECK(r15.data.data == "some/data");
  CHECK(runs[0].resolved.model.attention.kind == AttentionKind::Softmax);

  s.grid = {grid_axis("pool=4")};  // invalid for every run: refused before anything runs, naming the run
  CHECK_THROWS_WITH_AS(expand(s), doctest::Contains("run softmax_pool=4/seed1: config: pool must be odd, got '4'"),
                       Error);
  s.grid = {};
  s.variants = {variant("las"), variant("las")};
  CHECK_THROWS_WITH_AS(expand(s), doctest::Contains("share the folder las/seed1"), Error);
}

TEST_CASE("run records and the summary's statistics") {
  const fs::path dir = fs::temp_directory_path() / ("lasgrad_sweep_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  SweepSpec s;
  s.task = "listops";
  s.data = "d";
  s.variants = {variant("softmax"), variant("las")};
  s.seeds = {1, 2, 3};
  std::vector<RunPlan> plans = expand(s);
  // softmax: val (best) 0.40, 0.50, 0.60 and test 0.30, 0.35, 0.55; las: seed 1 done (0.70 / 0.65),
  // seed 2 interrupted (a checkpoint, no test line), seed 3 failed before writing anything.
  struct Fake {
    std::vector<double> val;
    double test;
  };
  const Fake fakes[] = {{{0.2, 0.4}, 0.30}, {{0.5, 0.45}, 0.35}, {{0.6, 0.6}, 0.55}, {{0.7, 0.1}, 0.65}};
  for (int i = 0; i < 4; ++i) {
    fs::create_directories(dir / plans[i].dir);
    std::ofstream m(dir / plans[i].dir / "metrics.jsonl");
    for (size_t k = 0; k < fakes[i].val.size(); ++k)
      m << "{\"split\": \"train\", \"step\": " << 10 * (k + 1)
        << ", \"loss\": 1.5, \"examples_per_s\": " << 100 * (k + 1)
        << "}\n{\"split\": \"val\", \"step\": " << 10 * (k + 1) << ", \"loss\": 1, \"accuracy\": " << fakes[i].val[k]
        << "}\n";
    m << "{\"split\": \"test\", \"step\": 10, \"loss\": 2.25, \"accuracy\": " << fakes[i].test << "}\n";
  }
  std::ofstream(dir / plans[0].dir / "test_predictions.tsv") << "index\tlabel\tprediction\n0\t3\t3\n1\t7\t2\n2\t0\t0\n";
  std::ofstream(dir / plans[1].dir / "test_predictions.tsv") << "index\tlabel\tprediction\n0\t3\t3\n2\t0\t0\n";
  fs::create_directories(dir / plans[4].dir);
  std::ofstream(dir / plans[4].dir / "metrics.jsonl")
      << "{\"split\": \"train\", \"step\": 10, \"loss\": 1.5}\n{\"split\": \"va";
  std::ofstream(dir / plans[4].dir / "last.safetensors") << "x";
  fs::create_directories(dir / plans[5].dir);
  std::ofstream(dir / plans[5].dir / "error.txt")
      << "exit status 1: lasgrad train: error: data folder d does not exist";
  std::ofstream(dir / plans[5].dir / "wall_s.txt") << "2.5\n";

  CHECK_THROWS_WITH_AS(read_run((dir / plans[1].dir).string(), plans[1]),
                       doctest::Contains("test_predictions.tsv: example 2 where 1 was due"), Error);
  fs::remove(dir / plans[1].dir / "test_predictions.tsv");
  std::vector<RunRecord> runs;
  for (const auto& p : plans) runs.push_back(read_run((dir / p.dir).string(), p));
  CHECK(runs[0].test_right == std::vector<bool>{true, false, true});
  CHECK(runs[1].test_right.empty());
  CHECK(runs[0].state == RunState::Done);
  CHECK(runs[0].best_val == doctest::Approx(0.4));
  CHECK(runs[0].best_step == 20);
  CHECK(runs[1].best_step == 10);  // the first of the best
  CHECK(runs[0].examples_per_s == doctest::Approx(150));
  CHECK(runs[0].test_loss == doctest::Approx(2.25));
  CHECK(runs[0].val.size() == 2);
  CHECK(runs[4].state == RunState::Partial);
  CHECK(runs[4].error.empty());  // a line cut by a kill is no failure: the resume truncates it
  CHECK(runs[5].state == RunState::New);
  CHECK(runs[5].wall_s == 2.5);

  std::vector<GroupSummary> g = summarize(runs);
  REQUIRE(g.size() == 2);
  CHECK(g[0].group == "softmax");
  CHECK(g[0].done == 3);
  // By hand: val 0.4, 0.5, 0.6 -> mean 0.5, std sqrt((0.01 + 0 + 0.01) / 2) = 0.1;
  // test 0.30, 0.35, 0.55 -> mean 0.4, deviations -0.1, -0.05, 0.15 -> std sqrt(0.035 / 2) = 0.1322876.
  CHECK(g[0].val.mean == doctest::Approx(0.5));
  CHECK(g[0].val.sd == doctest::Approx(0.1));
  CHECK(g[0].test.mean == doctest::Approx(0.4));
  CHECK(g[0].test.sd == doctest::Approx(0.1322876).epsilon(1e-6));
  CHECK(g[1].done == 1);
  CHECK(g[1].failed == 1);
  CHECK(g[1].test.mean == doctest::Approx(0.65));
  CHECK(g[1].test.sd == 0.0);  // one seed

  write_summary(dir.string(), runs, "lasgrad sweep --task listops", "", "",
                {{"majority class", 0.1506}, {"root-operator rule", 0.3178}});
  for (const char* f : {"summary.md", "summary.json", "summary.png"}) CHECK(fs::file_size(dir / f) > 100);
  std::ifstream md(dir / "summary.md");
  std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  // The test mean's interval: 0.4 -+ t975(2) 0.1322876 / sqrt(3) = 0.4 -+ 4.302653 x 0.0763763 = 0.4 -+ 0.3286.
  CHECK(text.find("| softmax | 3/3 | 50.00 ± 10.00 | 40.00 ± 13.23 | [7.14, 72.86] |") != std::string::npos);
  CHECK(text.find("| las | 1/3 (1 failed) | 70.00 ± 0.00 | 65.00 ± 0.00 | [-, -] |") != std::string::npos);
  CHECK(text.find("data folder d does not exist") != std::string::npos);
  CHECK(text.find("| *root-operator rule* (fitted on train) |  |  | *31.78* |  |") != std::string::npos);
  std::ifstream js(dir / "summary.json");
  const std::string json_text((std::istreambuf_iterator<char>(js)), std::istreambuf_iterator<char>());
  CHECK(json_text.find("\"name\": \"majority class\",\n      \"test\": 0.1506") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("statistics: t quantiles, a mean's interval and McNemar's exact test, against values worked by hand") {
  CHECK(t975(1) == doctest::Approx(12.706205));
  CHECK(t975(30) == doctest::Approx(2.042272));
  CHECK(t975(31) == doctest::Approx(2.039513).epsilon(1e-4));  // the published quantiles past the table
  CHECK(t975(100) == doctest::Approx(1.983972).epsilon(1e-4));
  CHECK_THROWS_AS(t975(0), Error);
  // 0.40, 0.42, 0.44: mean 0.42, sd 0.02, half width 4.302653 x 0.02 / sqrt(3) = 0.049683.
  Interval i = mean_interval({0.40, NAN, 0.42, 0.44});
  CHECK(i.n == 3);
  CHECK(i.mean == doctest::Approx(0.42));
  CHECK(i.sd == doctest::Approx(0.02));
  CHECK(i.lo == doctest::Approx(0.370317).epsilon(1e-6));
  CHECK(i.hi == doctest::Approx(0.469683).epsilon(1e-6));
  CHECK(std::isnan(mean_interval({0.5}).lo));
  CHECK(std::isnan(mean_interval({}).mean));
  // 3 examples only the reference got right, 10 only the variant, 5 both, 2 neither:
  // p = 2 (C(13,0) + C(13,1) + C(13,2) + C(13,3)) / 2^13 = 2 x 378 / 8192 = 0.09228515625.
  std::vector<bool> ref, var;
  auto add = [&](int count, bool r, bool v) {
    for (int k = 0; k < count; ++k) ref.push_back(r), var.push_back(v);
  };
  add(3, true, false), add(10, false, true), add(5, true, true), add(2, false, false);
  McNemar m = mcnemar(ref, var);
  CHECK(m.only_reference == 3);
  CHECK(m.only_variant == 10);
  CHECK(m.p == doctest::Approx(0.09228515625).epsilon(1e-12));
  CHECK(mcnemar({true, false}, {true, false}).p == 1.0);  // no discordant pair
  CHECK_THROWS_AS(mcnemar({true}, {true, false}), Error);
}

TEST_CASE(
    "summarize against a reference: the paired difference seed by seed, a verdict only past zero, McNemar pooled") {
  auto run = [](const char* group, int64_t seed, double test, std::vector<bool> right) {
    RunRecord r;
    r.group = group, r.seed = seed, r.state = RunState::Done, r.best_val = test, r.test = test, r.test_right = right;
    return r;
  };
  // Seeds 1-3. softmax 0.30, 0.35, 0.55; las 0.34, 0.36, 0.60: differences 0.04, 0.01, 0.05, mean 0.033333,
  // sd 0.020817, half width 4.302653 x 0.020817 / sqrt(3) = 0.051712: [-0.018378, 0.085045], zero inside.
  // Predictions on two examples per seed, pooled: only softmax right once (seed 1), only las right four times
  // (once on seed 1, twice on seed 2, once on seed 3): p = 2 (1 + 5) / 2^5 = 0.375.
  std::vector<RunRecord> runs = {run("softmax", 1, 0.30, {true, false}), run("softmax", 2, 0.35, {false, false}),
                                 run("softmax", 3, 0.55, {true, false}), run("las", 1, 0.34, {false, true}),
                                 run("las", 2, 0.36, {true, true}),      run("las", 3, 0.60, {true, true}),
                                 run("local-only", 1, 0.35, {}),         run("local-only", 2, 0.41, {}),
                                 run("local-only", 3, 0.62, {}),         run("smooth-only", 2, 0.40, {})};
  std::vector<GroupSummary> g = summarize(runs, "softmax");
  REQUIRE(g.size() == 4);
  CHECK(g[0].diff.n == 0);  // the reference itself
  CHECK(g[1].diff.n == 3);
  CHECK(g[1].diff.mean == doctest::Approx(0.033333).epsilon(1e-5));
  CHECK(g[1].diff.sd == doctest::Approx(0.020817).epsilon(1e-5));
  CHECK(g[1].diff.lo == doctest::Approx(-0.018378).epsilon(1e-5));
  CHECK(g[1].diff.hi == doctest::Approx(0.085045).epsilon(1e-5));
  CHECK(std::string(verdict(g[1].diff)) == "cannot tell");
  REQUIRE(g[1].mcnemar);
  CHECK(g[1].mcnemar->only_reference == 1);
  CHECK(g[1].mcnemar->only_variant == 4);
  CHECK(g[1].mcnemar->p == doctest::Approx(0.375));
  // local-only: differences 0.05, 0.06, 0.07, interval 0.06 -+ 0.0248: above zero. No predictions kept.
  CHECK(std::string(verdict(g[2].diff)) == "better");
  CHECK(!g[2].mcnemar);
  CHECK(g[3].diff.n == 1);  // one shared seed: no interval, no verdict
  CHECK(std::string(verdict(g[3].diff)) == "cannot tell");
  Interval worse = mean_interval({-0.05, -0.06, -0.07});
  CHECK(std::string(verdict(worse)) == "worse");
  CHECK(summarize(runs, "")[1].diff.n == 0);  // no reference, no pairing
}

TEST_CASE("read_metrics: fields by name; a line that is not a metrics object is refused naming file and line") {
  const fs::path path = fs::temp_directory_path() / ("lasgrad_metrics_test_" + std::to_string(::getpid()) + ".jsonl");
  std::ofstream(path) << "{\"split\": \"train\", \"step\": 10, \"loss\": 1.5, \"lr\": 2e-3}\n\n"
                      << "{\"split\": \"test\", \"step\": 7, \"accuracy\": 0.25}\n";
  std::vector<MetricsLine> m = read_metrics(path.string());
  REQUIRE(m.size() == 2);
  CHECK(m[0].split == "train");
  CHECK(m[0].step == 10);
  CHECK(m[0].get("lr") == 2e-3);
  CHECK(std::isnan(m[0].get("accuracy")));
  CHECK(m[1].get("accuracy") == 0.25);
  for (const char* bad : {"{\"split\": \"val\", \"step\": 3, \"loss\": 1.2", "{\"step\": 3}",
                          "{\"split\": \"val\", \"step\": x}", "[1, 2]"}) {
    CAPTURE(bad);
    std::ofstream(path) << "{\"split\": \"train\", \"step\": 1}\n" << bad << "\n";
    CHECK_THROWS_WITH_AS(read_metrics(path.string()),
                         doctest::Contains((path.string() + ":2: not a metrics line").c_str()), Error);
  }
  fs::remove(path);
  CHECK_THROWS_WITH_AS(read_metrics(path.string()), doctest::Contains("cannot read"), Error);
}
