#include "tests/fuzz/targets.h"

#include <png.h>

#include <cstdlib>
#include <cstring>
#include <string_view>

#include "data/error.h"
#include "data/formats.h"
#include "data/reader.h"
#include "engine/safetensors.h"

namespace lasgrad::fuzz {

using namespace lasgrad::data;

namespace {

std::string_view view(const uint8_t* d, size_t n) { return {reinterpret_cast<const char*>(d), n}; }

// Runs a parser; DataError is the expected answer to bad input, so it is swallowed.
template <class F>
void guarded(F&& f) {
  try {
    f();
  } catch (const DataError&) {}
}

// TSV: the first byte picks the parser (ListOps strict, ListOps lenient, IMDB TSV, AAN), the rest is the file.
void run_tsv(const uint8_t* d, size_t n) {
  if (n == 0) return;
  Reader in("fuzz", "fuzz.tsv", view(d + 1, n - 1));
  Store a, b;
  std::vector<uint8_t> labels;
  guarded([&] {
    switch (d[0] % 4) {
      case 0:
      case 1: {
        ListOpsCounts c;
        read_listops(in, 64, d[0] % 4 == 0, a, labels, c);
        break;
      }
      case 2: read_imdb_tsv(in, 64, a, labels); break;
      default: {
        AanCounts c;
        read_aan(in, 64, a, b, labels, c);
      }
    }
  });
  for (int64_t i = 0; i < a.size(); ++i)
    if (a.length(i) > 64) __builtin_trap();  // truncation must hold
}

// idx: the first byte picks images or labels.
void run_idx(const uint8_t* d, size_t n) {
  if (n == 0) return;
  Reader in("fuzz", "fuzz.idx", view(d + 1, n - 1));
  std::vector<uint8_t> out;
  guarded([&] {
    if (d[0] & 1) {
      int64_t count = read_idx_images(in, out);
      if (static_cast<int64_t>(out.size()) != count * 784) __builtin_trap();
    } else {
      int64_t count = read_idx_labels(in, out);
      if (static_cast<int64_t>(out.size()) != count) __builtin_trap();
    }
  });
}

void run_cifar(const uint8_t* d, size_t n) {
  Reader in("fuzz", "fuzz.bin", view(d, n));
  std::vector<uint8_t> pixels, labels;
  guarded([&] { read_cifar(in, pixels, labels); });
  if (pixels.size() != labels.size() * 1024) __builtin_trap();
}

// Pathfinder: the first byte picks PNG decoding at side 4, 32 or 64, or metadata parsing.
void run_pathfinder(const uint8_t* d, size_t n) {
  if (n == 0) return;
  const int pick = d[0] % 4;
  if (pick == 3) {
    Reader in("fuzz", "fuzz.npy", view(d + 1, n - 1));
    std::vector<PathfinderEntry> entries;
    guarded([&] { read_pathfinder_metadata(in, entries); });
    return;
  }
  const int side = pick == 0 ? 4 : pick == 1 ? 32 : 64;
  std::vector<uint8_t> out(size_t(side) * side);
  guarded([&] { decode_gray_png("fuzz", "fuzz.png", view(d + 1, n - 1), side, out.data()); });
}

std::string be32(uint32_t v) { return {char(v >> 24), char((v >> 16) & 255), char((v >> 8) & 255), char(v & 255)}; }

std::vector<std::string> seeds_tsv() {
  return {std::string(1, '\0') + "Source\tTarget\n( ( ( [MED 6 ) 1 ) ] )\t3\n( [MAX 2 ] )\t2\n",
          std::string(1, '\1') + "Source\tTarget\r\n( ( [SM 4 ) [FOO ] )\t4\r\n",
          std::string(1, '\2') + "label\ttext\n1\tGreat<br />film\n0\tbad \xc3\xa9\n",
          std::string(1, '\3') + "1.0\tA\tB\tsaid \"x\ty\"\tz\n0.0\tC\tD\tp\tq\n"};
}

std::vector<std::string> seeds_idx() {
  std::string images = std::string(1, '\1') + be32(2051) + be32(2) + be32(28) + be32(28) + std::string(2 * 784, '\7');
  std::string labels = std::string(1, '\0') + be32(2049) + be32(3) + "\1\2\3";
  return {images, labels};
}

std::vector<std::string> seeds_cifar() {
  std::string rec(3073, '\x40');
  rec[0] = 3;
  return {rec + rec};
}

std::vector<std::string> seeds_pathfinder() {
  // A 4x4 8-bit gray PNG, as libpng writes it.
  std::vector<std::string> out;
  uint8_t px[16];
  for (int i = 0; i < 16; ++i) px[i] = static_cast<uint8_t>(i * 16);
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = img.height = 4;
  img.format = PNG_FORMAT_GRAY;
  std::string png(1024, '\0');
  png_alloc_size_t bytes = png.size();
  if (!png_image_write_to_memory(&img, png.data(), &bytes, 0, px, 4, nullptr)) std::abort();
  png.resize(bytes);
  out.push_back(std::string(1, '\0') + png);
  out.push_back(std::string(1, '\3') +
                "imgs/0 sample_0.png 0 1 1.8 14 4 2 0.5 1 1\nimgs/0 sample_1.png 1 0 1.8 14 4 2 0.5 1 1\n");
  std::string header = "{'descr': '|S12', 'fortran_order': False, 'shape': (1, 4), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string npy = std::string("\x93NUMPY\x01\x00", 8) + char(header.size()) + '\0' + header;
  for (const char* cell : {"imgs/0", "sample_0.png", "0", "1"}) {
    std::string c = cell;
    npy += c + std::string(12 - c.size(), '\0');
  }
  out.push_back(std::string(1, '\3') + npy);
  return out;
}

// A safetensors header: the first 2 bytes give the data section's size, the rest is the JSON header.
// The header check (engine/safetensors_header.cpp) throws lasgrad::Error for bad input.
void run_safetensors(const uint8_t* d, size_t n) {
  if (n < 2) return;
  const uint64_t data_size = d[0] | uint64_t(d[1]) << 8;
  try {
    parse_safetensors_header(std::string(view(d + 2, n - 2)), data_size, "fuzz.safetensors");
  } catch (const Error&) {}
}

std::vector<std::string> seeds_safetensors() {
  const std::string size8("\x08\x00", 2), size20("\x14\x00", 2);
  return {size8 + R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
          size20 + R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F64","shape":[2],"data_offsets":[4,20]},)"
                   R"("b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})",
          // libFuzzer's find: a number past double's range, which nlohmann reports as out_of_range
          size8 + R"({"a":{"dtype":"F32","shape":[2E400],"data_offsets":[0,8]}})"};
}

}  // namespace

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {{"tsv", run_tsv, seeds_tsv},
                                          {"idx", run_idx, seeds_idx},
                                          {"cifar", run_cifar, seeds_cifar},
                                          {"pathfinder", run_pathfinder, seeds_pathfinder},
                                          {"safetensors", run_safetensors, seeds_safetensors}};
  return all;
}

const Target* find_target(const std::string& name) {
  for (const auto& t : targets())
    if (name == t.name) return &t;
  return nullptr;
}

}  // namespace lasgrad::fuzz
