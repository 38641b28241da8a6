// Errors from reading data sets: every message names the task, the file and the line or record, e.g.
//   ListOps: data/basic_train.tsv line 12: label 'x' is not a number
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "engine/error.h"

namespace lasgrad::data {

// Any problem with files on disk or their contents (missing, truncated, malformed, out of range).
struct DataError : Error {
  using Error::Error;
};

// "<task>: <file> <unit> <n>: <what>", the one message shape of every parser; unit is "line",
// "record" or "byte offset".
inline DataError data_error(const std::string& task, const std::string& file, const char* unit, int64_t n,
                            const std::string& what) {
  return DataError(task + ": " + file + " " + unit + " " + std::to_string(n) + ": " + what);
}

// "<task>: <file>: <what>", for problems of a whole file (missing, empty, wrong magic).
inline DataError file_error(const std::string& task, const std::string& file, const std::string& what) {
  return DataError(task + ": " + file + ": " + what);
}

}  // namespace lasgrad::data
