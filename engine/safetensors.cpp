// safetensors reading and writing: a small JSON parser for the header (the header is untrusted input:
// every read is bounds-checked), and an atomic writer.
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

namespace lasgrad {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // the format's own limit on the JSON header

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error("safetensors: " + path + ": " + what);
}

// JSON values as the header uses them: objects, arrays, strings, non-negative integers (anything else
// parses but is rejected where a field needs a specific kind).
struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  std::string str;
  double num = 0;
  bool integral = false;
  uint64_t uint = 0;  // valid when integral
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;
};

class Parser {
 public:
  Parser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  Json document() {
    Json v = value(0);
    ws();
    if (i_ != s_.size()) error("trailing characters after the JSON header");
    return v;
  }

 private:
  [[noreturn]] void error(const std::string& what) {
    fail(path_, "bad JSON header at byte " + std::to_string(i_) + ": " + what);
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  char peek() {
    ws();
    if (i_ >= s_.size()) error("unexpected end");
    return s_[i_];
  }
  void expect(char c) {
    if (peek() != c) error(std::string("expected '") + c + "'");
    ++i_;
  }
  bool literal(const char* word) {
    size_t n = std::strlen(word);
    if (s_.compare(i_, n, word) != 0) return false;
    i_ += n;
    return true;
  }

  Json value(int depth) {
    if (depth > 64) error("nested too deeply");
    Json v;
    char c = peek();
    if (c == '{') {
      v.kind = Json::Object;
      ++i_;
      if (peek() == '}') return ++i_, v;
      for (;;) {
        if (peek() != '"') error("expected a member name");
        std::string key = string();
        expect(':');
        v.members.emplace_back(std::move(key), value(depth + 1));
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect('}');
        return v;
      }
    }
    if (c == '[') {
      v.kind = Json::Array;
      ++i_;
      if (peek() == ']') return ++i_, v;
      for (;;) {
        v.items.push_back(value(depth + 1));
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect(']');
        return v;
      }
    }
    if (c == '"') {
      v.kind = Json::String;
      v.str = string();
      return v;
    }
    if (literal("true") || literal("false")) return v.kind = Json::Bool, v;
    if (literal("null")) return v;
    return number();
  }

  std::string string() {
    ++i_;  // the opening quote
    std::string out;
    while (true) {
      if (i_ >= s_.size()) error("unterminated string");
      char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) error("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) error("unterminated escape");
      char e = s_[i_++];
      switch (e) {
        case '"': case '\\': case '/': out += e; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          if (i_ + 4 > s_.size()) error("short \\u escape");
          unsigned cp = 0;
          for (int k = 0; k < 4; ++k) {
            char h = s_[i_++];
            cp = cp * 16 + (h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                            : h >= 'A' && h <= 'F' ? h - 'A' + 10 : (error("bad \\u escape"), 0));
          }
          // UTF-8 encode (surrogate pairs are kept as two 3-byte sequences: names here are ASCII).
          if (cp < 0x80) out += static_cast<char>(cp);
          else if (cp < 0x800) out += static_cast<char>(0xC0 | cp >> 6), out += static_cast<char>(0x80 | (cp & 0x3F));
          else out += static_cast<char>(0xE0 | cp >> 12), out += static_cast<char>(0x80 | (cp >> 6 & 0x3F)),
               out += static_cast<char>(0x80 | (cp & 0x3F));
          break;
        }
        default: error(std::string("bad escape \\") + e);
      }
    }
  }

  Json number() {
    Json v;
    v.kind = Json::Number;
    size_t start = i_;
    bool digits_only = true;
    while (i_ < s_.size() && std::strchr("+-0123456789.eE", s_[i_])) {
      digits_only &= s_[i_] >= '0' && s_[i_] <= '9';
      ++i_;
    }
    if (i_ == start) error("unexpected character");
    std::string text = s_.substr(start, i_ - start);
    if (digits_only && text.size() <= 19) {
      v.integral = true;
      v.uint = std::stoull(text);
      v.num = static_cast<double>(v.uint);
    } else {
      try {
        v.num = std::stod(text);
      } catch (...) {
        error("bad number '" + text + "'");
      }
    }
    return v;
  }

