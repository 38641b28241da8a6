// The ListOps generator: every written expression is evaluated here by an independent evaluator and
// checked against its label; lengths respect the bounds; trees are distinct; output does not depend on
// the thread count; the loader reads the files back.
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "data/dataset.h"
#include "data/listops_gen.h"
#include "data/reader.h"
#include "tests/data/fixtures.h"

using namespace lasgrad::data;
using namespace fixtures;

// Evaluates a bracketed expression with a stack of open operators; returns -1 on malformed input.
// `length` gets the number of tokens without parentheses.
static int evaluate(const std::string& src, int64_t& length) {
  std::istringstream in(src);
  std::string w;
  std::vector<std::pair<std::string, std::vector<int>>> stack;
  int result = -1;
  length = 0;
  auto give = [&](int v) {
    if (stack.empty()) {
      if (result != -1) return false;
      result = v;
    } else {
      stack.back().second.push_back(v);
    }
    return true;
  };
  while (in >> w) {
    if (w == "(" || w == ")") continue;
    ++length;
    if (w[0] == '[') {
      stack.push_back({w, {}});
    } else if (w == "]") {
      if (stack.empty()) return -1;
      auto [op, v] = stack.back();
      stack.pop_back();
      if (v.size() < 2 || v.size() > 10) return -1;
      std::sort(v.begin(), v.end());
      int value;
      if (op == "[MIN") value = v.front();
      else if (op == "[MAX") value = v.back();
      else if (op == "[SM") {
        value = 0;
        for (int x : v) value += x;
        value %= 10;
      } else if (op == "[MED") {
        size_t n = v.size();
        double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
        value = static_cast<int>(std::floor(med));
      } else return -1;
      if (!give(value)) return -1;
    } else if (w.size() == 1 && std::isdigit(static_cast<unsigned char>(w[0]))) {
      if (!give(w[0] - '0')) return -1;
    } else {
      return -1;
    }
  }
  return stack.empty() ? result : -1;
}

static std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST_CASE("independent evaluator agrees with the spec's example") {
  int64_t len;
  CHECK(evaluate("( ( ( [MED 6 ) 1 ) ] )", len) == 3);
  CHECK(len == 4);
  CHECK(evaluate("( ( ( ( ( [MED 1 ) 2 ) 3 ) 9 ) ] )", len) == 2);  // (2 + 3) / 2 = 2.5 -> 2
  CHECK(evaluate("( ( ( [SM 9 ) 8 ) ] )", len) == 7);
}

TEST_CASE("ListOps generator: labels, bounds, distinct trees, thread independence, loader round trip") {
  TempDir a, b;
  ListOpsGenOptions o;
  o.seed = 5;
  o.train = 300;
  o.val = 20;
  o.test = 30;
  o.min_length = 20;
  o.max_length = 100;
  o.threads = 1;
  auto stats = generate_listops(a.str(), o);
  o.threads = 3;
  generate_listops(b.str(), o);
  for (const char* f : {"basic_train.tsv", "basic_val.tsv", "basic_test.tsv"}) CHECK(slurp(a / f) == slurp(b / f));
  CHECK(stats.kept == 350);

  std::set<std::string> sources;
  std::map<int, int> labels;
  int64_t lines = 0;
  for (const char* f : {"basic_train.tsv", "basic_val.tsv", "basic_test.tsv"}) {
    Reader in("test", (a / f).string());
    std::string line;
    REQUIRE(in.line(line));
    CHECK(line == "Source\tTarget");
    while (in.line(line)) {
      size_t tab = line.find('\t');
      REQUIRE(tab != std::string::npos);
      std::string src = line.substr(0, tab);
      int label = std::stoi(line.substr(tab + 1));
      int64_t len;
      INFO(src);
      CHECK(evaluate(src, len) == label);
      CHECK(len > 20);
      CHECK(len < 100);
      sources.insert(src);
      ++labels[label];
      ++lines;
    }
  }
  CHECK(lines == 350);
  CHECK(sources.size() == 350);  // distinct
  // Every label occurs, none dominates (the LRA data is skewed, but not to one class).
  CHECK(labels.size() == 10);
  for (auto [l, n] : labels) CHECK(n < 350 * 0.4);
  int stat_total = 0;
  for (int l = 0; l < 10; ++l) stat_total += stats.label_counts[l];
  CHECK(stat_total == 350);

  auto train = open_task("listops", a.str(), Split::Train);
  CHECK(train->size() == 300);
  auto test = open_task("listops", a.str(), Split::Test);
  CHECK(test->size() == 30);
}

TEST_CASE("ListOps generator: the benchmark's bounds give about 8% acceptance and lengths near 1000") {
  TempDir dir;
  ListOpsGenOptions o;
  o.seed = 1;
  o.train = 150;
  o.val = 0;
  o.test = 0;
  o.threads = 2;
  auto stats = generate_listops(dir.str(), o);
  CHECK(stats.kept == 150);
  double rate = double(stats.kept + stats.duplicates) / stats.drawn;
  CHECK(rate > 0.04);
  CHECK(rate < 0.14);
  double mean = double(stats.total_length) / stats.kept;
  CHECK(mean > 700);
  CHECK(mean < 1300);
  auto d = open_task("listops", dir.str(), Split::Train);
  for (int64_t i = 0; i < d->size(); ++i) {
    CHECK(d->length(i) > 500);
    CHECK(d->length(i) < 2000);
  }
  // Empty splits still get a file with its header.
  CHECK(open_task("listops", dir.str(), Split::Val)->size() == 0);
}
