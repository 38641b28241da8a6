#include "data/inspect.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

namespace lasgrad::data {

namespace {

LengthStats length_stats(std::vector<int64_t> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  return {v.front(), v[v.size() / 2], v.back()};
}

// Printable ASCII kept, everything else as \n, \t or \xNN; cut at `limit` bytes of input.
std::string printable(const std::string& s, size_t limit = 300) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < limit; ++i) {
    unsigned char c = s[i];
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\\') out += "\\\\";
    else if (c >= 32 && c < 127) out += static_cast<char>(c);
    else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (s.size() > limit) out += "...";
  return out;
}

std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100 * fraction);
  return buf;
}

}  // namespace

SplitSummary summarize(const Dataset& d, Split split, const BaselineFit& baselines) {
  SplitSummary s;
  s.split = split_name(split);
  s.examples = d.size();
  s.labels.assign(d.num_classes(), 0);
  std::vector<int64_t> len, len2;
  len.reserve(d.size());
  for (int64_t i = 0; i < d.size(); ++i) {
    ++s.labels[d.label(i)];
    len.push_back(d.length(i, 0));
    if (d.info().pair) len2.push_back(d.length(i, 1));
  }
  s.lengths = length_stats(std::move(len));
  s.lengths2 = length_stats(std::move(len2));
  if (d.size() > 0) {
    s.first_label = d.label(0);
    if (d.info().image_side > 0) {
      s.picture = ascii_picture(d.image_bytes(0), d.info().image_side);
    } else {
      s.first_text = printable(d.text(0, 0));
      if (d.info().pair) s.first_text2 = printable(d.text(0, 1));
    }
  }
  s.notes = d.notes();
  s.baselines = score_baselines(baselines, d);
  return s;
}

std::vector<std::string> ascii_picture(const std::vector<uint8_t>& img, int side, int columns) {
  static const char ramp[] = " .:-=+*#%@";
  const int block = (side + columns - 1) / columns;
  std::vector<std::string> rows;
  for (int y = 0; y < side; y += block) {
    std::string row;
    for (int x = 0; x < side; x += block) {
      int v = 0;
      for (int dy = 0; dy < block && y + dy < side; ++dy)
        for (int dx = 0; dx < block && x + dx < side; ++dx) v = std::max<int>(v, img[size_t(y + dy) * side + x + dx]);
      row += ramp[v * 10 / 256];
    }
    rows.push_back(row);
  }
  return rows;
}

std::string format_text(const TaskInfo& info, const std::vector<SplitSummary>& all) {
  std::ostringstream o;
  o << "task " << info.name << ": " << info.num_classes << " classes, length " << info.max_length;
  if (info.vocab_size) o << ", vocabulary " << info.vocab_size;
  if (info.pixels) o << ", pixel input";
  if (info.pair) o << ", two documents per example";
  o << "\n";
  for (const auto& s : all) {
    o << "\n[" << s.split << "] " << s.examples << " examples\n  labels:";
    for (size_t c = 0; c < s.labels.size(); ++c) o << " " << c << ":" << s.labels[c];
    o << "\n  length: min " << s.lengths.min << ", median " << s.lengths.median << ", max " << s.lengths.max << "\n";
    if (info.pair)
      o << "  length of document 2: min " << s.lengths2.min << ", median " << s.lengths2.median << ", max "
        << s.lengths2.max << "\n";
    if (s.examples > 0) {
      o << "  baselines (fitted on train): majority class " << percent(s.baselines.majority);
      if (s.baselines.root_rule) {
        o << ", root-operator rule " << percent(*s.baselines.root_rule) << " (by root:";
        for (size_t r = 0; r < kListOpsOperators.size(); ++r) {
          const RootScore& rs = s.baselines.per_root[r];
          o << " " << kListOpsOperators[r] << " "
            << (rs.examples ? percent(double(rs.right) / double(rs.examples)) : "-");
        }
        o << ")";
      }
      o << "\n";
    }
    if (s.examples > 0) {
      o << "  first example (label " << s.first_label << "):";
      if (!s.picture.empty()) {
        o << "\n";
        for (const auto& r : s.picture) o << "    |" << r << "|\n";
      } else {
        o << " " << s.first_text << "\n";
        if (info.pair) o << "  its document 2: " << s.first_text2 << "\n";
      }
    }
    for (const auto& n : s.notes) o << "  note: " << n << "\n";
  }
  return o.str();
}

std::string format_json(const TaskInfo& info, const std::vector<SplitSummary>& all) {
  using json = nlohmann::ordered_json;
  auto stats = [](const LengthStats& l) { return json{{"min", l.min}, {"median", l.median}, {"max", l.max}}; };
  json splits = json::array();
  for (const auto& s : all) {
    json j = {{"split", s.split}, {"examples", s.examples}, {"labels", s.labels}, {"length", stats(s.lengths)}};
    if (info.pair) j["length2"] = stats(s.lengths2);
    json base = {{"fitted_on", "train"}, {"majority", s.baselines.majority}};
    if (s.baselines.root_rule) {
      base["root_rule"] = *s.baselines.root_rule;
      json per = json::object();
      for (size_t r = 0; r < kListOpsOperators.size(); ++r)
        per[kListOpsOperators[r]] = {{"examples", s.baselines.per_root[r].examples},
                                     {"right", s.baselines.per_root[r].right}};
      base["per_root"] = per;
    }
    j["baselines"] = base;
    j["first_label"] = s.first_label;
    if (!s.picture.empty()) {
      j["first_picture"] = s.picture;
    } else {
      j["first_text"] = s.first_text;
      if (info.pair) j["first_text2"] = s.first_text2;
    }
    j["notes"] = s.notes;
    splits.push_back(j);
  }
  const json doc = {{"task", info.name},         {"classes", info.num_classes},
                    {"length", info.max_length}, {"vocab_size", info.vocab_size},
                    {"pixels", info.pixels},     {"pair", info.pair},
                    {"splits", splits}};
  return doc.dump(2) + "\n";  // the texts are printable ASCII already (printable above)
}

}  // namespace lasgrad::data
