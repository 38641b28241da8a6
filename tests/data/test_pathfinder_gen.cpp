// The Pathfinder generator: label balance, markers on the targets' ends, the two classes differing only
// where the markers sit, thread-count independence, and the loader reading the generated release layout.
#include <cmath>

#include "data/dataset.h"
#include "data/pathfinder_gen.h"
#include "tests/data/fixtures.h"

using namespace lasgrad::data;
using namespace fixtures;

static double dist(int y, int x, Tip t) { return std::hypot(y - t[0], x - t[1]); }

TEST_CASE("Pathfinder generator: the release's parameters per size and difficulty") {
  auto p = pathfinder_params(32, "curv_baseline");
  CHECK(p.contour_length == 6);
  CHECK(p.distractor_length == 2);
  CHECK(p.paddle_length == 2);
  CHECK(pathfinder_params(64, "curv_contour_length_9").seed_distance == 12);
  auto x = pathfinder_params(128, "curv_contour_length_14");
  CHECK(x.margins == std::vector<int>{2, 3});
  CHECK(x.distractor_length == 4);
  CHECK(x.distractors == 35);
  CHECK_MSG(error_of([] { pathfinder_params(48, "curv_baseline"); }), "size must be 32, 64 or 128");
  CHECK_MSG(error_of([] { pathfinder_params(32, "easy"); }), "unknown difficulty 'easy'");
}

TEST_CASE("Pathfinder generator: markers on target ends; classes differ only at the markers") {
  for (int side : {32, 64, 128}) {
    auto p = pathfinder_params(side, "curv_contour_length_14");
    for (uint64_t seed = 0; seed < (side == 128 ? 2u : 5u); ++seed) {
      auto scene = draw_pathfinder_scene(p, seed);
      INFO("side " << side << " seed " << seed);
      REQUIRE(scene.image.size() == size_t(side * side));
      for (int k = 0; k < 2; ++k) {
        // Every tip lies on its target contour, inside the image.
        for (Tip t : {scene.origin_tips[k], scene.terminal_tips[k]}) {
          REQUIRE(t[0] >= 0);
          REQUIRE(t[0] < side);
          REQUIRE(t[1] >= 0);
          REQUIRE(t[1] < side);
          CHECK(scene.targets[t[0] * side + t[1]] > 0.0f);
        }
      }
      // The targets start seed_distance apart (rounded to pixels).
      CHECK(std::abs(dist(scene.origin_tips[0][0], scene.origin_tips[0][1], scene.origin_tips[1]) - p.seed_distance) <
            1.0);
      for (int first : {0, 1}) {
        auto pos = compose_pathfinder(scene, p, 1, first), neg = compose_pathfinder(scene, p, 0, first);
        float top = std::max(1.0f, *std::max_element(scene.image.begin(), scene.image.end()));
        int marker = static_cast<int>(255 / top) - 1;
        Tip o = scene.origin_tips[first], same = scene.terminal_tips[first], other = scene.terminal_tips[1 - first];
        CHECK(pos[o[0] * side + o[1]] >= marker);
        CHECK(neg[o[0] * side + o[1]] >= marker);
        CHECK(pos[same[0] * side + same[1]] >= marker);
        CHECK(neg[other[0] * side + other[1]] >= marker);
        int differ = 0;
        for (int y = 0; y < side; ++y)
          for (int x = 0; x < side; ++x) {
            if (pos[y * side + x] == neg[y * side + x]) continue;
            ++differ;
            CHECK(std::min(dist(y, x, same), dist(y, x, other)) <= p.marker_radius + 1.0);
          }
        CHECK(differ > 0);
      }
    }
  }
}

TEST_CASE("Pathfinder generator: label balance, release layout, thread independence, loader round trip") {
  TempDir a, b;
  auto p = pathfinder_params(32, "curv_baseline");
  PathfinderGenOptions o;
  o.seed = 3;
  o.count = 300;
  o.per_batch = 120;
  o.threads = 1;
  auto labels = generate_pathfinder(a.str(), p, o);
  CHECK(labels[0] + labels[1] == 300);
  // A fair coin: 300 flips land within 150 +- 4.5 standard deviations.
  CHECK(labels[1] > 150 - 39);
  CHECK(labels[1] < 150 + 39);
  CHECK(fs::exists(a / "imgs/0/sample_0.png"));
  CHECK(fs::exists(a / "imgs/2/sample_59.png"));
  CHECK(!fs::exists(a / "imgs/2/sample_60.png"));
  std::ifstream meta(a / "metadata/1.npy");
  std::string line;
  std::getline(meta, line);
  CHECK(line.rfind("imgs/1 sample_0.png 0 ", 0) == 0);
  CHECK(line.find(" 1 6 2 2 0.5 1 1") != std::string::npos);

  o.count = 20;
  o.threads = 1;
  generate_pathfinder(b.str() + "/one", p, o);
  o.threads = 3;
  generate_pathfinder(b.str() + "/three", p, o);
  for (int k = 0; k < 20; ++k) {
    std::string f = "imgs/0/sample_" + std::to_string(k) + ".png";
    std::ifstream x(b / ("one/" + f), std::ios::binary), y(b / ("three/" + f), std::ios::binary);
    std::string sx((std::istreambuf_iterator<char>(x)), {}), sy((std::istreambuf_iterator<char>(y)), {});
    CHECK(sx == sy);
  }

  Options opt;
  opt.difficulty = "curv_baseline";
  int64_t n = 0, ones = 0;
  for (auto split : {Split::Train, Split::Val, Split::Test}) {
    auto d = open_task("pathfinder", a.str(), split, opt);
    n += d->size();
    for (int64_t i = 0; i < d->size(); ++i) ones += d->label(i);
    if (split == Split::Train) {
      CHECK(d->size() == 240);
      auto img = d->image_bytes(0);
      CHECK(*std::max_element(img.begin(), img.end()) == 255);
    }
  }
  CHECK(n == 300);
  CHECK(ones == labels[1]);
}

TEST_CASE("contact sheet is a PNG of the grid") {
  TempDir dir;
  std::vector<std::vector<uint8_t>> imgs(3, std::vector<uint8_t>(16, 200));
  write_contact_sheet((dir / "s.png").string(), imgs, {0, 1, 1}, 4, 2, 3);
  CHECK(fs::file_size(dir / "s.png") > 0);
}
