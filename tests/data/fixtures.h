// Helpers for data tests: a temporary folder removed at the end of the test, and writers of small
// files in the real formats.
#pragma once
#include <doctest/doctest.h>
#include <png.h>
#include <stdlib.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace fixtures {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "lasgrad-data-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
  fs::path operator/(const std::string& s) const { return path / s; }
};

inline void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), bytes.size());
}

inline void write_gz(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  gzFile g = gzopen(p.c_str(), "wb");
  gzwrite(g, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(g);
}

inline std::string be32(uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 255), char((v >> 8) & 255), char(v & 255)};
}

// libpng simplified-API writer for any format (PNG_FORMAT_GRAY, PNG_FORMAT_RGB, ...).
inline void write_png(const fs::path& p, int w, int h, png_uint_32 format, const std::vector<uint8_t>& px) {
  fs::create_directories(p.parent_path());
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = w;
  img.height = h;
  img.format = format;
  REQUIRE(png_image_write_to_file(&img, p.c_str(), 0, px.data(), 0, nullptr));
}

// Runs f and returns the message of the exception it throws ("" when it does not throw).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace fixtures

// CHECK that `msg` contains every one of the given pieces, printing the message when it does not.
#define CHECK_MSG(msg, ...)                                                  \
  do {                                                                       \
    std::string m_ = (msg);                                                  \
    for (std::string piece : {__VA_ARGS__}) {                                \
      INFO("message: " << m_ << "  (expected to contain: " << piece << ")"); \
      CHECK(m_.find(piece) != std::string::npos);                            \
    }                                                                        \
  } while (0)
