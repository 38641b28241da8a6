// Reading a run's metrics.jsonl (written by train/trainer.cpp): one flat JSON object per line, each
// with a "split" (train, val or test), a "step" and numeric fields.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lasgrad::train {

struct MetricsLine {
  std::string split;
  int64_t step = 0;
  std::map<std::string, double> values;  // every numeric field but step ("loss", "accuracy", ...)
  double get(const std::string& key) const;  // NaN when absent
};

// The lines of `path` in file order. A missing file throws Error naming it; a line that is not a
// metrics object (a line cut by a crash) throws Error naming the file and the line number.
std::vector<MetricsLine> read_metrics(const std::string& path);

}  // namespace lasgrad::train
