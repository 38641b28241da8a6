#include "train/metrics.h"

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/tensor.h"

namespace lasgrad::train {

double MetricsLine::get(const std::string& key) const {
  auto it = values.find(key);
  return it == values.end() ? NAN : it->second;
}

std::string metrics_line(const nlohmann::ordered_json& fields) {
  std::string out;
  for (const auto& [key, value] : fields.items())
    out += (out.empty() ? "{" : ", ") + nlohmann::json(key).dump() + ": " + value.dump();
  return out + "}";
}

bool parse_metrics_line(const std::string& s, MetricsLine& out) {
  const nlohmann::json j = nlohmann::json::parse(s, nullptr, false);  // no exceptions: discarded on error
  if (!j.is_object()) return false;
  const auto split = j.find("split"), step = j.find("step");
  if (split == j.end() || !split->is_string() || step == j.end() || !step->is_number_integer()) return false;
  out.split = split->get<std::string>();
  out.step = step->get<int64_t>();
  for (const auto& [key, value] : j.items())
    if (key != "step" && value.is_number()) out.values[key] = value.get<double>();
  if (j.contains("why") && j["why"].is_string()) out.why = j["why"].get<std::string>();
  return true;
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
    if (!parse_metrics_line(line, m))
      throw Error(path + ":" + std::to_string(n) + ": not a metrics line: '" + line.substr(0, 80) + "'");
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace lasgrad::train
