// The PNG writer, the colour map and the bitmap font.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "engine/tensor.h"
#include "train/plot.h"

using namespace lasgrad;
using namespace lasgrad::train;
namespace fs = std::filesystem;

TEST_CASE("text, heatmaps and line plots become PNG files") {
  Image img(40, 12);
  img.text(1, 1, "AB1", {0, 0, 0});
  int dark = 0;
  for (size_t i = 0; i < img.rgb.size(); i += 3) dark += img.rgb[i] == 0;
  CHECK(dark == 18 + 20 + 10);  // lit pixels of the glyphs A, B and 1
  CHECK(text_width("abc", 2) == 36);

  CHECK(colormap(0).r == 68);
  CHECK(colormap(1).g == 231);
  CHECK(colormap(-3).b == colormap(0).b);

  std::vector<float> m = {0, 1, 2, 3, 4, 5};
  Image h = heatmap(m, 2, 3, 4, "M");
  CHECK(h.height == 2 * 4 + 36);
  Image p = line_plots({{"loss", {{"train", {0, 1, 2}, {3, 2, 1}, {200, 0, 0}}}}}, "step");
  std::string path = (fs::temp_directory_path() / "lasgrad_plot_test.png").string();
  write_png(path, p);
  std::ifstream in(path, std::ios::binary);
  char sig[8];
  in.read(sig, 8);
  CHECK(std::string(sig + 1, 3) == "PNG");
  CHECK_THROWS_WITH_AS(write_png("/nonexistent/dir/x.png", p), doctest::Contains("/nonexistent/dir/x.png"), std::runtime_error);
  CHECK_THROWS_AS(heatmap(m, 2, 2, 1, "bad"), Error);
}

TEST_CASE("grid lays images out row by row") {
  Image a(10, 5, {255, 0, 0}), b(6, 8, {0, 0, 255});
  Image g = grid({a, b, a}, 2, 2);
  CHECK(g.width == 2 * 10 + 3 * 2);
  CHECK(g.height == 2 * 8 + 3 * 2);
  CHECK(g.rgb[(size_t(2) * g.width + 2) * 3] == 255);          // a's first pixel at (2, 2)
  CHECK(g.rgb[(size_t(2) * g.width + 14) * 3 + 2] == 255);     // b's at (14, 2)
}
