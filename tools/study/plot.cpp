#include "tools/study/plot.h"

#include <cairo-svg.h>
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/tensor.h"

namespace lasgrad::study {

// Owns one reference to the recording surface; never copied (Figures share it through shared_ptr).
struct Figure::Surface {
  cairo_surface_t* s;
  explicit Surface(cairo_surface_t* surface) : s(surface) {}
  ~Surface() { cairo_surface_destroy(s); }
  Surface(const Surface&) = delete;
  Surface& operator=(const Surface&) = delete;
};

namespace {

constexpr const char* kFont = "DejaVu Sans";
constexpr double kText = 12, kTitle = 14;
const Rgb kInk{30, 30, 30}, kGridLine{225, 225, 225}, kWhite{255, 255, 255};

// A drawing context on a figure's recording surface, destroyed with the scope.
struct Pen {
  cairo_t* cr;
  explicit Pen(const Figure& f) : cr(cairo_create(f.surface()->s)) {
    cairo_select_font_face(cr, kFont, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  }
  ~Pen() { cairo_destroy(cr); }
  Pen(const Pen&) = delete;
  Pen& operator=(const Pen&) = delete;

  void color(Rgb c) { cairo_set_source_rgb(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0); }
  void rect(double x, double y, double w, double h, Rgb c) {
    color(c);
    cairo_rectangle(cr, x, y, w, h);
    cairo_fill(cr);
  }
  void line(double x0, double y0, double x1, double y1, Rgb c, double width = 1) {
    color(c);
    cairo_set_line_width(cr, width);
    cairo_move_to(cr, x0, y0);
    cairo_line_to(cr, x1, y1);
    cairo_stroke(cr);
  }
  double text_width(const std::string& s, double size) {
    cairo_set_font_size(cr, size);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s.c_str(), &e);
    return e.x_advance;
  }
  // Text with its anchor at (x, y): ax = 0 left, 0.5 centre, 1 right; y is the vertical centre.
  void text(double x, double y, const std::string& s, double size, double ax = 0, Rgb c = kInk, double angle = 0) {
    cairo_set_font_size(cr, size);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s.c_str(), &e);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    color(c);
    cairo_move_to(cr, -ax * e.x_advance, size * 0.35);
    cairo_show_text(cr, s.c_str());
    cairo_restore(cr);
  }
};

void check(cairo_status_t st, const std::string& what) {
  if (st != CAIRO_STATUS_SUCCESS) throw Error(what + ": " + cairo_status_to_string(st));
}

// Maps a data interval onto a pixel interval, linearly or logarithmically.
struct Scale {
  double lo, hi, p0, p1;
  bool log = false;
  double operator()(double v) const {
    const double t = log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : (v - lo) / (hi - lo);
    return p0 + t * (p1 - p0);
  }
};

}  // namespace

Figure::Figure(double width, double height) : width_(width), height_(height) {
  cairo_rectangle_t extents{0, 0, width, height};
  surface_ = std::make_shared<Surface>(cairo_recording_surface_create(CAIRO_CONTENT_COLOR_ALPHA, &extents));
  check(cairo_surface_status(surface_->s), "figure");
  Pen p(*this);
  p.rect(0, 0, width, height, kWhite);
}

Rgb colormap(double t) {
  static const double stops[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0) * 4;
  int i = std::min(3, static_cast<int>(t));
  double f = t - i;
  auto mix = [&](int k) {
    return static_cast<uint8_t>(std::lround(stops[i][k] + f * (stops[i + 1][k] - stops[i][k])));
  };
  return {mix(0), mix(1), mix(2)};
}

