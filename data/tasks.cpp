// The loaders behind open_task: where each task's files live, how its splits are cut, and the two
// Dataset kinds (examples held as bytes in memory; Pathfinder images decoded from disk on demand).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "data/dataset.h"
#include "data/error.h"
#include "data/formats.h"
#include "data/reader.h"

namespace fs = std::filesystem;

namespace lasgrad::data {

namespace {

// How a stored byte becomes model input.
enum class Decode {
  ListOps,  // the byte is the token id
  Bytes,    // text: token = byte + 1 (0 stays padding), vocabulary 257
  Image,    // a pixel 0..255: token id as is, or a float after scaling
};

struct PixelMap {
  bool tokens = false;
  Pixels scale = Pixels::Unit;
  float mean = 0, std = 1;
  float operator()(uint8_t v) const { return scale == Pixels::Raw ? float(v) : (v / 255.0f - mean) / std; }
};

PixelMap pixel_map(const Options& o) {
  if (!(o.pixel_std > 0)) throw DataError("pixel_std must be positive");
  return {o.pixel_tokens, o.pixel_scale, o.pixel_mean, o.pixel_std};
}

// Examples held in memory, one byte per step; `rows` selects this split's examples when a split is
// cut from a larger file (CIFAR, MNIST), so the file's examples are kept once.
class StoredDataset : public Dataset {
 public:
  StoredDataset(TaskInfo info, Decode decode) : decode_(decode) { info_ = std::move(info); }

  Store docs[2];
  std::vector<uint8_t> labels;
  std::vector<int64_t> rows;  // empty: all examples in file order
  PixelMap pixel;
  std::vector<int32_t> perm;  // psMNIST: step t shows pixel perm[t]

  void note(std::string s) { notes_.push_back(std::move(s)); }

  int64_t size() const override { return rows.empty() ? docs[0].size() : static_cast<int64_t>(rows.size()); }
  int32_t label(int64_t i) const override { return labels[row(i)]; }
  int64_t length(int64_t i, int doc) const override { return docs[doc].length(row(i)); }

  void tokens(int64_t i, int doc, int32_t* out) const override {
    const int64_t r = row(i), n = docs[doc].length(r);
    const uint8_t* p = docs[doc].at(r);
    const int add = decode_ == Decode::Bytes ? 1 : 0;
    if (!perm.empty()) {
      for (int64_t t = 0; t < n; ++t) out[t] = p[perm[t]];
    } else {
      for (int64_t t = 0; t < n; ++t) out[t] = p[t] + add;
    }
  }

  void pixels(int64_t i, float* out) const override {
    const int64_t r = row(i), n = docs[0].length(r);
    const uint8_t* p = docs[0].at(r);
    for (int64_t t = 0; t < n; ++t) out[t] = pixel(p[perm.empty() ? t : perm[t]]);
  }

  std::string text(int64_t i, int doc) const override {
    const int64_t r = row(i), n = docs[doc].length(r);
    const uint8_t* p = docs[doc].at(r);
    if (decode_ == Decode::Bytes) return std::string(reinterpret_cast<const char*>(p), n);
    if (decode_ == Decode::ListOps) {
      std::string s;
      for (int64_t t = 0; t < n; ++t) (s += t ? " " : "") += listops_token_text(p[t]);
      return s;
    }
    return "";
  }

  std::vector<uint8_t> image_bytes(int64_t i) const override {
    const int64_t r = row(i);
    return std::vector<uint8_t>(docs[0].at(r), docs[0].at(r) + docs[0].length(r));
  }

  std::vector<std::string> token_texts(int64_t i, int doc) const override {
    const int64_t r = row(i), n = docs[doc].length(r);
    const uint8_t* p = docs[doc].at(r);
    std::vector<std::string> out;
    if (decode_ == Decode::Image) return out;
    for (int64_t t = 0; t < n; ++t) {
      if (decode_ == Decode::ListOps) {
        out.push_back(listops_token_text(p[t]));
      } else if (p[t] >= 32 && p[t] < 127) {
        out.push_back(std::string(1, static_cast<char>(p[t])));
      } else {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", p[t]);
        out.push_back(buf);
      }
    }
    return out;
  }

