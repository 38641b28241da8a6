// Loaders of the pixel tasks (Image, sMNIST/psMNIST, Pathfinder/Path-X) on small files in the real
// formats, the seeded splits, and batching.
#include <algorithm>
#include <set>

#include "data/dataset.h"
#include "data/formats.h"
#include "tests/data/fixtures.h"

using namespace lasgrad::data;
using namespace fixtures;

// n CIFAR records: record k has label k % 10 and planes R = k, G = 2k, B = 3k (mod 256), except pixel 0
// which is pure red 255 (gray 76).
static std::string cifar_records(int n, int first = 0) {
  std::string s;
  for (int k = first; k < first + n; ++k) {
    s += char(k % 10);
    for (int plane = 1; plane <= 3; ++plane)
      for (int i = 0; i < 1024; ++i) s += char(i == 0 ? (plane == 1 ? 255 : 0) : (plane * k) % 256);
  }
  return s;
}

static std::vector<float> pix(const Dataset& d, int64_t i) {
  std::vector<float> p(d.length(i));
  d.pixels(i, p.data());
  return p;
}

TEST_CASE("Image: CIFAR-10 records to grayscale, seeded 9:1 split of train") {
  TempDir dir;
  fs::path c = dir / "cifar-10-batches-bin";
  for (int b = 1; b <= 5; ++b) write(c / ("data_batch_" + std::to_string(b) + ".bin"), cifar_records(4, (b - 1) * 4));
  write(c / "test_batch.bin", cifar_records(3, 100));
  Options raw;
  raw.pixel_scale = Pixels::Raw;
  auto test = open_task("image", dir.str(), Split::Test, raw);
  REQUIRE(test->size() == 3);
  CHECK(test->info().pixels);
  CHECK(test->max_length() == 1024);
  CHECK(test->label(1) == 1);  // record 101
  auto p = pix(*test, 1);
  CHECK(p[0] == 76.0f);  // round(0.2989 * 255)
  CHECK(p[5] == float(cifar_gray(101, 202, 303 % 256)));
  CHECK(cifar_gray(255, 255, 255) == 255);
  CHECK(cifar_gray(10, 20, 30) == 18);  // 2.989 + 11.74 + 3.42 = 18.149

  auto train = open_task("image", dir.str(), Split::Train);
  auto val = open_task("image", dir.str(), Split::Val);
  CHECK(train->size() == 18);
  CHECK(val->size() == 2);
  // Disjoint and together all 20 training records (told apart by their pixel 5 = gray(k, 2k, 3k)).
  std::set<float> seen;
  for (auto* d : {train.get(), val.get()})
    for (int64_t i = 0; i < d->size(); ++i) seen.insert(pix(*d, i)[5]);
  CHECK(seen.size() == 20);
  CHECK(pix(*train, 0)[0] == doctest::Approx(76 / 255.0));  // Unit scaling by default

  Options tok;
  tok.pixel_tokens = true;
  auto t = open_task("image", dir.str(), Split::Test, tok);
  CHECK(t->vocab_size() == 256);
  CHECK(!t->info().pixels);
  std::vector<int32_t> ids(1024);
  t->tokens(0, 0, ids.data());
  CHECK(ids[0] == 76);

  Options split1;
  split1.split_seed = 1;
  auto val1 = open_task("image", dir.str(), Split::Val, split1);
  CHECK((pix(*val1, 0)[5] != pix(*val, 0)[5] || pix(*val1, 1)[5] != pix(*val, 1)[5]));

  write(c / "test_batch.bin", cifar_records(2) + std::string(100, '\0'));
  CHECK_MSG(error_of([&] { open_task("image", dir.str(), Split::Test); }), "test_batch.bin", "truncated", "record 2");
  std::string bad = cifar_records(2);
  bad[3073] = 12;
  write(c / "test_batch.bin", bad);
  CHECK_MSG(error_of([&] { open_task("image", dir.str(), Split::Test); }), "test_batch.bin record 1",
            "label 12 is out of range");
  write(c / "test_batch.bin", "");
  CHECK_MSG(error_of([&] { open_task("image", dir.str(), Split::Test); }), "test_batch.bin", "empty file");
  fs::remove(c / "data_batch_3.bin");
  CHECK_MSG(error_of([&] { open_task("image", dir.str(), Split::Train); }), "data_batch_3.bin", "does not exist");
}