Rgb palette(size_t i) {
  static const Rgb p[] = {{31, 119, 180}, {214, 39, 40},   {44, 160, 44},   {255, 127, 14}, {148, 103, 189},
                          {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
  return p[i % 10];
}

std::vector<double> nice_ticks(double lo, double hi, int count, bool log) {
  std::vector<double> out;
  if (!(lo < hi)) return {lo};
  if (log) {
    const int a = static_cast<int>(std::floor(std::log10(lo))), b = static_cast<int>(std::ceil(std::log10(hi)));
    const bool fine = b - a <= 2;
    for (int k = a; k <= b; ++k)
      for (double m : fine ? std::vector<double>{1, 2, 5} : std::vector<double>{1}) {
        const double v = m * std::pow(10.0, k);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push_back(v);
      }
    if (out.size() >= 3) return out;
    out.clear();  // less than a decade: round linear steps, which a log axis places as well
    for (double v : nice_ticks(lo, hi, count, false))
      if (v > 0) out.push_back(v);
    return out;
  }
  const double raw = (hi - lo) / std::max(1, count), mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    out.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  return out;
}

std::string tick_label(double v, double step) {
  char buf[32];
  const double a = std::abs(v);
  if (a != 0 && (a < 1e-3 || a >= 1e6)) {
    std::snprintf(buf, sizeof buf, "%.0e", v);  // "1e-04" -> "1e-4"
    std::string s = buf;
    const auto e = s.find('e');
    std::string mant = s.substr(0, e), ex = s.substr(e + 1);
    const bool neg = ex[0] == '-';
    ex = ex.substr(1);
    while (ex.size() > 1 && ex[0] == '0') ex.erase(0, 1);
    return mant + "e" + (neg ? "-" : "") + ex;
  }
  const int decimals = step >= 1 ? 0 : std::min(6, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

void write_png(const std::string& path, const Figure& f, double scale) {
  const int w = static_cast<int>(std::ceil(f.width() * scale)), h = static_cast<int>(std::ceil(f.height() * scale));
  cairo_surface_t* img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  cairo_t* cr = cairo_create(img);
  cairo_scale(cr, scale, scale);
  cairo_set_source_surface(cr, f.surface()->s, 0, 0);
  cairo_paint(cr);
  cairo_destroy(cr);
  const cairo_status_t st = cairo_surface_write_to_png(img, path.c_str());
  cairo_surface_destroy(img);
  check(st, "cannot write " + path);
}

void write_svg(const std::string& path, const Figure& f) {
  cairo_surface_t* svg = cairo_svg_surface_create(path.c_str(), f.width(), f.height());
  cairo_t* cr = cairo_create(svg);
  cairo_set_source_surface(cr, f.surface()->s, 0, 0);
  cairo_paint(cr);
  cairo_destroy(cr);
  cairo_surface_finish(svg);
  const cairo_status_t st = cairo_surface_status(svg);
  cairo_surface_destroy(svg);
  check(st, "cannot write " + path);
}

std::vector<uint8_t> rasterize(const Figure& f, int& width, int& height) {
  width = static_cast<int>(std::ceil(f.width())), height = static_cast<int>(std::ceil(f.height()));
  cairo_surface_t* img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  cairo_t* cr = cairo_create(img);
  cairo_set_source_surface(cr, f.surface()->s, 0, 0);
  cairo_paint(cr);
  cairo_destroy(cr);
  cairo_surface_flush(img);
  std::vector<uint8_t> rgb(static_cast<size_t>(width) * height * 3);
  const unsigned char* data = cairo_image_surface_get_data(img);
  const int stride = cairo_image_surface_get_stride(img);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const uint32_t px = *reinterpret_cast<const uint32_t*>(data + y * stride + 4 * x);
      uint8_t* o = &rgb[(static_cast<size_t>(y) * width + x) * 3];
      o[0] = (px >> 16) & 255, o[1] = (px >> 8) & 255, o[2] = px & 255;
    }
  cairo_surface_destroy(img);
  return rgb;
}

Figure heatmap(const std::vector<float>& m, int rows, int cols, int cell, const std::string& title,
               const HeatmapAxes& axes, double lo, double hi) {
  const std::string &xlabel = axes.xlabel, &ylabel = axes.ylabel;
  if (static_cast<int64_t>(m.size()) != int64_t(rows) * cols)
    throw Error("heatmap: matrix size does not match rows x cols");
  if (lo == hi) {
    auto [mn, mx] = std::minmax_element(m.begin(), m.end());
    lo = m.empty() ? 0 : *mn, hi = m.empty() ? 1 : *mx;
    if (lo == hi) hi = lo + 1;
  }
  const double W = double(cols) * cell, H = double(rows) * cell;
  auto longest = [&](const std::vector<std::string>& v) {
    Figure probe(1, 1);
    Pen measure(probe);
    double w = 0;
    for (const auto& t : v) w = std::max(w, measure.text_width(t, kText - 3));
    return w;
  };
  const double xt = longest(axes.xticks), yt = longest(axes.yticks);
  const double left = (ylabel.empty() ? 12 : 58) + yt, top = 28, bottom = (xlabel.empty() ? 12 : 44) + xt, bar = 14;
  Figure f(std::max(left + W + 16 + bar + 56, 0.0), top + H + bottom);
  Pen p(f);
  p.text(left, 14, title, kTitle);
  auto shade = [&](double t) {
    if (!axes.gray) return colormap(t);
    const uint8_t g = static_cast<uint8_t>(std::lround(255 * std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0)));
    return Rgb{g, g, g};
  };
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      p.rect(left + c * cell, top + r * cell, cell, cell, shade((m[size_t(r) * cols + c] - lo) / (hi - lo)));
  for (size_t c = 0; c < axes.xticks.size() && int(c) < cols; ++c)  // token labels, read bottom to top
    p.text(left + (c + 0.5) * cell, top + H + 4, axes.xticks[c], kText - 3, 1, kInk, -M_PI / 2);
  for (size_t r = 0; r < axes.yticks.size() && int(r) < rows; ++r)
    p.text(left - 4, top + (r + 0.5) * cell, axes.yticks[r], kText - 3, 1);
  // Position ticks on both axes (0-based positions, round numbers).
  auto axis_ticks = [&](int n, bool x) {
    for (double v : nice_ticks(0, std::max(1.0, (n - 1) * axes.per_cell), 5)) {  // v: a position
      const double at = (v / axes.per_cell + 0.5) * cell;
      if (x) {
        p.line(left + at, top + H, left + at, top + H + 4, kInk);
        p.text(left + at, top + H + 12, tick_label(v, 1), kText - 2, 0.5);
      } else {
        p.line(left - 4, top + at, left, top + at, kInk);
        p.text(left - 6, top + at, tick_label(v, 1), kText - 2, 1);
      }
    }
  };
  if (!xlabel.empty()) {
    if (axes.xticks.empty()) axis_ticks(cols, true);
    p.text(left + W / 2, top + H + xt + 32, xlabel, kText, 0.5);
  }
  if (!ylabel.empty()) {
    if (axes.yticks.empty()) axis_ticks(rows, false);
    p.text(14, top + H / 2, ylabel, kText, 0.5, kInk, -M_PI / 2);
  }
  const double bx = left + W + 16;  // colour bar, hi at the top
  const int steps = 64;
  for (int k = 0; k < steps; ++k) p.rect(bx, top + H * k / steps, bar, H / steps + 0.5, shade(1.0 - (k + 0.5) / steps));
  const std::vector<double> ticks = nice_ticks(lo, hi, 4);
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1;
  for (double v : ticks) {
    const double y = top + (hi - v) / (hi - lo) * H;
    p.line(bx + bar, y, bx + bar + 3, y, kInk);
    p.text(bx + bar + 5, y, tick_label(v, step), kText - 2);
  }
  return f;
}

Figure grid(const std::vector<Figure>& figures, int cols, double gap) {
  if (figures.empty() || cols < 1) throw Error("grid: no figures");
  double cw = 0, ch = 0;
  for (const Figure& g : figures) cw = std::max(cw, g.width()), ch = std::max(ch, g.height());
  const int n = static_cast<int>(figures.size()), rows = (n + cols - 1) / cols, used = std::min(cols, n);
  Figure out(used * cw + (used + 1) * gap, rows * ch + (rows + 1) * gap);
  Pen p(out);
  for (int k = 0; k < n; ++k) {
    cairo_set_source_surface(p.cr, figures[k].surface()->s, gap + (k % cols) * (cw + gap),
                             gap + (k / cols) * (ch + gap));
    cairo_paint(p.cr);
  }
  return out;
}

Figure line_plots(const std::vector<Panel>& panels) {
  const double pw = 420, ph = 260, left = 70, right = 16, top = 30, bottom = 48;
  const double cw = left + pw + right, chh = top + ph + bottom;
  Figure f(cw * std::max<size_t>(1, panels.size()), chh);
  Pen p(f);
  for (size_t k = 0; k < panels.size(); ++k) {
    const Panel& pn = panels[k];
    const double ox = k * cw + left, oy = top;
    auto usable = [&](double y) { return std::isfinite(y) && (!pn.log_y || y > 0); };
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (const auto& s : pn.series)
      for (size_t i = 0; i < s.x.size(); ++i)
        if (usable(s.y[i]))
          x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]), y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = pn.log_y ? 0.1 : 0, y1 = 1;
    if (x0 == x1) x1 = x0 + 1;
    if (pn.log_y) {
      if (y0 == y1) y0 /= 2, y1 *= 2;
      y0 = std::pow(10.0, std::floor(std::log10(y0) * 4) / 4), y1 = std::pow(10.0, std::ceil(std::log10(y1) * 4) / 4);
    } else {
      if (y0 == y1) y0 -= 0.5, y1 += 0.5;
      const double pad = 0.05 * (y1 - y0);
      y0 = y0 >= 0 && y0 - pad < 0 ? 0 : y0 - pad;  // non-negative data keeps a non-negative axis
      y1 += pad;
    }
    const Scale sx{x0, x1, ox, ox + pw}, sy{y0, y1, oy + ph, oy, pn.log_y};
    const std::vector<double> xt = nice_ticks(x0, x1, 5), yt = nice_ticks(y0, y1, 5, pn.log_y);
    const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1, ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
    for (double v : xt) {
      p.line(sx(v), oy, sx(v), oy + ph, kGridLine);
      p.text(sx(v), oy + ph + 12, tick_label(v, xstep), kText - 1, 0.5);
    }
    for (double v : yt) {
      p.line(ox, sy(v), ox + pw, sy(v), kGridLine);
      p.text(ox - 6, sy(v), tick_label(v, pn.log_y ? v : ystep), kText - 1, 1);
    }
    p.line(ox, oy, ox, oy + ph, kInk);
    p.line(ox, oy + ph, ox + pw, oy + ph, kInk);
    p.text(ox + pw / 2, 14, pn.title, kTitle, 0.5);
    if (!pn.xlabel.empty()) p.text(ox + pw / 2, oy + ph + 34, pn.xlabel, kText, 0.5);
    if (!pn.ylabel.empty())
      p.text(k * cw + 14, oy + ph / 2, pn.ylabel + (pn.log_y ? " (log)" : ""), kText, 0.5, kInk, -M_PI / 2);
    cairo_save(p.cr);
    cairo_rectangle(p.cr, ox, oy, pw, ph);
    cairo_clip(p.cr);
    for (const auto& s : pn.series) {
      p.color(s.color);
      cairo_set_line_width(p.cr, 1.8);
      bool open = false;
      for (size_t i = 0; i < s.x.size(); ++i) {
        if (!usable(s.y[i])) {
          open = false;
          continue;
        }
        if (open) cairo_line_to(p.cr, sx(s.x[i]), sy(s.y[i]));
        else cairo_move_to(p.cr, sx(s.x[i]), sy(s.y[i]));
        open = true;
      }
      cairo_stroke(p.cr);
      if (s.x.size() == 1 && usable(s.y[0])) {
        cairo_arc(p.cr, sx(s.x[0]), sy(s.y[0]), 3, 0, 2 * M_PI);
        cairo_fill(p.cr);
      }
    }
    cairo_restore(p.cr);
    double lw = 0;  // legend, top right
    for (const auto& s : pn.series) lw = std::max(lw, p.text_width(s.name, kText - 1) + 30);
    const double lx = ox + pw - lw - 8, ly = oy + 8;
    if (!pn.series.empty()) {
      p.rect(lx - 4, ly - 4, lw + 4, 16.0 * pn.series.size() + 4, kWhite);
      for (size_t i = 0; i < pn.series.size(); ++i) {
        p.line(lx, ly + 6 + 16 * i, lx + 20, ly + 6 + 16 * i, pn.series[i].color, 2.5);
        p.text(lx + 26, ly + 6 + 16 * i, pn.series[i].name, kText - 1);
      }
    }
  }
  return f;
}

