// Parsers for the files of the LRA release and MNIST, one per format, each reading through a Reader
// (so the same code serves real files, test fixtures and fuzz inputs) and appending to compact stores.
// Every error is a DataError naming the task, the file and the line or record.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/reader.h"

namespace lasgrad::data {

// Variable-length examples of one byte per step, stored back to back: example i is
// bytes[offsets[i] .. offsets[i+1]). One byte per token keeps the ListOps train split (96k examples of
// about 1000 tokens) near 100 MB and the AAN documents at their size on disk.
struct Store {
  std::vector<uint8_t> bytes;
  std::vector<int64_t> offsets{0};

  int64_t size() const { return static_cast<int64_t>(offsets.size()) - 1; }
  int64_t length(int64_t i) const { return offsets[i + 1] - offsets[i]; }
  const uint8_t* at(int64_t i) const { return bytes.data() + offsets[i]; }
  void add(const uint8_t* p, size_t n) {
    bytes.insert(bytes.end(), p, p + n);
    offsets.push_back(static_cast<int64_t>(bytes.size()));
  }
};

// ---- ListOps -------------------------------------------------------------------------------------
// Token ids: 0 padding, 1 unknown, 2..5 "[MIN" "[MAX" "[MED" "[SM", 6 "X" (the closing "]"),
// 7..16 the digits 0..9. "(" and ")" are dropped.
constexpr int kListOpsVocab = 17;
constexpr int kListOpsUnknown = 1;
int listops_token_id(std::string_view word);  // -1 for a word outside the vocabulary
const char* listops_token_text(int id);       // "<pad>", "<unk>", "[MIN", ..., "9"

struct ListOpsCounts {
  int64_t unknown = 0;    // words mapped to the unknown id (only when not strict)
  int64_t truncated = 0;  // examples longer than max_length
};
// Reads a ListOps TSV: header "Source<TAB>Target", then one "<expression><TAB><label 0..9>" per line.
// Appends each expression's token ids (truncated to max_length) to `tokens`, labels to `labels`.
// strict: a word outside the vocabulary is an error; otherwise it becomes id 1 and is counted.
void read_listops(Reader& in, int64_t max_length, bool strict, Store& tokens, std::vector<uint8_t>& labels,
                  ListOpsCounts& counts);

// ---- Text (IMDB) ---------------------------------------------------------------------------------
// Reads a "<label 0|1><TAB><text>" TSV (an optional first line "label<TAB>text" is a header). The text is
// everything after the first tab, kept byte for byte; appended truncated to max_length bytes.
void read_imdb_tsv(Reader& in, int64_t max_length, Store& bytes, std::vector<uint8_t>& labels);

// ---- Retrieval (AAN) -----------------------------------------------------------------------------
struct AanCounts {
  int64_t extra_tabs = 0;  // lines with more than 5 tab-separated fields (extra tabs kept in text2)
};
// Reads a headerless AAN TSV: "<label as float, 0.0 or 1.0><TAB>id1<TAB>id2<TAB>text1<TAB>text2".
// Split on the first four tabs, no quote handling. Texts are appended as bytes truncated to max_length.
void read_aan(Reader& in, int64_t max_length, Store& text1, Store& text2, std::vector<uint8_t>& labels,
              AanCounts& counts);

// ---- Image (CIFAR-10 binary) ---------------------------------------------------------------------
constexpr int kCifarRecord = 3073;  // label byte + 3 planes of 32x32
// Reads CIFAR-10 binary records, converting each to 1024 grayscale bytes
// (round(0.2989 R + 0.5870 G + 0.1140 B)). Appends pixels to `pixels` (1024 per record) and labels.
void read_cifar(Reader& in, std::vector<uint8_t>& pixels, std::vector<uint8_t>& labels);
uint8_t cifar_gray(uint8_t r, uint8_t g, uint8_t b);

// ---- MNIST idx -----------------------------------------------------------------------------------
// Reads an idx3 image file (magic 2051, count, 28, 28, then count*784 bytes) into `pixels`.
// Returns the count.
int64_t read_idx_images(Reader& in, std::vector<uint8_t>& pixels);
// Reads an idx1 label file (magic 2049, count, then count labels 0..9) into `labels`.
int64_t read_idx_labels(Reader& in, std::vector<uint8_t>& labels);

// ---- Pathfinder ----------------------------------------------------------------------------------
struct PathfinderEntry {
  std::string file;  // path relative to the difficulty folder: "imgs/<b>/sample_<k>.png"
  uint8_t label;
  int64_t line;  // line (text metadata) or row (NumPy metadata) it came from, 1-based
};
// Reads one metadata/<b>.npy: text lines "imgs/<b> sample_<k>.png <k> <label> ..." (fields split on
// spaces; field 0 the folder, 1 the file, 3 the label 0|1), or a real NumPy array of strings of the
// same rows (recognised by its "\x93NUMPY" magic).
void read_pathfinder_metadata(Reader& in, std::vector<PathfinderEntry>& out);

// Decodes an 8-bit grayscale PNG of exactly side x side pixels into out[side*side] (row-major).
// `name` is used in messages; wrong size, colour type or bit depth, or corrupt data, throw.
void decode_gray_png(const std::string& task, const std::string& name, std::string_view png, int side, uint8_t* out);
// Writes an 8-bit PNG of width x height pixels, row-major, with 1 (gray) or 3 (RGB) interleaved channels.
// The one PNG writer of the project (the generators' images, the training plots).
void write_png(const std::string& path, const uint8_t* pixels, int width, int height, int channels);

}  // namespace lasgrad::data