static std::string idx_images(int n) {
  std::string s = be32(2051) + be32(n) + be32(28) + be32(28);
  for (int k = 0; k < n; ++k)
    for (int i = 0; i < 784; ++i) s += char((i + k) % 256);
  return s;
}
static std::string idx_labels(int n) {
  std::string s = be32(2049) + be32(n);
  for (int k = 0; k < n; ++k) s += char(k % 10);
  return s;
}

TEST_CASE("MNIST: raw and gzip idx, sMNIST row order, psMNIST permutations, 9:1 split, sFashion-MNIST") {
  TempDir dir;
  write_gz(dir / "train-images-idx3-ubyte.gz", idx_images(20));
  write_gz(dir / "train-labels-idx1-ubyte.gz", idx_labels(20));
  write(dir / "t10k-images-idx3-ubyte", idx_images(3));
  write(dir / "t10k-labels-idx1-ubyte", idx_labels(3));
  Options raw;
  raw.pixel_scale = Pixels::Raw;
  auto test = open_task("smnist", dir.str(), Split::Test, raw);
  REQUIRE(test->size() == 3);
  CHECK(test->max_length() == 784);
  CHECK(test->label(2) == 2);
  auto p = pix(*test, 2);
  CHECK(p[0] == 2.0f);
  CHECK(p[300] == float((300 + 2) % 256));
  auto train = open_task("smnist", dir.str(), Split::Train);
  auto val = open_task("smnist", dir.str(), Split::Val);
  CHECK(train->size() == 18);
  CHECK(val->size() == 2);
  std::set<int> labels;
  for (auto* d : {train.get(), val.get()})
    for (int64_t i = 0; i < d->size(); ++i) labels.insert(int(pix(*d, i)[0] * 255 + 0.5) + 100 * d->label(i));
  CHECK(labels.size() == 20);

  auto perm = bitreversal_permutation(784);
  REQUIRE(perm.size() == 784);
  CHECK(std::vector<int32_t>(perm.begin(), perm.begin() + 6) == std::vector<int32_t>{0, 512, 256, 768, 128, 640});
  CHECK(std::set<int32_t>(perm.begin(), perm.end()).size() == 784);
  auto ps = open_task("psmnist", dir.str(), Split::Test, raw);
  auto q = pix(*ps, 2);
  for (int t : {0, 1, 2, 3, 700}) CHECK(q[t] == p[perm[t]]);
  Options rnd = raw;
  rnd.permutation = "random";
  auto pr = open_task("psmnist", dir.str(), Split::Test, rnd);
  auto rp = seeded_permutation(784, 0);
  CHECK(pix(*pr, 2)[10] == p[rp[10]]);
  CHECK(ps->image_bytes(2)[5] == 7);  // image_bytes is the unpermuted picture
  // pixel_order folds a step back onto the image: psMNIST's permutation, the identity for sMNIST.
  CHECK(ps->pixel_order() == perm);
  auto plain = open_task("smnist", dir.str(), Split::Test, raw)->pixel_order();
  REQUIRE(plain.size() == 784);
  CHECK(plain[0] == 0);
  CHECK(plain[783] == 783);
  CHECK(ps->token_texts(2).empty());

  // sFashion-MNIST is the same format read by the same loader: the same pixels and labels.
  auto fashion = open_task("sfmnist", dir.str(), Split::Test, raw);
  CHECK(pix(*fashion, 2) == p);
  CHECK(fashion->label(2) == 2);

  // Every bad input, through each task that reads idx files, named with the task.
  for (const char* task : {"smnist", "sfmnist"}) {
    CAPTURE(task);
    auto err = [&](const std::string& images, const std::string& labels) {
      write(dir / "t10k-images-idx3-ubyte", images);
      write(dir / "t10k-labels-idx1-ubyte", labels);
      return error_of([&] { open_task(task, dir.str(), Split::Test); });
    };
    std::string img = (dir / "t10k-images-idx3-ubyte").string(), lab = (dir / "t10k-labels-idx1-ubyte").string();
    CHECK_MSG(err("", idx_labels(1)), std::string(task) == "smnist" ? "sMNIST" : "sFashion-MNIST");
    CHECK_MSG(err(be32(2049) + idx_images(1).substr(4), idx_labels(1)), img.c_str(), "wrong magic number 2049", "2051");
    CHECK_MSG(err(idx_images(3).substr(0, 1000), idx_labels(3)), img.c_str(), "truncated", "image 1 of 3");
    CHECK_MSG(err(idx_images(1).substr(0, 10), idx_labels(1)), "truncated", "header");
    CHECK_MSG(err("", idx_labels(1)), img.c_str(), "empty file");
    CHECK_MSG(err(idx_images(3), idx_labels(2)), "2 labels", "3 images");
    CHECK_MSG(err(idx_images(1), be32(2051) + be32(1) + "x"), lab.c_str(), "wrong magic number 2051");
    CHECK_MSG(err(idx_images(1), be32(2049) + be32(1) + char(10)), lab.c_str(), "record 0", "label 10 is out of range");
    CHECK_MSG(err(idx_images(2) + "extra", idx_labels(2)), "bytes left after the 2 images");
    std::string wrong = be32(2051) + be32(1) + be32(32) + be32(32) + std::string(1024, 'a');
    CHECK_MSG(err(wrong, idx_labels(1)), "images are 32x32, expected 28x28");
    write_gz(dir / "t10k-images-idx3-ubyte", idx_images(3).substr(0, 2000));
    CHECK_MSG(error_of([&] { open_task(task, dir.str(), Split::Test); }), "truncated");
  }
}

