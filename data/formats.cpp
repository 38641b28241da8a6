#include "data/formats.h"

#include <png.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "data/error.h"

namespace lasgrad::data {

namespace {

// Quoted and shortened for messages, so a binary line does not flood the terminal.
std::string show(std::string_view s) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 40; ++i) {
    unsigned char c = s[i];
    if (c >= 32 && c < 127) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (s.size() > 40) out += "...";
  return out + "'";
}

DataError line_error(const Reader& in, const std::string& what) {
  return data_error(in.task(), in.name(), "line", in.line_number(), what);
}

// A class label written as a whole number in [0, classes).
uint8_t parse_label(const Reader& in, std::string_view s, int classes) {
  int value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec == std::errc::invalid_argument || end != s.data() + s.size())
    throw line_error(in, "label " + show(s) + " is not a number");
  if (ec == std::errc::result_out_of_range || value < 0 || value >= classes)
    throw line_error(in, "label " + show(s) + " is out of range 0.." + std::to_string(classes - 1));
  return static_cast<uint8_t>(value);
}

uint32_t big_endian(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

void add_truncated(Store& s, std::string_view text, int64_t max_length) {
  size_t n = std::min<size_t>(text.size(), static_cast<size_t>(max_length));
  s.add(reinterpret_cast<const uint8_t*>(text.data()), n);
}

}  // namespace

// ---- ListOps -------------------------------------------------------------------------------------

static const char* const kListOpsWords[kListOpsVocab] = {"<pad>", "<unk>", "[MIN", "[MAX", "[MED", "[SM", "X", "0", "1",
                                                         "2",     "3",     "4",    "5",    "6",    "7",   "8", "9"};

int listops_token_id(std::string_view w) {
  if (w.size() == 1 && w[0] >= '0' && w[0] <= '9') return 7 + (w[0] - '0');
  if (w == "]") return 6;
  for (int id = 2; id <= 6; ++id)
    if (w == kListOpsWords[id]) return id;
  return -1;
}

const char* listops_token_text(int id) { return id >= 0 && id < kListOpsVocab ? kListOpsWords[id] : "?"; }

void read_listops(Reader& in, int64_t max_length, bool strict, Store& tokens, std::vector<uint8_t>& labels,
                  ListOpsCounts& counts) {
  std::string line;
  if (!in.line(line)) throw file_error(in.task(), in.name(), "empty file (expected the header 'Source<TAB>Target')");
  if (line != "Source\tTarget") throw line_error(in, "expected the header 'Source<TAB>Target', found " + show(line));
  std::vector<uint8_t> ids;
  while (in.line(line)) {
    size_t tab = line.find('\t');
    if (tab == std::string::npos)
      throw line_error(in, "missing column: expected '<expression><TAB><label>', found no tab");
    std::string_view src(line.data(), tab), target(line.data() + tab + 1, line.size() - tab - 1);
    if (target.find('\t') != std::string_view::npos)
      throw line_error(in, "expected 2 tab-separated columns, found more");
    uint8_t label = parse_label(in, target, 10);
    ids.clear();
    size_t i = 0;
    while (i < src.size()) {
      if (src[i] == ' ') {
        ++i;
        continue;
      }
      size_t j = src.find(' ', i);
      if (j == std::string_view::npos) j = src.size();
      std::string_view word = src.substr(i, j - i);
      i = j;
      if (word == "(" || word == ")") continue;
      int id = listops_token_id(word);
      if (id < 0) {
        if (strict) throw line_error(in, "token " + show(word) + " is not in the ListOps vocabulary");
        id = kListOpsUnknown;
        ++counts.unknown;
      }
      ids.push_back(static_cast<uint8_t>(id));
    }
    if (ids.empty()) throw line_error(in, "empty expression");
    if (static_cast<int64_t>(ids.size()) > max_length) {
      ids.resize(max_length);
      ++counts.truncated;
    }
    tokens.add(ids.data(), ids.size());
    labels.push_back(label);
  }
}

