// The safetensors header check: the JSON (untrusted input) parsed by nlohmann-json, then every entry's
// dtype, shape and offsets held against the data section. It needs no tensor runtime, so the fuzzer
// (tests/fuzz/targets.cpp) builds it alone.
#include <algorithm>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "engine/safetensors.h"

namespace lasgrad {

namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error("safetensors: " + path + ": " + what);
}

// The header's JSON through nlohmann-json, with what the format needs beyond the grammar: a name may
// appear only once in an object (nlohmann would keep the last silently), and nesting is bounded.
json parse_header(const std::string& text, const std::string& path) {
  std::vector<std::set<std::string>> keys;  // the names seen in each open object
  auto check = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > 64) fail(path, "bad JSON header: nested too deeply");
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    else if (event == json::parse_event_t::object_end) keys.pop_back();
    else if (event == json::parse_event_t::key && !keys.back().insert(parsed.get<std::string>()).second)
      fail(path, (depth == 1 ? "tensor '" : "member '") + parsed.get<std::string>() + "' appears twice in the header");
    return true;
  };
  try {
    return json::parse(text, check);
  } catch (const json::exception& e) {  // a grammar error, or a number past double's range (out_of_range)
    fail(path, std::string("bad JSON header: ") + e.what());
  }
}

std::vector<uint64_t> uints(const std::string& path, const std::string& name, const json& obj, const char* field) {
  const auto it = obj.find(field);
  if (it == obj.end() || !it->is_array())
    fail(path, "tensor '" + name + "': '" + field + "' must be an array of integers");
  std::vector<uint64_t> out;
  for (const json& x : *it) {
    if (!x.is_number_unsigned()) fail(path, "tensor '" + name + "': '" + field + "' must hold non-negative integers");
    out.push_back(x.get<uint64_t>());
  }
  return out;
}

}  // namespace

SafeTensorsHeader parse_safetensors_header(const std::string& header, uint64_t data_size, const std::string& path) {
  const json doc = parse_header(header, path);
  if (!doc.is_object()) fail(path, "the header must be a JSON object");
  SafeTensorsHeader out;
  std::vector<SafeTensorsEntry>& entries = out.entries;
  for (const auto& [name, v] : doc.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) fail(path, "__metadata__ must be an object of strings");
      for (const auto& [k, value] : v.items()) {
        if (!value.is_string()) fail(path, "__metadata__ value of '" + k + "' is not a string");
        out.metadata[k] = value.get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) fail(path, "tensor '" + name + "' is not an object");
    const auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string()) fail(path, "tensor '" + name + "' has no dtype string");
    const std::string code = dt->get<std::string>();
    DType dtype;
    if (code == "F32") dtype = DType::F32;
    else if (code == "F64") dtype = DType::F64;
    else if (code == "I32") dtype = DType::I32;
    else if (code == "BF16") dtype = DType::BF16;
    else fail(path, "tensor '" + name + "' has dtype " + code + "; supported: F32, F64, I32, BF16");
    Shape shape;
    uint64_t count = 1;
    for (uint64_t d : uints(path, name, v, "shape")) {
      if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || (d && count > data_size / d))
        fail(path, "tensor '" + name + "' has a shape larger than the file");
      count *= d;
      shape.push_back(static_cast<int64_t>(d));
    }
    std::vector<uint64_t> off = uints(path, name, v, "data_offsets");
    if (off.size() != 2 || off[0] > off[1] || off[1] > data_size)
      fail(path, "tensor '" + name + "' has data_offsets outside the " + std::to_string(data_size) +
                     " data bytes (truncated file?)");
    if (off[1] - off[0] != count * dtype_size(dtype))
      fail(path, "tensor '" + name + "': " + std::to_string(off[1] - off[0]) + " data bytes for " + code + " " +
                     shape_str(shape) + ", which needs " + std::to_string(count * dtype_size(dtype)));
    entries.push_back({name, dtype, shape, off[0], off[1]});
  }
  std::sort(entries.begin(), entries.end(),
            [](const SafeTensorsEntry& a, const SafeTensorsEntry& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < entries.size(); ++i)
    if (entries[i].begin < entries[i - 1].end)
      fail(path, "tensors '" + entries[i - 1].name + "' and '" + entries[i].name + "' overlap");
  // The format packs the data with no gap: bytes that no tensor claims mean a corrupt or spliced file.
  uint64_t covered = 0;
  for (const SafeTensorsEntry& e : entries) {
    if (e.begin != covered)
      fail(path, std::to_string(e.begin - covered) + " data bytes before tensor '" + e.name + "' belong to no tensor");
    covered = e.end;
  }
  if (covered != data_size)
    fail(path, std::to_string(data_size - covered) +
                   " bytes after the last tensor's data belong to no tensor (trailing garbage)");
  return out;
}

}  // namespace lasgrad
