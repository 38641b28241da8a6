#include "train/metrics.h"

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "engine/tensor.h"

namespace lasgrad::train {

double MetricsLine::get(const std::string& key) const {
  auto it = values.find(key);
  return it == values.end() ? NAN : it->second;
}

// {"key": value, ...} with string or number values, as the trainer writes them (no nesting, no
// escapes). Returns false on anything else.
static bool parse_line(const std::string& s, MetricsLine& out) {
  size_t i = 0;
  auto skip = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) ++i;
  };
  auto expect = [&](char c) {
    skip();
    if (i >= s.size() || s[i] != c) return false;
    ++i;
    return true;
  };
  auto string = [&](std::string& v) {
    if (!expect('"')) return false;
    size_t end = s.find('"', i);
    if (end == std::string::npos) return false;
    v = s.substr(i, end - i);
    i = end + 1;
    return true;
  };
  if (!expect('{')) return false;
  bool has_split = false, has_step = false;
  for (bool first = true;; first = false) {
    skip();
    if (i < s.size() && s[i] == '}' && !first) break;
    if (!first && !expect(',')) return false;
    std::string key;
    if (!string(key) || !expect(':')) return false;
    skip();
    if (i < s.size() && s[i] == '"') {
      std::string v;
      if (!string(v)) return false;
      if (key == "split") out.split = v, has_split = true;
      continue;
    }
    char* end = nullptr;
    const double v = std::strtod(s.c_str() + i, &end);
    if (end == s.c_str() + i) return false;
    i = static_cast<size_t>(end - s.c_str());
    if (key == "step") out.step = static_cast<int64_t>(v), has_step = true;
    else out.values[key] = v;
  }
  ++i;
  skip();
  return i == s.size() && has_split && has_step;
}

std::vector<MetricsLine> read_metrics(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read " + path);
  std::vector<MetricsLine> out;
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.empty()) continue;
    MetricsLine m;
    if (!parse_line(line, m)) throw Error(path + ":" + std::to_string(n) + ": not a metrics line: '" + line.substr(0, 80) + "'");
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace lasgrad::train
