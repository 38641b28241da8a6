// Figures through Cairo: round-number ticks and their labels, heatmaps with exact cell colours, grids,
// line plots and bar charts written as PNG and SVG, antialiased text, and errors naming the path.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "engine/tensor.h"
#include "tools/study/plot.h"

using namespace lasgrad;
using namespace lasgrad::study;
namespace fs = std::filesystem;

namespace {

std::string head_of(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string s(n, '\0');
  in.read(s.data(), static_cast<std::streamsize>(n));
  return s;
}

}  // namespace

TEST_CASE("ticks fall on round numbers; labels carry the decimals the step needs") {
  CHECK(nice_ticks(0, 2500, 5) == std::vector<double>{0, 500, 1000, 1500, 2000, 2500});
  CHECK(nice_ticks(633, 1878, 4) == std::vector<double>{1000, 1500});  // not 633, 1255, 1878
  std::vector<double> t = nice_ticks(0.13, 0.87, 4);
  REQUIRE(t.size() == 4);
  CHECK(t[0] == doctest::Approx(0.2));
  CHECK(t[3] == doctest::Approx(0.8));
  CHECK(nice_ticks(1e-4, 3e-2, 5, true) == std::vector<double>{1e-4, 1e-3, 1e-2});
  std::vector<double> fine = nice_ticks(0.3, 4, 5, true);  // two decades or fewer: 1, 2, 5 times the powers
  REQUIRE(fine.size() == 3);
  CHECK(fine[0] == doctest::Approx(0.5));
  CHECK(fine[1] == doctest::Approx(1));
  CHECK(fine[2] == doctest::Approx(2));
  CHECK(tick_label(1500, 500) == "1500");
  CHECK(tick_label(0.25, 0.05) == "0.25");
  CHECK(tick_label(0.4, 0.2) == "0.4");
  CHECK(tick_label(1e-4, 1e-4) == "1e-4");
  CHECK(tick_label(5.2e-4, 1e-4) == "5e-4");
  CHECK(tick_label(0, 0.1) == "0.0");
}

TEST_CASE("a heatmap paints each cell in its colour; text is antialiased") {
  std::vector<float> m = {0, 1, 2, 3, 4, 5};
  Figure h = heatmap(m, 2, 3, 10, "Heatmap of M");
  int w = 0, ht = 0;
  std::vector<uint8_t> px = rasterize(h, w, ht);
  // No axis labels: the matrix starts at (12, 28); cell (1, 2) holds 5, the maximum.
  auto at = [&](int x, int y) {
    return Rgb{px[(size_t(y) * w + x) * 3], px[(size_t(y) * w + x) * 3 + 1], px[(size_t(y) * w + x) * 3 + 2]};
  };
  const Rgb hi = at(12 + 2 * 10 + 5, 28 + 10 + 5), lo = at(12 + 5, 28 + 5);
  CHECK(hi.r == colormap(1).r);
  CHECK(hi.g == colormap(1).g);
  CHECK(lo.b == colormap(0).b);
  std::set<int> greys;  // the title's pixels: more than black and white
  for (int y = 4; y < 24; ++y)
    for (int x = 12; x < 100; ++x) greys.insert(at(x, y).r);
  CHECK(greys.size() > 8);
  CHECK_THROWS_AS(heatmap(m, 2, 2, 1, "bad"), Error);
}

TEST_CASE("grid places figures row by row") {
  Figure a = heatmap({1}, 1, 1, 10, ""), b = heatmap({1, 2}, 1, 2, 10, "");
  Figure g = grid({a, b, a}, 2, 4);
  CHECK(g.width() == doctest::Approx(2 * std::max(a.width(), b.width()) + 3 * 4));
  CHECK(g.height() == doctest::Approx(2 * a.height() + 3 * 4));
}

TEST_CASE("line plots and bar charts are written as PNG and SVG; a bad path is named") {
  Figure p =
      line_plots({{"loss",
                   {{"train", {0, 100, 200}, {3, 2, 1}, palette(0)}, {"val", {100, 200}, {2.5, 1.5}, palette(1)}},
                   "step",
                   "cross-entropy",
                   true},
                  {"lr", {{"lr", {0, 100}, {1e-3, 1e-4}, palette(2)}}, "step", "learning rate", true}});
  Figure b = bar_chart("test accuracy", "accuracy %",
                       {{"softmax", 34.3, 0.6, 34.1, palette(0)}, {"las", 33.4, 1.3, NAN, palette(1)}}, "best val",
                       {{"majority class", 16.7, palette(7)}});
  const std::string dir = fs::temp_directory_path().string();
  write_png(dir + "/lasgrad_plot_test.png", p);
  write_svg(dir + "/lasgrad_plot_test.svg", grid({p, b}, 1));
  CHECK(head_of(dir + "/lasgrad_plot_test.png", 8).substr(1, 3) == "PNG");
  const std::string svg = head_of(dir + "/lasgrad_plot_test.svg", 200);
  CHECK(svg.find("<svg") != std::string::npos);
  CHECK_THROWS_WITH_AS(write_png("/nonexistent/dir/x.png", p), doctest::Contains("/nonexistent/dir/x.png"), Error);
  CHECK_THROWS_WITH_AS(write_svg("/nonexistent/dir/x.svg", p), doctest::Contains("/nonexistent/dir/x.svg"), Error);
}