  std::vector<int32_t> pixel_order() const override { return perm.empty() ? Dataset::pixel_order() : perm; }

 private:
  int64_t row(int64_t i) const { return rows.empty() ? i : rows[i]; }
  Decode decode_;
};

// Pathfinder / Path-X: the list of (file, label) of this split; each image is read and decoded when a
// batch asks for it, so Path-X's 200k images of 128x128 never sit in memory together.
class PathfinderDataset : public Dataset {
 public:
  PathfinderDataset(TaskInfo info, fs::path root, std::vector<PathfinderEntry> entries, PixelMap px)
      : root_(std::move(root)), entries_(std::move(entries)), pixel_(px) {
    info_ = std::move(info);
  }
  void note(std::string s) { notes_.push_back(std::move(s)); }

  int64_t size() const override { return static_cast<int64_t>(entries_.size()); }
  int32_t label(int64_t i) const override { return entries_[i].label; }
  int64_t length(int64_t, int) const override { return info_.max_length; }
  void tokens(int64_t i, int, int32_t* out) const override {
    auto img = image_bytes(i);
    for (size_t t = 0; t < img.size(); ++t) out[t] = img[t];
  }
  void pixels(int64_t i, float* out) const override {
    auto img = image_bytes(i);
    for (size_t t = 0; t < img.size(); ++t) out[t] = pixel_(img[t]);
  }
  std::string text(int64_t, int) const override { return ""; }
  std::vector<uint8_t> image_bytes(int64_t i) const override {
    std::string path = (root_ / entries_[i].file).string();
    std::vector<uint8_t> img(info_.max_length);
    decode_gray_png(info_.name, path, read_file(info_.name, path), info_.image_side, img.data());
    return img;
  }

