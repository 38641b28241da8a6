// A run's metrics.jsonl, written by the trainer and read by the study tools: one flat JSON object per line, each
// with a "split", a "step" and numeric fields. Splits: train, val, test; stop (the run stopped at "step" on
// a non-finite loss or gradient, "why" says which); gap (a resume that found the lines of steps
// "from".."to" missing and went on with --allow-gaps).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lasgrad::train {

struct MetricsLine {
  std::string split;
  int64_t step = 0;
  std::map<std::string, double> values;      // every numeric field but step ("loss", "accuracy", ...)
  std::string why;                           // a stop line's reason
  double get(const std::string& key) const;  // NaN when absent
};

// One line as the trainer writes it: the fields in order, as `{"key": value, ...}` (the layout scripts
// grep), each value written by nlohmann-json; JSON has no inf or nan (an overflowed gradient norm):
// those are null.
std::string metrics_line(const nlohmann::ordered_json& fields);

// One line: a JSON object with a "split" string, a "step" number and other fields; the numeric ones
// are kept. Returns false on anything else (a line cut by a crash, another file).
bool parse_metrics_line(const std::string& line, MetricsLine& out);

// The lines of `path` in file order. A missing file throws Error naming it; a line that is not a
// metrics object (a line cut by a crash) throws Error naming the file and the line number.
std::vector<MetricsLine> read_metrics(const std::string& path);

}  // namespace lasgrad::train