// ---- Text (IMDB) ---------------------------------------------------------------------------------

void read_imdb_tsv(Reader& in, int64_t max_length, Store& bytes, std::vector<uint8_t>& labels) {
  std::string line;
  bool first = true, any = false;
  while (in.line(line)) {
    if (first && line == "label\ttext") {
      first = false;
      continue;
    }
    first = false;
    size_t tab = line.find('\t');
    if (tab == std::string::npos) throw line_error(in, "missing column: expected '<label><TAB><text>', found no tab");
    labels.push_back(parse_label(in, std::string_view(line.data(), tab), 2));
    add_truncated(bytes, std::string_view(line).substr(tab + 1), max_length);
    any = true;
  }
  if (!any) throw file_error(in.task(), in.name(), "empty file (no '<label><TAB><text>' line)");
}

// ---- Retrieval (AAN) -----------------------------------------------------------------------------

void read_aan(Reader& in, int64_t max_length, Store& text1, Store& text2, std::vector<uint8_t>& labels,
              AanCounts& counts) {
  std::string line;
  bool any = false;
  while (in.line(line)) {
    size_t cut[4];
    size_t from = 0;
    for (int k = 0; k < 4; ++k) {
      size_t tab = line.find('\t', from);
      if (tab == std::string::npos)
        throw line_error(in, "missing column: found " + std::to_string(k + 1) +
                                 " tab-separated fields, expected 5 (label, id1, id2, text1, text2)");
      cut[k] = tab;
      from = tab + 1;
    }
    if (line.find('\t', from) != std::string::npos) ++counts.extra_tabs;
    std::string_view v(line);
    std::string_view label_text = v.substr(0, cut[0]);
    // The label is written as a float ("1.0"): it must be exactly 0 or 1.
    std::string label_str(label_text);
    char* end = nullptr;
    double value = label_str.empty() ? NAN : std::strtod(label_str.c_str(), &end);
    if (label_str.empty() || end != label_str.c_str() + label_str.size() || !std::isfinite(value))
      throw line_error(in, "label " + show(label_text) + " is not a number");
    if (value != 0.0 && value != 1.0) throw line_error(in, "label " + show(label_text) + " is out of range (0 or 1)");
    labels.push_back(static_cast<uint8_t>(value));
    add_truncated(text1, v.substr(cut[2] + 1, cut[3] - cut[2] - 1), max_length);
    add_truncated(text2, v.substr(cut[3] + 1), max_length);
    any = true;
  }
  if (!any) throw file_error(in.task(), in.name(), "empty file (no 'label<TAB>id1<TAB>id2<TAB>text1<TAB>text2' line)");
}

// ---- Image (CIFAR-10) ----------------------------------------------------------------------------

uint8_t cifar_gray(uint8_t r, uint8_t g, uint8_t b) {
  return static_cast<uint8_t>(std::lround(0.2989 * r + 0.5870 * g + 0.1140 * b));
}

void read_cifar(Reader& in, std::vector<uint8_t>& pixels, std::vector<uint8_t>& labels) {
  uint8_t rec[kCifarRecord];
  int64_t n = 0;
  while (!in.at_end()) {
    in.read_exact(rec, kCifarRecord, "record " + std::to_string(n));
    if (rec[0] > 9)
      throw data_error(in.task(), in.name(), "record", n, "label " + std::to_string(rec[0]) + " is out of range 0..9");
    labels.push_back(rec[0]);
    const uint8_t *r = rec + 1, *g = r + 1024, *b = g + 1024;
    for (int i = 0; i < 1024; ++i) pixels.push_back(cifar_gray(r[i], g[i], b[i]));
    ++n;
  }
  if (n == 0) throw file_error(in.task(), in.name(), "empty file (expected records of 3073 bytes)");
}

// ---- MNIST idx -----------------------------------------------------------------------------------

