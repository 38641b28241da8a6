// What `lasgrad data inspect` shows about one split of a task: size, label histogram, length
// distribution, the trivial baselines (baselines.h), and the first example decoded for people (text,
// or a small ASCII picture).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/baselines.h"
#include "data/dataset.h"

namespace lasgrad::data {

struct LengthStats {
  int64_t min = 0, median = 0, max = 0;
};

struct SplitSummary {
  std::string split;
  int64_t examples = 0;
  std::vector<int64_t> labels;    // [num_classes] examples per class
  LengthStats lengths, lengths2;  // lengths2: retrieval's second document
  int first_label = -1;
  std::string first_text, first_text2;  // token tasks: decoded, at most 300 bytes, non-printables escaped
  std::vector<std::string> picture;     // pixel tasks: rows of an ASCII picture, at most 32 columns
  std::vector<std::string> notes;       // the loader's notes (skips, truncations)
  BaselineScore baselines;              // the baselines fitted on the training split, scored on this one
};

SplitSummary summarize(const Dataset& d, Split split, const BaselineFit& baselines);

// Rows of characters " .:-=+*#%@" for dark to bright, the image shrunk by block maxima to at most
// `columns` columns. img is side x side, row-major.
std::vector<std::string> ascii_picture(const std::vector<uint8_t>& img, int side, int columns = 32);

// The summaries as text for a terminal, or as a JSON object {"task": ..., "splits": [...]}.
std::string format_text(const TaskInfo& info, const std::vector<SplitSummary>& s);
std::string format_json(const TaskInfo& info, const std::vector<SplitSummary>& s);

}  // namespace lasgrad::data
