#include "train/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/formats.h"
#include "engine/tensor.h"

namespace lasgrad::train {

// 5x7 glyphs, one byte per row, bit 4 = leftmost column.
struct Glyph {
  char c;
  uint8_t rows[7];
};
static const Glyph kFont[] = {
    {' ', {0, 0, 0, 0, 0, 0, 0}},
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'.', {0, 0, 0, 0, 0, 0x0C, 0x0C}},       {',', {0, 0, 0, 0, 0x0C, 0x04, 0x08}},
    {'-', {0, 0, 0, 0x1F, 0, 0, 0}},          {'+', {0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0}},
    {':', {0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0}}, {'=', {0, 0, 0x1F, 0, 0x1F, 0, 0}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}}, {'/', {0, 0x01, 0x02, 0x04, 0x08, 0x10, 0}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}}, {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'[', {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E}}, {']', {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E}},
    {'_', {0, 0, 0, 0, 0, 0, 0x1F}},          {'*', {0, 0x04, 0x15, 0x0E, 0x15, 0x04, 0}},
    {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}}, {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
    {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04}},
};

static const Glyph& glyph(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  for (const Glyph& g : kFont)
    if (g.c == c) return g;
  return kFont[sizeof(kFont) / sizeof(kFont[0]) - 1];  // '?'
}

Image::Image(int w, int h, Rgb bg) : width(w), height(h), rgb(static_cast<size_t>(w) * h * 3) {
  for (size_t i = 0; i < rgb.size(); i += 3) rgb[i] = bg.r, rgb[i + 1] = bg.g, rgb[i + 2] = bg.b;
}

void Image::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  uint8_t* p = &rgb[(static_cast<size_t>(y) * width + x) * 3];
  p[0] = c.r, p[1] = c.g, p[2] = c.b;
}

void Image::rect(int x0, int y0, int x1, int y1, Rgb c) {
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) set(x, y, c);
}

