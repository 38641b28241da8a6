#include "data/reader.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/error.h"

namespace lasgrad::data {

static constexpr size_t kBufferBytes = 1 << 18;

Reader::Reader(const std::string& task, const std::string& path) : task_(task), name_(path) {
  gz_ = gzopen(path.c_str(), "rb");
  if (!gz_) throw file_error(task, path, std::string("cannot open: ") + std::strerror(errno));
  gzbuffer(gz_, kBufferBytes);
  buf_.resize(kBufferBytes);
}

Reader::Reader(const std::string& task, std::string name, std::string_view memory)
    : task_(task), name_(std::move(name)), data_(memory.data()), end_(memory.size()) {}

Reader::~Reader() {
  if (gz_) gzclose(gz_);
}

bool Reader::fill() {
  if (!gz_) {
    return false;  // memory input: the constructor made the whole block the one buffer
  }
  int n = gzread(gz_, buf_.data(), static_cast<unsigned>(buf_.size()));
  if (n < 0) {
    int code = 0;
    const char* msg = gzerror(gz_, &code);
    throw file_error(task_, name_, std::string("read error (corrupt gzip data?): ") + (msg ? msg : "unknown"));
  }
  data_ = buf_.data();
  pos_ = 0;
  end_ = static_cast<size_t>(n);
  return n > 0;
}

bool Reader::line(std::string& out) {
  out.clear();
  bool any = false;
  for (;;) {
    if (pos_ == end_ && !fill()) break;
    any = true;
    const char* start = data_ + pos_;
    const void* nl = std::memchr(start, '\n', end_ - pos_);
    if (nl) {
      size_t n = static_cast<const char*>(nl) - start;
      out.append(start, n);
      pos_ += n + 1;
      break;
    }
    out.append(start, end_ - pos_);
    pos_ = end_;
    if (out.size() > kMaxLineBytes)
      throw file_error(task_, name_,
                       "line " + std::to_string(line_number_ + 1) + " runs past " +
                           std::to_string(kMaxLineBytes >> 20) + " MiB without a newline (not a text file?)");
  }
  if (!any) return false;
  if (!out.empty() && out.back() == '\r') out.pop_back();
  ++line_number_;
  return true;
}

size_t Reader::read(void* dst, size_t n) {
  size_t done = 0;
  char* out = static_cast<char*>(dst);
  while (done < n) {
    if (pos_ == end_ && !fill()) break;
    size_t k = std::min(n - done, end_ - pos_);
    std::memcpy(out + done, data_ + pos_, k);
    pos_ += k;
    done += k;
  }
  return done;
}

void Reader::read_exact(void* dst, size_t n, const std::string& what) {
  size_t got = read(dst, n);
  if (got != n)
    throw file_error(
        task_, name_,
        "truncated: " + what + " needs " + std::to_string(n) + " bytes, only " + std::to_string(got) + " left");
}

std::string_view Reader::peek(size_t n) {
  if (end_ - pos_ < n && gz_) {
    // Move what is left to the front of the buffer and top it up.
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
    data_ = buf_.data();
    while (end_ < n) {
      int got = gzread(gz_, buf_.data() + end_, static_cast<unsigned>(buf_.size() - end_));
      if (got <= 0) break;
      end_ += got;
    }
  }
  return std::string_view(data_ + pos_, std::min(n, end_ - pos_));
}

bool Reader::at_end() { return pos_ == end_ && !fill(); }

std::string read_file(const std::string& task, const std::string& path, size_t limit) {
  // An ifstream opens a folder and reads it as empty: refused, or --config DIR would train on defaults.
  if (std::filesystem::is_directory(path)) throw file_error(task, path, "is a folder, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw file_error(task, path, std::string("cannot open: ") + std::strerror(errno));
  if (limit != SIZE_MAX) {
    std::string head(limit, '\0');
    in.read(head.data(), static_cast<std::streamsize>(limit));
    if (in.bad()) throw file_error(task, path, "read error");
    head.resize(static_cast<size_t>(in.gcount()));
    return head;
  }
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw file_error(task, path, "read error");
  return std::move(s).str();
}

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text << std::flush;
    if (!out) throw DataError(tmp + ": cannot write: " + std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw DataError(path + ": cannot replace it with " + tmp + ": " + ec.message());
}

}  // namespace lasgrad::data