// A Pathfinder folder of n side x side images in the release layout, two metadata batches; image k is
// all k, label k % 2.
static void pathfinder_tree(const fs::path& root, int n, int side) {
  std::string meta[2];
  for (int k = 0; k < n; ++k) {
    int b = k % 2;
    std::string name = "sample_" + std::to_string(k) + ".png";
    write_png(root / "imgs" / std::to_string(b) / name, side, side, PNG_FORMAT_GRAY,
              std::vector<uint8_t>(side * side, k));
    meta[b] += "imgs/" + std::to_string(b) + " " + name + " " + std::to_string(k) + " " + std::to_string(k % 2) +
               " 1.8 14 4 2 0.5 1 1\n";
  }
  write(root / "metadata" / "0.npy", meta[0]);
  write(root / "metadata" / "1.npy", meta[1]);
}

// A real .npy (format 1.0) holding rows of 4 '<U16' strings.
static std::string npy_rows(const std::vector<std::vector<std::string>>& rows) {
  std::string header = "{'descr': '<U16', 'fortran_order': False, 'shape': (" + std::to_string(rows.size()) + ", 4), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string s = "\x93NUMPY\x01";
  s += '\0';
  s += char(header.size() & 255);
  s += char(header.size() >> 8);
  s += header;
  for (const auto& r : rows)
    for (const auto& cell : r)
      for (int c = 0; c < 16; ++c) {
        char ch = c < int(cell.size()) ? cell[c] : 0;
        s += ch;
        s += std::string(3, '\0');
      }
  return s;
}

