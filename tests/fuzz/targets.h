// Fuzz targets for the parsers of untrusted files: the data formats and the safetensors header. Each
// takes arbitrary bytes as the content of one file and must either parse it or throw the parser's error
// (DataError; lasgrad::Error for the header); any other exception, crash or sanitizer report is a bug.
// The same targets run under libFuzzer (tools/fuzz.sh, clang) and as a seeded mutation replay in the
// ordinary test suite (tests/data/test_fuzz_replay.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lasgrad::fuzz {

struct Target {
  const char* name;
  void (*run)(const uint8_t* data, size_t size);  // throws nothing: the parser's own error is the answer
  std::vector<std::string> (*seeds)();            // valid inputs to start from
};

const std::vector<Target>& targets();
const Target* find_target(const std::string& name);

}  // namespace lasgrad::fuzz
