// Buffered sequential reading of one input: a file on disk (raw or gzip, told apart by zlib from the
// first bytes) or a block of memory (tests and fuzz targets). Parsers read lines or fixed-size records
// through it, so files of any size are streamed and never held whole.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

typedef struct gzFile_s* gzFile;

namespace lasgrad::data {

class Reader {
 public:
  // Opens `path` for reading; throws DataError naming `task` and the path when it cannot.
  Reader(const std::string& task, const std::string& path);
  // Reads from memory that must outlive the Reader; `name` stands for the file in messages.
  Reader(const std::string& task, std::string name, std::string_view memory);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Next line without its '\n' (and without a trailing '\r'); false at end of input. A last line
  // without '\n' still counts. line_number() is then the 1-based number of the line just read. A line
  // longer than kMaxLineBytes throws (a file without newlines, /dev/zero) instead of filling memory.
  static constexpr size_t kMaxLineBytes = size_t(64) << 20;
  bool line(std::string& out);
  int64_t line_number() const { return line_number_; }

  // Reads up to n bytes into dst; returns how many were read (fewer only at end of input).
  size_t read(void* dst, size_t n);
  // Reads exactly n bytes or throws "truncated" naming `what` (e.g. "record 17").
  void read_exact(void* dst, size_t n, const std::string& what);
  // The next min(n, what is left) bytes without consuming them (n at most the buffer size).
  std::string_view peek(size_t n);
  // True when no byte is left.
  bool at_end();

  const std::string& task() const { return task_; }
  const std::string& name() const { return name_; }

 private:
  bool fill();  // refills buf_ from the source; false at end of input

  std::string task_, name_;
  gzFile gz_ = nullptr;
  std::vector<char> buf_;       // file input's buffer
  const char* data_ = nullptr;  // current block: buf_ or the memory
  size_t pos_ = 0, end_ = 0;
  int64_t line_number_ = 0;
};

// The content of a (small) file, raw bytes, at most its first `limit`; throws DataError naming task and path.
std::string read_file(const std::string& task, const std::string& path, size_t limit = SIZE_MAX);

// Writes `text` to PATH.tmp, flushed, then renames it over `path`: a reader sees the old file or the new
// one, never half of one. Throws DataError naming the path.
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace lasgrad::data
