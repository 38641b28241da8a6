// Numbers and lists from text, strictly: the whole string, decimal only, in range. Every place that
// reads a number or a comma-separated list a user typed (flags, settings, sweep lists) goes through
// these, so "1e99" as an integer, "0x10" or " 5" are refused everywhere alike instead of being clamped
// or read in another base.
#pragma once
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/error.h"

namespace lasgrad {

// A whole number in [INT64_MIN, INT64_MAX]: optional sign, then decimal digits only.
inline bool parse_int64(const std::string& s, int64_t& out) {
  const size_t start = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (s.size() == start || s.find_first_not_of("0123456789", start) != std::string::npos) return false;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), nullptr, 10);
  if (errno == ERANGE) return false;
  out = v;
  return true;
}

// A finite decimal number ("2e-3", "-0.5", "7"); no hexadecimal, no inf or nan, no spaces.
inline bool parse_decimal(const std::string& s, double& out) {
  if (s.empty() || s.find_first_not_of("0123456789+-.eE") != std::string::npos) return false;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (*end || !std::isfinite(v) || errno == ERANGE) return false;
  out = v;
  return true;
}

// "a,b,c" -> {"a", "b", "c"}; "" -> {}. An empty item ("1,,2", a comma at either end) is a typing slip
// that would otherwise vanish unseen: it throws Error naming `what` and the text.
inline std::vector<std::string> split_commas(const std::string& s, const std::string& what) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  for (size_t at = 0; at <= s.size();) {
    const size_t comma = std::min(s.find(',', at), s.size());
    if (comma == at) throw Error(what + ": '" + s + "' has an empty item (two commas, or one at an end)");
    out.push_back(s.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

}  // namespace lasgrad