Figure bar_chart(const std::string& title, const std::string& ylabel, const std::vector<Bar>& bars,
                 const std::string& marker_name, const std::vector<Level>& levels) {
  Figure probe(1, 1);
  Pen measure(probe);
  double slot = 56, names = 0;
  for (const Bar& b : bars) slot = std::max(slot, measure.text_width(b.label, kText - 1) + 14);
  for (const Level& l : levels) names = std::max(names, measure.text_width(l.name, kText - 1) + 6);
  const double left = 70, top = 30, ph = 260, bottom = 48, n = static_cast<double>(bars.size());
  Figure f(std::max(left + n * slot + 16 + names, measure.text_width(title, kTitle) + 24), top + ph + bottom);
  Pen p(f);
  double hi = 0;
  for (const Bar& b : bars)
    for (double v : {b.value + (std::isfinite(b.err) ? b.err : 0), b.marker})
      if (std::isfinite(v)) hi = std::max(hi, v);
  for (const Level& l : levels) hi = std::max(hi, l.value);
  if (hi <= 0) hi = 1;
  const std::vector<double> ticks = nice_ticks(0, hi * 1.05, 5);
  hi = std::max(hi * 1.05, ticks.back());
  const Scale sy{0, hi, top + ph, top};
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1;
  for (double v : ticks) {
    p.line(left, sy(v), left + n * slot, sy(v), kGridLine);
    p.text(left - 6, sy(v), tick_label(v, step), kText - 1, 1);
  }
  for (size_t k = 0; k < bars.size(); ++k) {
    const Bar& b = bars[k];
    const double x0 = left + k * slot + 8, x1 = left + (k + 1) * slot - 8, xm = (x0 + x1) / 2;
    if (std::isfinite(b.value)) {
      p.rect(x0, sy(b.value), x1 - x0, sy(0) - sy(b.value), b.color);
      if (std::isfinite(b.err) && b.err > 0) {
        p.line(xm, sy(b.value - b.err), xm, sy(b.value + b.err), kInk, 1.2);
        p.line(xm - 5, sy(b.value + b.err), xm + 5, sy(b.value + b.err), kInk, 1.2);
        p.line(xm - 5, sy(b.value - b.err), xm + 5, sy(b.value - b.err), kInk, 1.2);
      }
    }
    if (std::isfinite(b.marker)) p.line(x0 - 3, sy(b.marker), x1 + 3, sy(b.marker), kInk, 2.5);
    p.text(xm, top + ph + 12, b.label, kText - 1, 0.5);
  }
  for (const Level& l : levels) {
    p.line(left, sy(l.value), left + n * slot, sy(l.value), l.color, 1.5);
    p.text(left + n * slot + 4, sy(l.value), l.name, kText - 1, 0, l.color);
  }
  p.line(left, top, left, top + ph, kInk);
  p.line(left, top + ph, left + n * slot, top + ph, kInk);
  p.text(f.width() / 2, 14, title, kTitle, 0.5);
  p.text(14, top + ph / 2, ylabel, kText, 0.5, kInk, -M_PI / 2);
  if (!marker_name.empty()) {
    p.line(left + 4, top + ph + 34, left + 24, top + ph + 34, kInk, 2.5);
    p.text(left + 30, top + ph + 34, marker_name, kText - 1);
  }
  return f;
}

}  // namespace lasgrad::study
