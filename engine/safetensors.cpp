// safetensors reading (the header is checked by safetensors_header.cpp) and an atomic writer.
#include "engine/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

namespace lasgrad {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // the format's own limit on the JSON header

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error("safetensors: " + path + ": " + what);
}

const char* dtype_code(DType d) {
  switch (d) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I32: return "I32";
    case DType::BF16: return "BF16";
  }
  return "?";
}

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

  SafeTensorsHeader h = parse_safetensors_header(header, data_size, path);
  SafeTensors out;
  out.path = path;
  out.metadata = std::move(h.metadata);
  for (const SafeTensorsEntry& e : h.entries) {
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