TEST_CASE("Pathfinder: PNG + text metadata, 80/10/10 split, empty PNG skipped and reported") {
  TempDir dir;
  fs::path root = dir / "pathfinder32" / "curv_contour_length_14";
  pathfinder_tree(root, 20, 32);
  // The release has one empty PNG: it is skipped, counted and reported.
  write(root / "imgs" / "1" / "sample_7.png", "");
  Options raw;
  raw.pixel_scale = Pixels::Raw;
  auto train = open_task("pathfinder", dir.str(), Split::Train, raw);
  auto val = open_task("pathfinder", dir.str(), Split::Val, raw);
  auto test = open_task("pathfinder", root.string(), Split::Test, raw);
  CHECK(train->size() == 15);  // 19 readable: 15 / 1 / 3
  CHECK(val->size() == 1);
  CHECK(test->size() == 3);
  CHECK(train->max_length() == 1024);
  CHECK(train->num_classes() == 2);
  REQUIRE(train->notes().size() == 1);
  CHECK_MSG(train->notes()[0], "skipped 1 empty PNG", "sample_7.png");
  std::set<int> values;
  for (auto* d : {train.get(), val.get(), test.get()})
    for (int64_t i = 0; i < d->size(); ++i) {
      auto p = pix(*d, i);
      CHECK(p.size() == 1024);
      CHECK(p[0] == p[1023]);
      CHECK(d->label(i) == int(p[0]) % 2);
      values.insert(int(p[0]));
    }
  CHECK(values.size() == 19);
  CHECK(!values.count(7));

  // Path-X reads pathfinder128/curv_contour_length_14.
  pathfinder_tree(dir / "pathfinder128" / "curv_contour_length_14", 10, 128);
  auto px = open_task("pathx", dir.str(), Split::Train);
  CHECK(px->max_length() == 16384);
  CHECK(px->size() == 8);

  // Missing image: an error naming the metadata file and line; skip_missing counts it instead.
  fs::remove(root / "imgs" / "0" / "sample_4.png");
  CHECK_MSG(error_of([&] { open_task("pathfinder", dir.str(), Split::Train); }), "metadata/0.npy line 3",
            "sample_4.png is listed but missing");
  Options skip;
  skip.skip_missing = true;
  auto s = open_task("pathfinder", dir.str(), Split::Train, skip);
  CHECK(s->notes().size() == 2);
  CHECK_MSG(s->notes()[1], "skipped 1 missing PNG");

  // Wrong size, colour type or a corrupt file: refused when the split holding the image is opened
  // (data inspect and training alike), with the count and the first file.
  write_png(root / "imgs" / "0" / "sample_4.png", 16, 16, PNG_FORMAT_GRAY, std::vector<uint8_t>(256, 4));
  auto read_all = [&] {
    for (auto split : {Split::Train, Split::Val, Split::Test}) open_task("pathfinder", dir.str(), split);
  };
  CHECK_MSG(error_of(read_all), "1 of ", "images cannot be decoded", "sample_4.png", "PNG is 16x16, expected 32x32");
  write_png(root / "imgs" / "0" / "sample_4.png", 32, 32, PNG_FORMAT_RGB, std::vector<uint8_t>(3 * 1024, 4));
  CHECK_MSG(error_of(read_all), "sample_4.png", "PNG is colour, expected 8-bit grayscale");
  write(root / "imgs" / "0" / "sample_4.png", "\x89PNG\r\n\x1a\nnot really");
  CHECK_MSG(error_of(read_all), "sample_4.png", "PNG");

  // Bad metadata lines.
  write(root / "metadata" / "1.npy", "imgs/1 sample_1.png 1\n");
  CHECK_MSG(error_of([&] { open_task("pathfinder", dir.str(), Split::Train); }), "metadata/1.npy line 1",
            "missing column");
  write(root / "metadata" / "1.npy", "imgs/1 sample_1.png 1 yes\n");
  CHECK_MSG(error_of([&] { open_task("pathfinder", dir.str(), Split::Train); }), "line 1",
            "label 'yes' is not a number");
  write(root / "metadata" / "1.npy", "imgs/1 sample_1.png 1 2\n");
  CHECK_MSG(error_of([&] { open_task("pathfinder", dir.str(), Split::Train); }), "label '2' is out of range");
  write(root / "metadata" / "1.npy", "../../x sample_1.png 1 1\n");
  CHECK_MSG(error_of([&] { open_task("pathfinder", dir.str(), Split::Train); }), "leaves the data folder");
  write(root / "metadata" / "1.npy", "");
  CHECK_MSG(error_of([&] { open_task("pathfinder", dir.str(), Split::Train); }), "metadata/1.npy", "empty file");
  Options bad;
  bad.difficulty = "hard";
  CHECK_MSG(error_of([&] { open_task("pathfinder", dir.str(), Split::Train, bad); }), "unknown difficulty 'hard'");
}

