// Small RGB pictures for `lasgrad attn`: heatmaps of matrices and line plots of training curves,
// written as PNG with libpng. Labels use a built-in 5x7 bitmap font (digits, letters, a few signs).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lasgrad::train {

struct Rgb {
  uint8_t r, g, b;
};

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // [height][width][3]
  Image(int w, int h, Rgb background = {255, 255, 255});
  void set(int x, int y, Rgb c);  // ignores points outside
  void rect(int x0, int y0, int x1, int y1, Rgb c);  // filled, [x0, x1) x [y0, y1)
  void line(int x0, int y0, int x1, int y1, Rgb c);
  // Text at (x, y) = its top-left corner, each font pixel `scale` pixels wide. Lower case prints as upper.
  void text(int x, int y, const std::string& s, Rgb c, int scale = 1);
};
int text_width(const std::string& s, int scale = 1);

// Writes an 8-bit RGB PNG; throws Error naming the path on failure.
void write_png(const std::string& path, const Image& image);

// Viridis-like colour of t in [0, 1] (dark blue -> green -> yellow).
Rgb colormap(double t);

// A rows x cols matrix (row-major) as a heatmap, each entry a cell x cell square, with a title above
// and a colour bar from lo to hi (lo == hi: the matrix's own min and max).
Image heatmap(const std::vector<float>& m, int rows, int cols, int cell, const std::string& title, double lo = 0,
              double hi = 0);

// Images laid out row by row, `cols` per row, on white with a gap of `gap` pixels.
Image grid(const std::vector<Image>& images, int cols, int gap = 8);

// Line plots sharing one x axis: each panel holds one or more named series of (x, y) points.
struct Series {
  std::string name;
  std::vector<double> x, y;
  Rgb color;
};
struct Panel {
  std::string title;
  std::vector<Series> series;
};
// The panels side by side, each with axes, min/max tick labels and a legend.
Image line_plots(const std::vector<Panel>& panels, const std::string& xlabel);

}  // namespace lasgrad::train