void Image::line(int x0, int y0, int x1, int y1, Rgb c) {  // Bresenham
  int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
  for (;;) {
    set(x0, y0, c);
    if (x0 == x1 && y0 == y1) return;
    int e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}

void Image::text(int x, int y, const std::string& s, Rgb c, int scale) {
  for (char ch : s) {
    const Glyph& g = glyph(ch);
    for (int r = 0; r < 7; ++r)
      for (int col = 0; col < 5; ++col)
        if (g.rows[r] & (0x10 >> col)) rect(x + col * scale, y + r * scale, x + (col + 1) * scale, y + (r + 1) * scale, c);
    x += 6 * scale;
  }
}

int text_width(const std::string& s, int scale) { return static_cast<int>(s.size()) * 6 * scale; }

void write_png(const std::string& path, const Image& image) {
  data::write_png(path, image.rgb.data(), image.width, image.height, 3);
}

Rgb colormap(double t) {
  // Piecewise-linear through five viridis samples.
  static const double stops[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0) * 4;
  int i = std::min(3, static_cast<int>(t));
  double f = t - i;
  auto mix = [&](int k) { return static_cast<uint8_t>(std::lround(stops[i][k] + f * (stops[i + 1][k] - stops[i][k]))); };
  return {mix(0), mix(1), mix(2)};
}

static std::string fmt(double v) {
  char buf[32];
  double a = std::abs(v);
  if (a != 0 && (a < 1e-3 || a >= 1e5))
    std::snprintf(buf, sizeof buf, "%.1e", v);
  else
    std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

static const Rgb kInk{30, 30, 30}, kGrid{225, 225, 225};

Image heatmap(const std::vector<float>& m, int rows, int cols, int cell, const std::string& title, double lo, double hi) {
  if (static_cast<int64_t>(m.size()) != int64_t(rows) * cols) throw Error("heatmap: matrix size does not match rows x cols");
  if (lo == hi) {
    auto [mn, mx] = std::minmax_element(m.begin(), m.end());
    lo = m.empty() ? 0 : *mn, hi = m.empty() ? 1 : *mx;
    if (lo == hi) hi = lo + 1;
  }
  const int margin = 10, top = 26, bar = 14, W = cols * cell, H = rows * cell;
  Image img(std::max(W + 2 * margin + bar + 70, text_width(title, 1) + 2 * margin), H + top + margin);
  img.text(margin, 8, title, kInk);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      img.rect(margin + c * cell, top + r * cell, margin + (c + 1) * cell, top + (r + 1) * cell,
               colormap((m[size_t(r) * cols + c] - lo) / (hi - lo)));
  int bx = margin + W + 10;  // colour bar, hi at the top
  for (int y = 0; y < H; ++y) img.rect(bx, top + y, bx + bar, top + y + 1, colormap(1.0 - double(y) / std::max(1, H - 1)));
  img.text(bx + bar + 4, top, fmt(hi), kInk);
  img.text(bx + bar + 4, top + H - 7, fmt(lo), kInk);
  return img;
}

Image grid(const std::vector<Image>& images, int cols, int gap) {
  if (images.empty() || cols < 1) throw Error("grid: no images");
  int cw = 0, ch = 0;
  for (const Image& im : images) cw = std::max(cw, im.width), ch = std::max(ch, im.height);
  int n = static_cast<int>(images.size()), rows = (n + cols - 1) / cols, used = std::min(cols, n);
  Image out(used * cw + (used + 1) * gap, rows * ch + (rows + 1) * gap);
  for (int k = 0; k < n; ++k) {
    int x0 = gap + (k % cols) * (cw + gap), y0 = gap + (k / cols) * (ch + gap);
    const Image& im = images[k];
    for (int y = 0; y < im.height; ++y)
      std::copy_n(&im.rgb[size_t(y) * im.width * 3], size_t(im.width) * 3, &out.rgb[(size_t(y0 + y) * out.width + x0) * 3]);
  }
  return out;
}

Image line_plots(const std::vector<Panel>& panels, const std::string& xlabel) {
  const int pw = 420, ph = 260, left = 64, right = 16, top = 30, bottom = 44;
  const int cw = left + pw + right, ch = top + ph + bottom;
  Image img(cw * std::max<int>(1, static_cast<int>(panels.size())), ch);
  for (size_t k = 0; k < panels.size(); ++k) {
    const Panel& p = panels[k];
    int ox = static_cast<int>(k) * cw + left, oy = top;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (const auto& s : p.series)
      for (size_t i = 0; i < s.x.size(); ++i)
        if (std::isfinite(s.y[i])) x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]), y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (x0 == x1) x1 = x0 + 1;
    if (y0 == y1) y0 -= 0.5, y1 += 0.5;
    double pad = 0.05 * (y1 - y0);
    y0 = y0 >= 0 && y0 - pad < 0 ? 0 : y0 - pad;  // non-negative data keeps a non-negative axis
    y1 += pad;
    auto px = [&](double x) { return ox + static_cast<int>(std::lround((x - x0) / (x1 - x0) * (pw - 1))); };
    auto py = [&](double y) { return oy + static_cast<int>(std::lround((y1 - y) / (y1 - y0) * (ph - 1))); };
    for (int t = 0; t <= 4; ++t) {  // grid and tick labels
      double fx = x0 + (x1 - x0) * t / 4, fy = y0 + (y1 - y0) * t / 4;
      img.line(px(fx), oy, px(fx), oy + ph - 1, kGrid);
      img.line(ox, py(fy), ox + pw - 1, py(fy), kGrid);
      std::string lx = x1 - x0 >= 20 ? std::to_string(std::lround(fx)) : fmt(fx), ly = fmt(fy);
      img.text(px(fx) - text_width(lx) / 2, oy + ph + 5, lx, kInk);
      img.text(ox - text_width(ly) - 5, py(fy) - 3, ly, kInk);
    }
    img.line(ox, oy, ox, oy + ph - 1, kInk);
    img.line(ox, oy + ph - 1, ox + pw - 1, oy + ph - 1, kInk);
    img.text(ox + (pw - text_width(p.title, 2)) / 2, 6, p.title, kInk, 2);
    img.text(ox + (pw - text_width(xlabel)) / 2, oy + ph + 22, xlabel, kInk);
    int ly = oy + 8, lw = 0;
    for (const auto& s : p.series) lw = std::max(lw, text_width(s.name) + 24);
    for (const auto& s : p.series) {
      for (size_t i = 1; i < s.x.size(); ++i)
        if (std::isfinite(s.y[i - 1]) && std::isfinite(s.y[i]))
          for (int d = 0; d < 2; ++d) img.line(px(s.x[i - 1]), py(s.y[i - 1]) + d, px(s.x[i]), py(s.y[i]) + d, s.color);
      if (s.x.size() == 1) img.rect(px(s.x[0]) - 2, py(s.y[0]) - 2, px(s.x[0]) + 3, py(s.y[0]) + 3, s.color);
    }
    const int lx = ox + pw - lw - 6;  // legend, top right, on white over the lines
    img.rect(lx - 4, ly - 4, lx + lw, ly + 12 * static_cast<int>(p.series.size()), {255, 255, 255});
    for (const auto& s : p.series) {
      img.rect(lx, ly + 2, lx + 16, ly + 5, s.color);
      img.text(lx + 20, ly, s.name, kInk);
      ly += 12;
    }
  }
  return img;
}

}  // namespace lasgrad::train
