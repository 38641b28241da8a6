// Figures for `lasgrad attn` and `lasgrad sweep`, drawn with Cairo (antialiased text in DejaVu Sans):
// heatmaps of matrices with labelled axes and a colour bar, line plots with round-number ticks (linear or
// log), axis labels and legends, bar charts with error bars. A Figure is a vector drawing (a Cairo
// recording surface), so the same figure is written as PNG or as SVG.
//
//   Figure f = line_plots({{"loss", {{"train", steps, losses, kBlue}}, "step", "loss", true}});
//   write_png("curves.png", f);
//   write_svg("curves.svg", f);
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lasgrad::study {

struct Rgb {
  uint8_t r, g, b;
};

// Viridis-like colour of t in [0, 1] (dark blue -> green -> yellow).
Rgb colormap(double t);
// The i-th colour of a qualitative palette (matplotlib's tab10), for series and bars.
Rgb palette(size_t i);

// A drawing of width x height units (pixels in PNG), on white.
class Figure {
 public:
  Figure(double width, double height);
  double width() const { return width_; }
  double height() const { return height_; }
  struct Surface;  // the Cairo recording surface (plot.cpp)
  const std::shared_ptr<Surface>& surface() const { return surface_; }

 private:
  double width_, height_;
  std::shared_ptr<Surface> surface_;
};

// Rasterised at `scale` pixels per unit; throws Error naming the path on failure.
void write_png(const std::string& path, const Figure& figure, double scale = 1.0);
void write_svg(const std::string& path, const Figure& figure);
// The figure as 8-bit RGB pixels, rows top to bottom: for tests.
std::vector<uint8_t> rasterize(const Figure& figure, int& width, int& height);

// A rows x cols matrix (row-major) as a heatmap of cell x cell squares with a title, a colour bar from
// lo to hi (lo == hi: the matrix's own min and max) and, when labelled, position ticks on the axes
// (`per_cell` positions per row or column: a matrix averaged down from a longer sequence).
struct HeatmapAxes {
  std::string xlabel, ylabel;
  double per_cell = 1;
  // A label per column / per row (tokens) in place of the position ticks; x labels are drawn upright.
  std::vector<std::string> xticks, yticks;
  bool gray = false;  // grey levels (an input image) instead of the colour map
};
Figure heatmap(const std::vector<float>& m, int rows, int cols, int cell, const std::string& title,
               const HeatmapAxes& axes = {}, double lo = 0, double hi = 0);

// Figures laid out row by row, `cols` per row, `gap` units apart.
Figure grid(const std::vector<Figure>& figures, int cols, double gap = 8);

// Line plots side by side: each panel holds named series of (x, y) points, sharing the x label.
struct Series {
  std::string name;
  std::vector<double> x, y;
  Rgb color;
};
struct Panel {
  std::string title;
  std::vector<Series> series;
  std::string xlabel, ylabel;
  bool log_y = false;  // a log axis (loss, learning rate); values <= 0 are left out
};
Figure line_plots(const std::vector<Panel>& panels);

// Bars with +-err error bars and an optional marker line (NaN: none), one per label; `levels` are
// horizontal lines across every bar (trivial baselines), each named at its right end.
struct Bar {
  std::string label;
  double value, err, marker;
  Rgb color;
};
struct Level {
  std::string name;
  double value;
  Rgb color;
};
Figure bar_chart(const std::string& title, const std::string& ylabel, const std::vector<Bar>& bars,
                 const std::string& marker_name, const std::vector<Level>& levels = {});

// Round-number ticks covering [lo, hi] (about `count` of them): steps of 1, 2 or 5 times a power of ten;
// with `log`, the powers of ten (and 2 and 5 times them when few decades are covered; linear steps when
// that gives fewer than 3).
std::vector<double> nice_ticks(double lo, double hi, int count, bool log = false);
// A tick label: no more decimals than the step needs ("0.25", "1500", "1e-4").
std::string tick_label(double v, double step);

}  // namespace lasgrad::study