int64_t read_idx_images(Reader& in, std::vector<uint8_t>& pixels) {
  uint8_t head[16];
  size_t got = in.read(head, 16);
  if (got == 0) throw file_error(in.task(), in.name(), "empty file (expected an idx3 image file)");
  if (got < 16)
    throw file_error(in.task(), in.name(), "truncated: the idx3 header needs 16 bytes, found " + std::to_string(got));
  uint32_t magic = big_endian(head), count = big_endian(head + 4), rows = big_endian(head + 8),
           cols = big_endian(head + 12);
  if (magic != 2051)
    throw file_error(in.task(), in.name(),
                     "wrong magic number " + std::to_string(magic) + " (an idx3 image file has 2051)");
  if (rows != 28 || cols != 28)
    throw file_error(in.task(), in.name(),
                     "images are " + std::to_string(rows) + "x" + std::to_string(cols) + ", expected 28x28");
  size_t start = pixels.size();
  // Grow as data arrives rather than trusting the header's count, so a lying header cannot make us
  // allocate gigabytes.
  for (uint32_t i = 0; i < count; ++i) {
    pixels.resize(start + size_t(i + 1) * 784);
    in.read_exact(pixels.data() + start + size_t(i) * 784, 784,
                  "image " + std::to_string(i) + " of " + std::to_string(count));
  }
  if (!in.at_end())
    throw file_error(in.task(), in.name(),
                     "bytes left after the " + std::to_string(count) + " images the header announces");
  return count;
}

int64_t read_idx_labels(Reader& in, std::vector<uint8_t>& labels) {
  uint8_t head[8];
  size_t got = in.read(head, 8);
  if (got == 0) throw file_error(in.task(), in.name(), "empty file (expected an idx1 label file)");
  if (got < 8)
    throw file_error(in.task(), in.name(), "truncated: the idx1 header needs 8 bytes, found " + std::to_string(got));
  uint32_t magic = big_endian(head), count = big_endian(head + 4);
  if (magic != 2049)
    throw file_error(in.task(), in.name(),
                     "wrong magic number " + std::to_string(magic) + " (an idx1 label file has 2049)");
  uint8_t buf[4096];
  for (uint32_t done = 0; done < count;) {
    uint32_t k = std::min<uint32_t>(count - done, sizeof buf);
    in.read_exact(
        buf, k,
        "labels " + std::to_string(done) + ".." + std::to_string(done + k - 1) + " of " + std::to_string(count));
    for (uint32_t i = 0; i < k; ++i) {
      if (buf[i] > 9)
        throw data_error(in.task(), in.name(), "record", done + i,
                         "label " + std::to_string(buf[i]) + " is out of range 0..9");
      labels.push_back(buf[i]);
    }
    done += k;
  }
  if (!in.at_end())
    throw file_error(in.task(), in.name(),
                     "bytes left after the " + std::to_string(count) + " labels the header announces");
  return count;
}

// ---- Pathfinder metadata -------------------------------------------------------------------------

