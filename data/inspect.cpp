#include "data/inspect.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

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

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c < 32) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\u%04x", c);
      out += hex;
    } else out += static_cast<char>(c);
  }
  return out + "\"";
}

}  // namespace

SplitSummary summarize(const Dataset& d, Split split) {
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
      o << "  length of document 2: min " << s.lengths2.min << ", median " << s.lengths2.median << ", max " << s.lengths2.max << "\n";
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
  std::ostringstream o;
  o << "{\"task\": " << json_string(info.name) << ", \"classes\": " << info.num_classes << ", \"length\": " << info.max_length
    << ", \"vocab_size\": " << info.vocab_size << ", \"pixels\": " << (info.pixels ? "true" : "false")
    << ", \"pair\": " << (info.pair ? "true" : "false") << ", \"splits\": [";
  for (size_t k = 0; k < all.size(); ++k) {
    const auto& s = all[k];
    o << (k ? ", " : "") << "{\"split\": " << json_string(s.split) << ", \"examples\": " << s.examples << ", \"labels\": [";
    for (size_t c = 0; c < s.labels.size(); ++c) o << (c ? ", " : "") << s.labels[c];
    o << "], \"length\": {\"min\": " << s.lengths.min << ", \"median\": " << s.lengths.median << ", \"max\": " << s.lengths.max << "}";
    if (info.pair)
      o << ", \"length2\": {\"min\": " << s.lengths2.min << ", \"median\": " << s.lengths2.median << ", \"max\": " << s.lengths2.max << "}";
    o << ", \"first_label\": " << s.first_label;
    if (!s.picture.empty()) {
      o << ", \"first_picture\": [";
      for (size_t r = 0; r < s.picture.size(); ++r) o << (r ? ", " : "") << json_string(s.picture[r]);
      o << "]";
    } else {
      o << ", \"first_text\": " << json_string(s.first_text);
      if (info.pair) o << ", \"first_text2\": " << json_string(s.first_text2);
    }
    o << ", \"notes\": [";
    for (size_t n = 0; n < s.notes.size(); ++n) o << (n ? ", " : "") << json_string(s.notes[n]);
    o << "]}";
  }
  o << "]}\n";
  return o.str();
}

}  // namespace lasgrad::data