  const std::string& s_;
  const std::string& path_;
  size_t i_ = 0;
};

const Json* member(const Json& obj, const std::string& key) {
  for (const auto& [k, v] : obj.members)
    if (k == key) return &v;
  return nullptr;
}

std::vector<uint64_t> uints(const std::string& path, const std::string& name, const Json* v, const char* field) {
  if (!v || v->kind != Json::Array) fail(path, "tensor '" + name + "': '" + field + "' must be an array of integers");
  std::vector<uint64_t> out;
  for (const Json& x : v->items) {
    if (x.kind != Json::Number || !x.integral)
      fail(path, "tensor '" + name + "': '" + field + "' must hold non-negative integers");
    out.push_back(x.uint);
  }
  return out;
}

const char* dtype_code(DType d) { return d == DType::F32 ? "F32" : d == DType::F64 ? "F64" : "I32"; }


}  // namespace

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else out += c;
  }
  return out + "\"";
}

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

  Json doc = Parser(header, path).document();
  if (doc.kind != Json::Object) fail(path, "the header must be a JSON object");
  SafeTensors out;
  out.path = path;
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  std::set<std::string> names;
  for (const auto& [name, v] : doc.members) {
    if (!names.insert(name).second) fail(path, "tensor '" + name + "' appears twice in the header");
    if (name == "__metadata__") {
      if (v.kind != Json::Object) fail(path, "__metadata__ must be an object of strings");
      for (const auto& [k, s] : v.members) {
        if (s.kind != Json::String) fail(path, "__metadata__ value of '" + k + "' is not a string");
        out.metadata[k] = s.str;
      }
      continue;
    }
    if (v.kind != Json::Object) fail(path, "tensor '" + name + "' is not an object");
    const Json* dt = member(v, "dtype");
    if (!dt || dt->kind != Json::String) fail(path, "tensor '" + name + "' has no dtype string");
    DType dtype;
    if (dt->str == "F32") dtype = DType::F32;
    else if (dt->str == "F64") dtype = DType::F64;
    else if (dt->str == "I32") dtype = DType::I32;
    else fail(path, "tensor '" + name + "' has dtype " + dt->str + "; supported: F32, F64, I32");
    Shape shape;
    uint64_t count = 1;
    for (uint64_t d : uints(path, name, member(v, "shape"), "shape")) {
      if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || (d && count > data_size / d))
        fail(path, "tensor '" + name + "' has a shape larger than the file");
      count *= d;
      shape.push_back(static_cast<int64_t>(d));
    }
    std::vector<uint64_t> off = uints(path, name, member(v, "data_offsets"), "data_offsets");
    if (off.size() != 2 || off[0] > off[1] || off[1] > data_size)
      fail(path, "tensor '" + name + "' has data_offsets outside the " + std::to_string(data_size) +
                     " data bytes (truncated file?)");
    if (off[1] - off[0] != count * dtype_size(dtype))
      fail(path, "tensor '" + name + "': " + std::to_string(off[1] - off[0]) + " data bytes for " + dt->str + " " +
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
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (const auto& [k, v] : metadata) {
      if (header.back() != '{') header += ',';
      header += json_string(k) + ":" + json_string(v);
    }
    header += "}";
  }
  uint64_t offset = 0;
  std::vector<Tensor> host;
  for (const auto& [name, t] : tensors) {
    if (name.empty() || name == "__metadata__" || !names.insert(name).second)
      fail(path, "cannot write a tensor named '" + name + "' (empty, reserved, or a duplicate)");
    if (!t.defined()) fail(path, "tensor '" + name + "' is undefined");
    host.push_back(t.to(Device::CPU));
    std::string shape;
    for (int64_t d : t.shape()) {
      if (!shape.empty()) shape += ',';
      shape += std::to_string(d);
    }
    if (header.size() > 1) header += ',';
    header += json_string(name) + ":{\"dtype\":\"" + dtype_code(t.dtype()) +
              "\",\"shape\":[" + shape + "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + t.nbytes()) + "]}";
    offset += t.nbytes();
  }
  header += "}";
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