namespace {

std::vector<std::string_view> split_spaces(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == ' ') {
      ++i;
      continue;
    }
    size_t j = s.find(' ', i);
    if (j == std::string_view::npos) j = s.size();
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// One metadata row (already split in fields) to an entry; `where` names the line or row.
void add_entry(const Reader& in, const char* unit, int64_t n, const std::vector<std::string_view>& f,
               std::vector<PathfinderEntry>& out) {
  if (f.size() < 4)
    throw data_error(in.task(), in.name(), unit, n,
                     "missing column: found " + std::to_string(f.size()) +
                         " fields, expected at least 4 (folder, file, index, label)");
  for (int k : {0, 1})
    if (f[k].find("..") != std::string_view::npos || f[k].empty() || f[k][0] == '/')
      throw data_error(in.task(), in.name(), unit, n, "path field " + show(f[k]) + " leaves the data folder");
  int label = 0;
  auto [end, ec] = std::from_chars(f[3].data(), f[3].data() + f[3].size(), label);
  if (ec == std::errc::invalid_argument || end != f[3].data() + f[3].size())
    throw data_error(in.task(), in.name(), unit, n, "label " + show(f[3]) + " is not a number");
  if (ec == std::errc::result_out_of_range || (label != 0 && label != 1))
    throw data_error(in.task(), in.name(), unit, n, "label " + show(f[3]) + " is out of range (0 or 1)");
  out.push_back({std::string(f[0]) + "/" + std::string(f[1]), static_cast<uint8_t>(label), n});
}

// A NumPy .npy holding a 2-D array of strings ('<U' UTF-32 or '|S' bytes), as np.save writes it.
void read_npy_metadata(Reader& in, std::vector<PathfinderEntry>& out) {
  auto fail = [&](const std::string& what) { return file_error(in.task(), in.name(), "NumPy file: " + what); };
  uint8_t pre[10];
  in.read_exact(pre, 8, "the NumPy magic and version");
  int major = pre[6];
  size_t header_len;
  if (major == 1) {
    in.read_exact(pre, 2, "the NumPy header length");
    header_len = pre[0] | (pre[1] << 8);
  } else if (major == 2 || major == 3) {
    in.read_exact(pre, 4, "the NumPy header length");
    header_len = pre[0] | (pre[1] << 8) | (size_t(pre[2]) << 16) | (size_t(pre[3]) << 24);
  } else {
    throw fail("unsupported version " + std::to_string(major));
  }
  if (header_len > 65536) throw fail("header of " + std::to_string(header_len) + " bytes is implausible");
  std::string header(header_len, '\0');
  in.read_exact(header.data(), header_len, "the NumPy header");
  auto value_of = [&](const std::string& key) -> std::string {
    size_t k = header.find("'" + key + "'");
    if (k == std::string::npos) throw fail("header has no '" + key + "'");
    size_t colon = header.find(':', k);
    if (colon == std::string::npos) throw fail("header entry '" + key + "' has no value");
    size_t i = header.find_first_not_of(' ', colon + 1);
    if (i == std::string::npos) throw fail("header entry '" + key + "' has no value");
    size_t j = header[i] == '(' ? header.find(')', i) + 1 : header.find_first_of(",}", i);
    if (j == std::string::npos || j == 0) throw fail("header entry '" + key + "' is not terminated");
    return header.substr(i, j - i);
  };
  std::string descr = value_of("descr"), order = value_of("fortran_order"), shape = value_of("shape");
  if (descr.size() < 4 || descr.front() != '\'' || descr.back() != '\'')
    throw fail("descr " + descr + " is not a string type");
  std::string type = descr.substr(1, descr.size() - 2);
  bool utf32;
  if (type[0] == '<' && type[1] == 'U') utf32 = true;
  else if ((type[0] == '|' || type[0] == '<' || type[0] == '>' || type[0] == '=') && type[1] == 'S') utf32 = false;
  else throw fail("descr " + descr + " is not an array of strings ('<U' or '|S')");
  long chars = std::strtol(type.c_str() + 2, nullptr, 10);
  if (chars <= 0 || chars > 4096) throw fail("descr " + descr + " has an implausible width");
  long rows = -1, cols = -1;
  if (std::sscanf(shape.c_str(), "(%ld, %ld)", &rows, &cols) != 2 || rows < 0 || cols < 1 || cols > 64)
    throw fail("shape " + shape + " is not a 2-D (rows, fields) shape");
  bool fortran = order.rfind("True", 0) == 0;
  size_t width = size_t(chars) * (utf32 ? 4 : 1);
  // Rows are read one at a time for C order; Fortran order needs the whole table (metadata files are
  // small: one row per image of a batch).
  std::vector<uint8_t> table;
  std::vector<std::string> cells(cols);
  std::vector<std::string_view> fields;
  auto cell_text = [&](const uint8_t* p) {
    std::string s;
    for (long c = 0; c < chars; ++c) {
      uint32_t ch =
          utf32 ? (p[4 * c] | (p[4 * c + 1] << 8) | (uint32_t(p[4 * c + 2]) << 16) | (uint32_t(p[4 * c + 3]) << 24))
                : p[c];
      if (ch == 0) break;
      s += ch < 128 ? static_cast<char>(ch) : '?';
    }
    return s;
  };
  if (fortran) {
    if (size_t(rows) > (size_t(1) << 26) / (size_t(cols) * width))
      throw fail("array is implausibly large for metadata");
    table.resize(size_t(rows) * cols * width);
    in.read_exact(table.data(), table.size(), "the NumPy data");
  }
  std::vector<uint8_t> row(size_t(cols) * width);
  for (long r = 0; r < rows; ++r) {
    if (!fortran) in.read_exact(row.data(), row.size(), "NumPy row " + std::to_string(r + 1));
    fields.clear();
    for (long c = 0; c < cols; ++c) {
      const uint8_t* p = fortran ? table.data() + (size_t(c) * rows + r) * width : row.data() + size_t(c) * width;
      cells[c] = cell_text(p);
    }
    for (auto& c : cells) fields.push_back(c);
    add_entry(in, "row", r + 1, fields, out);
  }
}

}  // namespace

