// safetensors reading and writing: the header (untrusted input) parsed by nlohmann-json and every field
// checked against the file, and an atomic writer.
#include "engine/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

namespace lasgrad {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeader = 100ull << 20;  // the format's own limit on the JSON header

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
  } catch (const json::parse_error& e) {
    fail(path, std::string("bad JSON header: ") + e.what());
  }
}

std::vector<uint64_t> uints(const std::string& path, const std::string& name, const json& obj, const char* field) {
  const auto it = obj.find(field);
  if (it == obj.end() || !it->is_array()) fail(path, "tensor '" + name + "': '" + field + "' must be an array of integers");
  std::vector<uint64_t> out;
  for (const json& x : *it) {
    if (!x.is_number_unsigned()) fail(path, "tensor '" + name + "': '" + field + "' must hold non-negative integers");
    out.push_back(x.get<uint64_t>());
  }
  return out;
}

const char* dtype_code(DType d) { return d == DType::F32 ? "F32" : d == DType::F64 ? "F64" : "I32"; }


}  // namespace

bool SafeTensors::contains(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return true;
  return false;
}

const Tensor& SafeTensors::at(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  fail(path, "no tensor named '" + name + "'");
}

SafeTensors load_safetensors(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, "is a directory, not a safetensors file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  if (size < 8) fail(path, "truncated: " + std::to_string(size) + " bytes, fewer than the 8-byte header length");
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  if (n > kMaxHeader) fail(path, "header length " + std::to_string(n) + " exceeds the 100 MiB limit (corrupt file?)");
  if (n > size - 8)
    fail(path, "truncated: the header claims " + std::to_string(n) + " bytes but only " + std::to_string(size - 8) +
                   " follow");
  std::string header(n, '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  if (!in) fail(path, "read error in the header");
  const uint64_t data_size = size - 8 - n;

  const json doc = parse_header(header, path);
  if (!doc.is_object()) fail(path, "the header must be a JSON object");
  SafeTensors out;
  out.path = path;
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
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
    else fail(path, "tensor '" + name + "' has dtype " + code + "; supported: F32, F64, I32");
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
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < entries.size(); ++i)
    if (entries[i].begin < entries[i - 1].end)
      fail(path, "tensors '" + entries[i - 1].name + "' and '" + entries[i].name + "' overlap");
  // The format packs the data with no gap: bytes that no tensor claims mean a corrupt or spliced file.
  uint64_t covered = 0;
  for (const Entry& e : entries) {
    if (e.begin != covered)
      fail(path, std::to_string(e.begin - covered) + " data bytes before tensor '" + e.name + "' belong to no tensor");
    covered = e.end;
  }
  if (covered != data_size)
    fail(path, std::to_string(data_size - covered) + " bytes after the last tensor's data belong to no tensor (trailing garbage)");
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    in.seekg(static_cast<std::streamoff>(8 + n + e.begin));
    in.read(static_cast<char*>(t.raw()), static_cast<std::streamsize>(e.end - e.begin));
    if (!in) fail(path, "read error in the data of '" + e.name + "'");
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::set<std::string> names;
  nlohmann::ordered_json h = nlohmann::ordered_json::object();  // in the order given, for readers of the file
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<Tensor> host;
  for (const auto& [name, t] : tensors) {
    if (name.empty() || name == "__metadata__" || !names.insert(name).second)
      fail(path, "cannot write a tensor named '" + name + "' (empty, reserved, or a duplicate)");
    if (!t.defined()) fail(path, "tensor '" + name + "' is undefined");
    host.push_back(t.to(Device::CPU));
    h[name] = {{"dtype", dtype_code(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string header;
  try {
    header = h.dump();
  } catch (const nlohmann::json::type_error& e) {  // a name or a value that is not UTF-8
    fail(path, std::string("cannot write the header: ") + e.what());
  }
  header.append((8 - header.size() % 8) % 8, ' ');  // align the data to 8 bytes, as the reference writer does

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, "cannot create " + tmp + ": " + std::strerror(errno));
  auto write_all = [&](const void* p, size_t bytes) {
    const char* c = static_cast<const char*>(p);
    while (bytes > 0) {
      ssize_t w = ::write(fd, c, bytes);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        std::string why = std::strerror(errno);
        ::close(fd);
        ::unlink(tmp.c_str());
        fail(path, "write failed: " + why);
      }
      c += w;
      bytes -= static_cast<size_t>(w);
    }
  };
  uint64_t n = header.size();
  write_all(&n, 8);
  write_all(header.data(), header.size());
  for (const Tensor& t : host) write_all(t.raw(), t.nbytes());
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    fail(path, "fsync/close failed: " + why);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    fail(path, "rename from " + tmp + " failed: " + why);
  }
  // Make the rename itself durable: fsync the folder that holds the entry.
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  if (dir.empty()) dir = "/";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace lasgrad