 private:
  fs::path root_;
  std::vector<PathfinderEntry> entries_;
  PixelMap pixel_;
};

// ---- where files live ----------------------------------------------------------------------------

// The first of `candidates` (relative to dir) for which `found` holds; DataError listing them otherwise.
fs::path locate(const std::string& task, const std::string& dir, const std::vector<std::string>& candidates,
                const std::function<bool(const fs::path&)>& found, const std::string& what) {
  if (!fs::is_directory(dir)) throw DataError(task + ": data folder '" + dir + "' does not exist");
  std::string tried;
  for (const auto& c : candidates) {
    fs::path p = c.empty() ? fs::path(dir) : fs::path(dir) / c;
    if (found(p)) return p;
    tried += (tried.empty() ? "" : ", ") + p.string();
  }
  throw DataError(task + ": no " + what + " in '" + dir + "' (looked in " + tried + ")");
}

void require_file(const std::string& task, const fs::path& p) {
  if (!fs::exists(p)) throw file_error(task, p.string(), "file does not exist");
}

// Picks this split's rows out of n examples: a seeded shuffle, then the first n - held rows are
// train and the last `held` are validation.
std::vector<int64_t> holdout(int64_t n, int64_t held, uint64_t seed, bool train) {
  auto perm = seeded_permutation(n, seed);
  std::vector<int64_t> rows = train ? std::vector<int64_t>(perm.begin(), perm.end() - held)
                                    : std::vector<int64_t>(perm.end() - held, perm.end());
  std::sort(rows.begin(), rows.end());  // keep file order within the split
  return rows;
}

// Store of fixed-size records already laid out back to back in `bytes`.
void fixed_store(Store& s, std::vector<uint8_t>&& bytes, int64_t record) {
  s.bytes = std::move(bytes);
  const int64_t n = static_cast<int64_t>(s.bytes.size()) / record;
  s.offsets.resize(n + 1);
  for (int64_t i = 0; i <= n; ++i) s.offsets[i] = i * record;
}

std::string count_note(int64_t k, int64_t n, const std::string& what) {
  return std::to_string(k) + " of " + std::to_string(n) + " " + what;
}

// ---- the tasks -----------------------------------------------------------------------------------

std::unique_ptr<Dataset> open_listops(const TaskSpec& spec, const std::string& dir, Split split, const Options& o) {
  const std::string task = "ListOps";
  const std::string file = std::string("basic_") + split_name(split) + ".tsv";
  fs::path folder = locate(
      task, dir, {"", "listops-1000"}, [&](const fs::path& p) { return fs::exists(p / file); }, "ListOps file " + file);
  const int64_t L = o.max_length > 0 ? o.max_length : spec.length;
  auto ds = std::make_unique<StoredDataset>(TaskInfo{spec.name, spec.classes, spec.vocab, L}, Decode::ListOps);
  Reader in(task, (folder / file).string());
  ListOpsCounts counts;
  read_listops(in, L, o.strict_vocab, ds->docs[0], ds->labels, counts);
  if (counts.unknown) ds->note(std::to_string(counts.unknown) + " words outside the vocabulary mapped to <unk>");
  if (counts.truncated)
    ds->note(count_note(counts.truncated, ds->size(), "examples truncated to " + std::to_string(L) + " tokens"));
  return ds;
}

std::unique_ptr<Dataset> open_text(const TaskSpec& spec, const std::string& dir, Split split, const Options& o) {
  const std::string task = "Text";
  // IMDB has no validation split: the test split doubles as it, as in LRA.
  const std::string part = split == Split::Train ? "train" : "test";
  const int64_t L = o.max_length > 0 ? o.max_length : spec.length;
  auto ds = std::make_unique<StoredDataset>(TaskInfo{spec.name, spec.classes, spec.vocab, L}, Decode::Bytes);
  fs::path folder = locate(
      task, dir, {"aclImdb", ""},
      [&](const fs::path& p) { return fs::is_directory(p / part / "pos") || fs::exists(p / (part + ".tsv")); },
      "aclImdb folder (" + part + "/pos, " + part + "/neg) or " + part + ".tsv");
  int64_t truncated = 0;
  if (fs::is_directory(folder / part / "pos")) {
    // Raw aclImdb: the folder is the label; within a folder, files in the order of their numeric id.
    for (int label : {0, 1}) {
      fs::path sub = folder / part / (label ? "pos" : "neg");
      if (!fs::is_directory(sub)) throw DataError(task + ": folder '" + sub.string() + "' does not exist");
      std::vector<std::pair<long, fs::path>> files;
      for (const auto& e : fs::directory_iterator(sub)) {
        if (!e.is_regular_file() || e.path().extension() != ".txt") continue;
        files.emplace_back(std::strtol(e.path().filename().c_str(), nullptr, 10), e.path());
      }
      std::sort(files.begin(), files.end());
      if (files.empty()) throw DataError(task + ": folder '" + sub.string() + "' holds no .txt review");
      for (const auto& f : files) {
        std::string review = read_file(task, f.second.string());
        if (review.empty()) throw file_error(task, f.second.string(), "empty file (a review has text)");
        if (static_cast<int64_t>(review.size()) > L) ++truncated;
        size_t n = std::min<size_t>(review.size(), L);
        ds->docs[0].add(reinterpret_cast<const uint8_t*>(review.data()), n);
        ds->labels.push_back(static_cast<uint8_t>(label));
      }
    }
    if (truncated) ds->note(count_note(truncated, ds->size(), "reviews truncated to " + std::to_string(L) + " bytes"));
  } else {
    Reader in(task, (folder / (part + ".tsv")).string());
    read_imdb_tsv(in, L, ds->docs[0], ds->labels);
  }
  if (split == Split::Val) ds->note("IMDB has no validation split: the test split stands in for it");
  return ds;
}

std::unique_ptr<Dataset> open_retrieval(const TaskSpec& spec, const std::string& dir, Split split, const Options& o) {
  const std::string task = "Retrieval";
  const std::string file = std::string("new_aan_pairs.") + (split == Split::Val ? "eval" : split_name(split)) + ".tsv";
  fs::path folder = locate(
      task, dir, {"", "tsv_data"}, [&](const fs::path& p) { return fs::exists(p / file); }, "AAN file " + file);
  const int64_t L = o.max_length > 0 ? o.max_length : spec.length;
  TaskInfo info{spec.name, spec.classes, spec.vocab, L};
  info.pair = true;
  auto ds = std::make_unique<StoredDataset>(info, Decode::Bytes);
  Reader in(task, (folder / file).string());
  AanCounts counts;
  read_aan(in, L, ds->docs[0], ds->docs[1], ds->labels, counts);
  if (counts.extra_tabs)
    ds->note(count_note(counts.extra_tabs, ds->size(),
                        "lines have more than 5 tab-separated fields; the extra tabs stay in text2"));
  return ds;
}

std::unique_ptr<Dataset> open_image(const TaskSpec& spec, const std::string& dir, Split split, const Options& o) {
  const std::string task = "Image";
  fs::path folder = locate(
      task, dir, {"", "cifar-10-batches-bin"},
      [&](const fs::path& p) { return fs::exists(p / "data_batch_1.bin") || fs::exists(p / "test_batch.bin"); },
      "CIFAR-10 binary batches (data_batch_1.bin ... test_batch.bin)");
  auto px = pixel_map(o);
  TaskInfo info{spec.name, spec.classes, px.tokens ? 256 : 0, spec.length};
  info.pixels = !px.tokens;
  info.image_side = 32;
  auto ds = std::make_unique<StoredDataset>(info, Decode::Image);
  ds->pixel = px;
  std::vector<uint8_t> pixels;
  std::vector<std::string> files;
  if (split == Split::Test) {
    files = {"test_batch.bin"};
  } else {
    for (int b = 1; b <= 5; ++b) files.push_back("data_batch_" + std::to_string(b) + ".bin");
  }
  for (const auto& f : files) {
    require_file(task, folder / f);
    Reader in(task, (folder / f).string());
    read_cifar(in, pixels, ds->labels);
  }
  fixed_store(ds->docs[0], std::move(pixels), 1024);
  if (split != Split::Test) {
    // LRA holds out 5,000 of the 50,000 training images: a tenth, seeded.
    const int64_t n = ds->docs[0].size();
    ds->rows = holdout(n, n / 10, o.split_seed, split == Split::Train);
  }
  return ds;
}

std::unique_ptr<Dataset> open_mnist(const TaskSpec& spec, const std::string& dir, Split split, const Options& o) {
  const std::string name = spec.name;
  const std::string task = name == "smnist" ? "sMNIST" : name == "psmnist" ? "psMNIST" : "sFashion-MNIST";
  const std::string prefix = split == Split::Test ? "t10k" : "train";
  auto has = [&](const fs::path& p, const std::string& base) {
    return fs::exists(p / base) || fs::exists(p / (base + ".gz"));
  };
  auto file = [&](const fs::path& p, const std::string& base) {
    return fs::exists(p / base) ? p / base : p / (base + ".gz");
  };
  const std::string images = prefix + "-images-idx3-ubyte", labels = prefix + "-labels-idx1-ubyte";
  fs::path folder = locate(
      task, dir, {"", "mnist", "fashion-mnist", "package/data"}, [&](const fs::path& p) { return has(p, images); },
      "MNIST file " + images + "[.gz]");
  if (!has(folder, labels)) throw file_error(task, (folder / labels).string(), "file does not exist (nor with .gz)");
  auto px = pixel_map(o);
  TaskInfo info{name, spec.classes, px.tokens ? 256 : 0, spec.length};
  info.pixels = !px.tokens;
  info.image_side = 28;
  auto ds = std::make_unique<StoredDataset>(info, Decode::Image);
  ds->pixel = px;
  std::vector<uint8_t> pixels;
  Reader img(task, file(folder, images).string());
  int64_t n_images = read_idx_images(img, pixels);
  Reader lab(task, file(folder, labels).string());
  int64_t n_labels = read_idx_labels(lab, ds->labels);
  if (n_images != n_labels)
    throw DataError(task + ": " + lab.name() + " has " + std::to_string(n_labels) + " labels but " + img.name() +
                    " has " + std::to_string(n_images) + " images");
  fixed_store(ds->docs[0], std::move(pixels), 784);
  if (split != Split::Test)
    ds->rows = holdout(n_images, n_images / 10, o.split_seed, split == Split::Train);  // 54k / 6k
  if (name == "psmnist") {
    if (o.permutation == "bitreversal") {
      ds->perm = bitreversal_permutation(784);
    } else if (o.permutation == "random") {
      auto p = seeded_permutation(784, o.permutation_seed);
      ds->perm.assign(p.begin(), p.end());
    } else {
      throw DataError(task + ": unknown permutation '" + o.permutation + "' (bitreversal or random)");
    }
  }
  return ds;
}

std::unique_ptr<Dataset> open_pathfinder(const TaskSpec& spec, const std::string& dir, Split split, const Options& o) {
  const std::string name = spec.name;
  const std::string task = name == "pathx" ? "Path-X" : "Pathfinder";
  const int side = o.resolution > 0 ? o.resolution : (name == "pathx" ? 128 : 32);
  const std::string& diff = o.difficulty;
  if (diff != "curv_baseline" && diff != "curv_contour_length_9" && diff != "curv_contour_length_14")
    throw DataError(task + ": unknown difficulty '" + diff +
                    "' (curv_baseline, curv_contour_length_9, curv_contour_length_14)");
  const std::string res = "pathfinder" + std::to_string(side);
  fs::path root = locate(
      task, dir, {"", diff, res + "/" + diff, "lra_release/" + res + "/" + diff},
      [&](const fs::path& p) { return fs::is_directory(p / "metadata"); }, "metadata folder for " + res + "/" + diff);
  // metadata/<b>.npy in numeric order of b, so the example order is the same on every file system.
  std::vector<std::pair<long, fs::path>> meta;
  for (const auto& e : fs::directory_iterator(root / "metadata"))
    if (e.is_regular_file() && e.path().extension() == ".npy")
      meta.emplace_back(std::strtol(e.path().stem().c_str(), nullptr, 10), e.path());
  std::sort(meta.begin(), meta.end());
  if (meta.empty()) throw DataError(task + ": '" + (root / "metadata").string() + "' holds no <b>.npy metadata file");
  std::vector<PathfinderEntry> all, kept;
  std::vector<std::string> sources;  // metadata file of each entry, for messages
  for (const auto& m : meta) {
    Reader in(task, m.second.string());
    read_pathfinder_metadata(in, all);
    sources.resize(all.size(), m.second.string());
  }
  int64_t empty = 0, missing = 0, repeated = 0;
  std::string first_empty, first_missing, first_repeated;
  // An image listed twice would land in two splits (or twice in one): the first listing counts.
  std::map<std::string, size_t> listed;  // image -> its first entry
  for (size_t k = 0; k < all.size(); ++k) {
    auto [at, fresh] = listed.emplace(all[k].file, k);
    if (!fresh) {
      const PathfinderEntry& first = all[at->second];
      if (first.label != all[k].label)
        throw data_error(task, sources[k], "line", all[k].line,
                         all[k].file + " is listed with label " + std::to_string(all[k].label) + ", and with label " +
                             std::to_string(first.label) + " at line " + std::to_string(first.line) + " of " +
                             sources[at->second]);
      if (!repeated++)
        first_repeated = all[k].file + " (line " + std::to_string(all[k].line) + " of " + sources[k] + ")";
      continue;
    }
    fs::path p = root / all[k].file;
    std::error_code ec;
    auto bytes = fs::file_size(p, ec);
    if (ec) {
      if (!o.skip_missing)
        throw data_error(task, sources[k], "line", all[k].line, "image " + p.string() + " is listed but missing");
      if (!missing++) first_missing = p.string();
      continue;
    }
    if (bytes == 0) {  // the release has one empty PNG; every loader skips it
      if (!empty++) first_empty = p.string();
      continue;
    }
    kept.push_back(std::move(all[k]));
  }
  const int64_t n = static_cast<int64_t>(kept.size());
  if (n == 0) throw DataError(task + ": no readable image listed under '" + root.string() + "'");
  // Seeded 80 / 10 / 10 split of what is there.
  auto perm = seeded_permutation(n, o.split_seed);
  const int64_t n_train = n * 8 / 10, n_val = n / 10;
  int64_t lo = split == Split::Train ? 0 : split == Split::Val ? n_train : n_train + n_val;
  int64_t hi = split == Split::Train ? n_train : split == Split::Val ? n_train + n_val : n;
  std::vector<int64_t> rows(perm.begin() + lo, perm.begin() + hi);
  std::sort(rows.begin(), rows.end());
  std::vector<PathfinderEntry> mine;
  mine.reserve(rows.size());
  for (int64_t r : rows) mine.push_back(kept[r]);
  auto px = pixel_map(o);
  TaskInfo info{name, spec.classes, px.tokens ? 256 : 0, int64_t(side) * side};
  info.pixels = !px.tokens;
  info.image_side = side;
  auto ds = std::make_unique<PathfinderDataset>(info, root, std::move(mine), px);
  // Every image of the split is decoded once now: a corrupt PNG is an error when the data is opened
  // (by `data inspect` as by training), not a run that dies at its first batch on every resume.
  {
    const int64_t count = ds->size();
    const int threads = static_cast<int>(std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 16));
    std::vector<std::string> first(threads);
    std::vector<int64_t> bad(threads, 0);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        for (int64_t i = t; i < count; i += threads) try {
            ds->image_bytes(i);
          } catch (const std::exception& e) {
            if (!bad[t]++) first[t] = e.what();
          }
      });
    for (auto& th : pool) th.join();
    int64_t total = 0;
    std::string example;
    for (int t = 0; t < threads; ++t) {
      total += bad[t];
      if (example.empty() && bad[t]) example = first[t];
    }
    if (total)
      throw DataError(task + " " + split_name(split) + " split: " + std::to_string(total) + " of " +
                      std::to_string(count) + " images cannot be decoded; the first: " + example);
  }
  if (empty) ds->note("skipped " + std::to_string(empty) + " empty PNG(s) before splitting, e.g. " + first_empty);
  if (missing)
    ds->note("skipped " + std::to_string(missing) + " missing PNG(s) before splitting, e.g. " + first_missing);
  if (repeated)
    ds->note("skipped " + std::to_string(repeated) + " metadata line(s) naming an image listed before, e.g. " +
             first_repeated);
  return ds;
}

}  // namespace