void read_pathfinder_metadata(Reader& in, std::vector<PathfinderEntry>& out) {
  // A real NumPy file starts with "\x93NUMPY"; the release's metadata is text lines.
  if (in.peek(6) == "\x93NUMPY") return read_npy_metadata(in, out);
  std::string line;
  bool any = false;
  while (in.line(line)) {
    if (line.empty()) continue;  // a blank last line is harmless
    add_entry(in, "line", in.line_number(), split_spaces(line), out);
    any = true;
  }
  if (!any)
    throw file_error(in.task(), in.name(),
                     "empty file (expected metadata lines 'imgs/<b> sample_<k>.png <k> <label> ...')");
}

// ---- PNG -----------------------------------------------------------------------------------------

void decode_gray_png(const std::string& task, const std::string& name, std::string_view png, int side, uint8_t* out) {
  if (png.empty()) throw file_error(task, name, "empty file");
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, png.data(), png.size()))
    throw file_error(task, name, std::string("not a readable PNG: ") + img.message);
  // The simplified API reports the file's own format; only plain 8-bit gray is the Pathfinder format.
  png_uint_32 bad =
      img.format & (PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA | PNG_FORMAT_FLAG_LINEAR | PNG_FORMAT_FLAG_COLORMAP);
  if (bad) {
    png_image_free(&img);
    std::string kind = (img.format & PNG_FORMAT_FLAG_COLORMAP) ? "palette"
                       : (img.format & PNG_FORMAT_FLAG_COLOR)  ? "colour"
                       : (img.format & PNG_FORMAT_FLAG_ALPHA)  ? "gray with alpha"
                                                               : "16-bit gray";
    throw file_error(task, name, "PNG is " + kind + ", expected 8-bit grayscale");
  }
  if (img.width != png_uint_32(side) || img.height != png_uint_32(side)) {
    png_image_free(&img);
    throw file_error(task, name,
                     "PNG is " + std::to_string(img.width) + "x" + std::to_string(img.height) + ", expected " +
                         std::to_string(side) + "x" + std::to_string(side));
  }
  img.format = PNG_FORMAT_GRAY;
  if (!png_image_finish_read(&img, nullptr, out, side, nullptr))
    throw file_error(task, name, std::string("corrupt PNG data: ") + img.message);
}

void write_png(const std::string& path, const uint8_t* pixels, int width, int height, int channels) {
  if (channels != 1 && channels != 3)
    throw DataError("cannot write PNG " + path + ": " + std::to_string(channels) + " channels");
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = width;
  img.height = height;
  img.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  if (!png_image_write_to_file(&img, path.c_str(), 0, pixels, width * channels, nullptr))
    throw DataError("cannot write PNG " + path + ": " + img.message);
}

}  // namespace lasgrad::data
