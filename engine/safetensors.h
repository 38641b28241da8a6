// safetensors files (https://github.com/huggingface/safetensors): the format of checkpoints and test
// fixtures. Layout: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value", ...}}
// then the raw little-endian data; offsets are relative to the byte after the header. Supported dtypes:
// F32, F64, I32 (the engine's). Every error throws lasgrad::Error naming the file and what is wrong.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace lasgrad {

struct SafeTensors {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file order (by data offset); CPU tensors
  std::map<std::string, std::string> metadata;
  std::string path;  // where it was read from, for error messages

  bool contains(const std::string& name) const;
  // The tensor called `name`; throws naming the file and the name when it is absent.
  const Tensor& at(const std::string& name) const;
};

// One tensor of a header: where its data lies in the data section (offsets from its start).
struct SafeTensorsEntry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};
struct SafeTensorsHeader {
  std::vector<SafeTensorsEntry> entries;  // by data offset
  std::map<std::string, std::string> metadata;
};
// Checks the JSON header of a file whose data section holds `data_size` bytes: the JSON, every entry's
// dtype, shape and offsets (inside the data, sized numel * dtype size, not overlapping, no byte
// unclaimed), and duplicate names. Throws Error naming `path`.
SafeTensorsHeader parse_safetensors_header(const std::string& header, uint64_t data_size, const std::string& path);

// Reads a whole file: the header length against the file size, then parse_safetensors_header.
SafeTensors load_safetensors(const std::string& path);

// Writes tensors (any device; data in the given order) and metadata atomically: to a temporary file in
// the same folder, flushed and fsync'ed, then renamed over `path`, so a crash leaves either the old
// file or the new one. Names must be unique, non-empty and not "__metadata__".
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace lasgrad