const std::vector<TaskSpec>& tasks() {
  static const std::vector<TaskSpec> t = {
      // name, classes, length, vocabulary (0: pixels), opener
      {"listops", 10, 2000, kListOpsVocab, open_listops},
      {"text", 2, 4096, 257, open_text},
      {"retrieval", 2, 4000, 257, open_retrieval},
      {"image", 10, 1024, 0, open_image},
      {"pathfinder", 2, 1024, 0, open_pathfinder},
      {"pathx", 2, 16384, 0, open_pathfinder},
      {"smnist", 10, 784, 0, open_mnist},
      {"psmnist", 10, 784, 0, open_mnist},
      {"sfmnist", 10, 784, 0, open_mnist},  // Fashion-MNIST in MNIST's files (Debian: dataset-fashion-mnist)
  };
  return t;
}

std::string task_list() {
  std::string out;
  const auto& t = tasks();
  for (size_t i = 0; i < t.size(); ++i) out += std::string(i == 0 ? "" : i + 1 == t.size() ? " or " : ", ") + t[i].name;
  return out;
}

const TaskSpec& task_spec(const std::string& name) {
  for (const TaskSpec& t : tasks())
    if (name == t.name) return t;
  throw DataError("unknown task '" + name + "' (" + task_list() + ")");
}

std::unique_ptr<Dataset> open_task(const std::string& task, const std::string& dir, Split split, const Options& o) {
  const TaskSpec& spec = task_spec(task);
  return spec.open(spec, dir, split, o);
}

}  // namespace lasgrad::data