TEST_CASE("Pathfinder: real NumPy metadata files are read too") {
  TempDir dir;
  pathfinder_tree(dir.path, 4, 32);
  write(dir / "metadata" / "0.npy",
        npy_rows({{"imgs/0", "sample_0.png", "0", "0"}, {"imgs/0", "sample_2.png", "2", "0"}}));
  write(dir / "metadata" / "1.npy",
        npy_rows({{"imgs/1", "sample_1.png", "1", "1"}, {"imgs/1", "sample_3.png", "3", "1"}}));
  int64_t total = 0;
  for (auto split : {Split::Train, Split::Val, Split::Test}) total += open_task("pathfinder", dir.str(), split)->size();
  CHECK(total == 4);
  write(dir / "metadata" / "1.npy", npy_rows({{"imgs/1", "sample_1.png", "1", "x"}}));
  CHECK_MSG(error_of([&] { open_task("pathfinder", dir.str(), Split::Train); }), "metadata/1.npy row 1", "label 'x'");
  write(dir / "metadata" / "1.npy", npy_rows({{"imgs/1", "sample_1.png", "1", "1"}}).substr(0, 140));
  CHECK_MSG(error_of([&] { open_task("pathfinder", dir.str(), Split::Train); }), "metadata/1.npy", "truncated");
}

TEST_CASE("BatchIterator: seeded shuffle per epoch, padding to the longest or the task length") {
  TempDir dir;
  std::string f = "Source\tTarget\n";
  for (int k = 0; k < 10; ++k) {
    std::string e = "( [SM";
    for (int j = 0; j <= k; ++j) (e += ' ') += char('0' + j % 10);
    f += e + " ] )\t" + std::to_string(k) + "\n";
  }
  write(dir / "basic_train.tsv", f);
  auto d = open_task("listops", dir.str(), Split::Train);
  REQUIRE(d->size() == 10);
  auto epoch = [&](BatchOptions o, int64_t e) {
    BatchIterator it(*d, o);
    it.start_epoch(e);
    std::vector<int32_t> labels;
    Batch b;
    while (it.next(b)) {
      CHECK(b.size == int64_t(b.labels.size()));
      CHECK(int64_t(b.tokens.size()) == b.size * b.length);
      for (int64_t r = 0; r < b.size; ++r) {
        CHECK(b.lengths[r] == b.labels[r] + 3);  // [SM, k+1 digits, X
        CHECK(b.tokens[r * b.length] == 5);
        for (int64_t t = b.lengths[r]; t < b.length; ++t) CHECK(b.tokens[r * b.length + t] == 0);
        if (!o.pad_to_max) CHECK(b.length == *std::max_element(b.lengths.begin(), b.lengths.end()));
        if (o.pad_to_max) CHECK(b.length == 2000);
        labels.push_back(b.labels[r]);
      }
    }
    return labels;
  };
  BatchOptions o{.batch_size = 4, .seed = 7};
  auto e0 = epoch(o, 0), e0b = epoch(o, 0), e1 = epoch(o, 1);
  CHECK(e0 == e0b);
  CHECK(e0 != e1);
  auto sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  BatchOptions plain{.batch_size = 3, .shuffle = false, .pad_to_max = true, .drop_last = true};
  CHECK(epoch(plain, 0) == std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8});
  BatchIterator it(*d, plain);
  CHECK(it.batches_per_epoch() == 3);
  CHECK(BatchIterator(*d, BatchOptions{.batch_size = 3}).batches_per_epoch() == 4);
}
