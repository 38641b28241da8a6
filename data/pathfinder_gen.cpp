#include "data/pathfinder_gen.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "data/dataset.h"
#include "data/error.h"
#include "data/formats.h"
#include "engine/rng.h"

namespace lasgrad::data {

namespace fs = std::filesystem;

PathfinderParams pathfinder_params(int side, const std::string& difficulty) {
  PathfinderParams p;
  p.side = side;
  p.difficulty = difficulty;
  if (difficulty == "curv_baseline") {
    p.contour_length = 6;
  } else if (difficulty == "curv_contour_length_9") {
    p.contour_length = 9;
  } else if (difficulty == "curv_contour_length_14") {
    p.contour_length = 14;
  } else {
    throw DataError("Pathfinder generator: unknown difficulty '" + difficulty +
                    "' (curv_baseline, curv_contour_length_9, curv_contour_length_14)");
  }
  int base;  // distractor budget in segments, spread over distractors of distractor_length segments
  if (side == 32) {
    p.margins = {1};
    p.seed_distance = 7;
    p.marker_radius = 1.5;
    p.paddle_length = 2;
    p.thickness = 0.5;
    p.continuity = 1.0;
    p.snake_contrast = 2.0;
    p.paddle_contrast = 0.75;
    base = 20;
  } else if (side == 64) {
    p.margins = {1};
    p.seed_distance = 12;
    p.marker_radius = 2.5;
    p.paddle_length = 5;
    p.thickness = 1.0;
    p.continuity = 1.8;
    p.snake_contrast = 0.8;
    p.paddle_contrast = 1.0;
    base = 22;
  } else if (side == 128) {
    p.margins = {2, 3};
    p.seed_distance = 20;
    p.marker_radius = 3.0;
    p.paddle_length = 5;
    p.thickness = 1.5;
    p.continuity = 1.8;
    p.snake_contrast = 0.9;
    p.paddle_contrast = 1.0;
    base = 35;
  } else {
    throw DataError("Pathfinder generator: size must be 32, 64 or 128, not " + std::to_string(side));
  }
  p.distractor_length = p.contour_length / 3;
  // The spec's count, base / distractor_length * (contour_length / 3), computed without truncating the
  // first quotient: with integer contour_length / 3 it is `base` segments' worth of contours.
  p.distractors = static_cast<int>(std::lround(double(base) / p.distractor_length * (p.contour_length / 3)));
  return p;
}

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kSub = 4;  // coverage subsamples per axis per pixel: resolves the aa=2 line widths

struct Grid {
  int n = 0;
  std::vector<float> v;
  explicit Grid(int side = 0) : n(side), v(size_t(side) * side, 0.0f) {}
  float& at(int y, int x) { return v[size_t(y) * n + x]; }
  float at(int y, int x) const { return v[size_t(y) * n + x]; }
  bool inside(int y, int x) const { return y >= 0 && y < n && x >= 0 && x < n; }
};

// One paddle's intensity and occupancy over the window [y0, y0+h) x [x0, x0+w).
struct Patch {
  int y0 = 0, x0 = 0, h = 0, w = 0;
  std::vector<float> line, mask;
};

struct Point {
  int y, x;
};

// translate_coord of the original: moved by dist along orientation, rounded up to whole pixels.
Point translate(Point c, double theta, double dist) {
  return {static_cast<int>(std::ceil(c.y + dist * std::sin(theta))),
          static_cast<int>(std::ceil(c.x + dist * std::cos(theta)))};
}

double flip(double theta) { return theta < 0 ? theta + kPi : theta - kPi; }

double segment_dist2(double py, double px, double ay, double ax, double by, double bx) {
  double dy = by - ay, dx = bx - ax, len2 = dy * dy + dx * dx;
  double t = len2 > 0 ? std::clamp(((py - ay) * dy + (px - ax) * dx) / len2, 0.0, 1.0) : 0.0;
  double ey = ay + t * dy - py, ex = ax + t * dx - px;
  return ey * ey + ex * ex;
}

// Draws one image: the state of the original's make_snake / two_snakes, with its retry rules.
class Painter {
 public:
  Painter(const PathfinderParams& p, Rng& rng, int margin) : p_(p), rng_(rng), n_(p.side), m_(margin), mask_(p.side) {
    // The original draws a line of round(thickness * aa) pixels at aa times the resolution (at least one
    // pixel) and dilates it by margin * aa for the occupancy mask.
    half_line_ = std::max(1.0, std::round(p.thickness * p.aa)) / p.aa / 2;
    half_mask_ = half_line_ + m_;
  }

  // Two target contours grown in alternation from seeds seed_distance apart; false to start over.
  bool two_targets(Grid& t0, Grid& t1, std::array<Tip, 2>& origin, std::array<Tip, 2>& terminal) {
    mask_ = Grid(n_);
    for (int y = 0; y < n_; ++y)
      for (int x = 0; x < n_; ++x)
        if (y < p_.padding || x < p_.padding || y >= n_ - p_.padding || x >= n_ - p_.padding) mask_.at(y, x) = 1;
    const double contrast = p_.paddle_contrast * p_.snake_contrast;
    Snake s[2];
    // First seed: anywhere free, away from a band of 2 * seed_distance along the border.
    Grid lined = mask_;
    const int band = 2 * p_.seed_distance;
    for (int y = 0; y < n_; ++y)
      for (int x = 0; x < n_; ++x)
        if (y < band || x < band || y >= n_ - band || x >= n_ - band) lined.at(y, x) = 1;
    Point tail0{};
    bool ok = false;
    for (int trial = 0; trial <= p_.max_paddle_retrial && !ok; ++trial) {
      double th = rng_.range(-180, 179) * kPi / 180;
      if (!sample_tail(lined, th, tail0)) return false;
      ok = place_seed(tail0, th, contrast, s[0]);
    }
    if (!ok) return false;
    // Second seed: seed_distance from the first, in a uniform direction (rounded half to even, as NumPy).
    Point tail1{};
    ok = false;
    for (int trial = 0; trial <= p_.max_paddle_retrial && !ok; ++trial) {
      double th = rng_.range(-180, 179) * kPi / 180;
      double phi = rng_.range(0, 359) * kPi / 180;
      tail1 = {static_cast<int>(std::nearbyint(tail0.y + p_.seed_distance * std::sin(phi))),
               static_cast<int>(std::nearbyint(tail0.x + p_.seed_distance * std::cos(phi)))};
      ok = place_seed(tail1, th, contrast, s[1]);
    }
    if (!ok) return false;
    Grid* images[2] = {&t0, &t1};
    for (int k = 0; k < 2; ++k) {
      *images[k] = Grid(n_);
      draw(*images[k], s[k].last);
    }
    origin = {Tip{tail0.y, tail0.x}, Tip{tail1.y, tail1.x}};
    for (int seg = 0; seg + 1 < p_.contour_length; ++seg)
      for (int k = 0; k < 2; ++k)
        if (!extend(*images[k], s[k], contrast)) return false;
    // Both last paddles become occupied (the original marks only the second target's; marking both keeps
    // distractors off the first target's end, where a marker may go).
    for (int k = 0; k < 2; ++k) occupy(s[k].last);
    terminal = {Tip{s[0].head.y, s[0].head.x}, Tip{s[1].head.y, s[1].head.x}};
    return true;
  }

  // Distractor contours of `segments` paddles each, `count` of them, each retried a few times and
  // skipped when it cannot be placed (the original's allow_incomplete), as long as 1% of the image is free.
  void distractors(Grid& image, int count, int segments) {
    const double contrast = p_.snake_contrast;
    for (int c = 0; c < count; ++c) {
      for (int trial = 0; trial <= p_.max_distractor_retrial; ++trial) {
        Grid img = image, saved = mask_;
        if (snake(img, segments, contrast)) {
          image = std::move(img);
          break;
        }
        mask_ = std::move(saved);
      }
    }
  }

 private:
  struct Snake {
    Patch last;     // the last paddle's occupancy, added to the mask one step later
    Point pivot{};  // the point the next paddle turns around
    double orientation = 0;
    Point head{};  // far end of the last paddle
  };

  // One paddle from tail (y, x) along theta, intensity `contrast`; clip: keep only in-image pixels.
  Patch paddle(Point tail, double theta, double contrast, bool clip = true) const {
    const int R = p_.paddle_length + static_cast<int>(std::ceil(p_.thickness)) + m_;
    Patch q;
    q.y0 = tail.y - R;
    q.x0 = tail.x - R;
    int y1 = tail.y + R, x1 = tail.x + R;
    if (clip) {
      q.y0 = std::max(q.y0, 0);
      q.x0 = std::max(q.x0, 0);
      y1 = std::min(y1, n_ - 1);
      x1 = std::min(x1, n_ - 1);
    }
    q.h = std::max(0, y1 - q.y0 + 1);
    q.w = std::max(0, x1 - q.x0 + 1);
    q.line.assign(size_t(q.h) * q.w, 0.0f);
    q.mask.assign(size_t(q.h) * q.w, 0.0f);
    const double ay = tail.y, ax = tail.x;
    const double by = ay + p_.paddle_length * std::sin(theta), bx = ax + p_.paddle_length * std::cos(theta);
    // Coverage of a pixel by the band within `half` of the segment: 0 or 1 when the pixel's centre is
    // far enough from the band's edge (a pixel reaches at most 0.71 from its centre), else counted on
    // kSub x kSub subsamples.
    auto coverage = [&](double py, double px, double dist, double half) -> double {
      if (dist - 0.71 > half) return 0.0;
      if (dist + 0.71 <= half) return 1.0;
      int in = 0;
      for (int a = 0; a < kSub; ++a)
        for (int b = 0; b < kSub; ++b)
          in += segment_dist2(py + (a + 0.5) / kSub - 0.5, px + (b + 0.5) / kSub - 0.5, ay, ax, by, bx) <= half * half;
      return double(in) / (kSub * kSub);
    };
    for (int i = 0; i < q.h; ++i)
      for (int j = 0; j < q.w; ++j) {
        const double py = q.y0 + i, px = q.x0 + j;
        const double dist = std::sqrt(segment_dist2(py, px, ay, ax, by, bx));
        q.line[size_t(i) * q.w + j] = float(contrast * coverage(py, px, dist, half_line_));
        q.mask[size_t(i) * q.w + j] = float(coverage(py, px, dist, half_mask_));
      }
    return q;
  }

  void draw(Grid& image, const Patch& q) const {
    for (int i = 0; i < q.h; ++i)
      for (int j = 0; j < q.w; ++j)
        image.at(q.y0 + i, q.x0 + j) = std::max(image.at(q.y0 + i, q.x0 + j), q.line[size_t(i) * q.w + j]);
  }
  void occupy(const Patch& q) {
    for (int i = 0; i < q.h; ++i)
      for (int j = 0; j < q.w; ++j)
        mask_.at(q.y0 + i, q.x0 + j) = std::max(mask_.at(q.y0 + i, q.x0 + j), q.mask[size_t(i) * q.w + j]);
  }
  bool overlaps(const Patch& q) const {
    for (int i = 0; i < q.h; ++i)
      for (int j = 0; j < q.w; ++j)
        if (mask_.at(q.y0 + i, q.x0 + j) + q.mask[size_t(i) * q.w + j] >= 1.8f) return true;
    return false;
  }

  // A uniform tail among the pixels where a paddle along theta would touch no occupied (> 0.3) pixel
  // of `lined`. Random probing first (uniform over the free set all the same), a full scan when the
  // image is crowded; false when no pixel is free.
  bool sample_tail(const Grid& lined, double theta, Point& tail) {
    const int R = p_.paddle_length + static_cast<int>(std::ceil(p_.thickness)) + m_;
    Patch s = paddle({R, R}, theta, 1.0, false);
    std::vector<Point> offsets;  // the paddle's fully covered pixels, relative to its tail
    for (int i = 0; i < s.h; ++i)
      for (int j = 0; j < s.w; ++j)
        if (s.mask[size_t(i) * s.w + j] >= 0.999f) offsets.push_back({i - R, j - R});
    auto free_at = [&](int y, int x) {
      for (auto o : offsets) {
        int yy = y + o.y, xx = x + o.x;
        if (lined.inside(yy, xx) && lined.at(yy, xx) > 0.3f) return false;
      }
      return true;
    };
    for (int probe = 0; probe < 64; ++probe) {
      int y = static_cast<int>(rng_.below(n_)), x = static_cast<int>(rng_.below(n_));
      if (free_at(y, x)) {
        tail = {y, x};
        return true;
      }
    }
    std::vector<Point> avail;
    for (int y = 0; y < n_; ++y)
      for (int x = 0; x < n_; ++x)
        if (free_at(y, x)) avail.push_back({y, x});
    if (avail.empty()) return false;
    tail = avail[rng_.below(avail.size())];
    return true;
  }

  // The first paddle of a contour at `tail`, if its head and the pivot behind it are in the image.
  bool place_seed(Point tail, double theta, double contrast, Snake& s) const {
    Point head = translate(tail, theta, p_.paddle_length);
    Point pivot = translate(head, flip(theta), p_.paddle_length + m_);
    if (!mask_.inside(head.y, head.x) || !mask_.inside(pivot.y, pivot.x)) return false;
    s.last = paddle(tail, theta, contrast);
    s.pivot = pivot;
    s.orientation = theta;
    s.head = head;
    return true;
  }

  // A distractor contour: a seed paddle on a free spot, then segments - 1 extensions.
  bool snake(Grid& image, int segments, double contrast) {
    int free = 0;
    for (float v : mask_.v) free += v <= 0.3f;
    if (free < 0.01 * n_ * n_) return false;  // the original's stop_with_availability
    Grid lined = mask_;
    for (int k = 0; k < n_; ++k) lined.at(0, k) = lined.at(n_ - 1, k) = lined.at(k, 0) = lined.at(k, n_ - 1) = 1;
    Snake s;
    bool ok = false;
    for (int trial = 0; trial <= p_.max_paddle_retrial && !ok; ++trial) {
      double th = rng_.range(-180, 179) * kPi / 180;
      Point tail;
      if (!sample_tail(lined, th, tail)) return false;
      ok = place_seed(tail, th, contrast, s);
    }
    if (!ok) return false;
    draw(image, s.last);
    for (int seg = 0; seg + 1 < segments; ++seg)
      if (!extend(image, s, contrast)) return false;
    occupy(s.last);
    return true;
  }

  // The next paddle: its head on a circle of radius length + margin around the next pivot, weighted by
  // cos(min(|turn| * continuity, pi/2))^2 times the free space there; accepted only where it does not
  // overlap earlier paddles (the mask lags one paddle so consecutive paddles of a contour may touch).
  bool extend(Grid& image, Snake& s, double contrast) {
    Point pivot = translate(s.pivot, s.orientation, p_.paddle_length + 2 * m_);
    const double r = p_.paddle_length + m_;
    const double step = 360.0 / (2 * r * kPi);
    std::vector<Point> pts;
    for (int k = 0; k * step < 360.0; ++k) {
      double a = k * step * kPi / 180;
      double y = pivot.y + r * std::sin(a), x = pivot.x + r * std::cos(a);
      if (y < 0 || x < 0 || y >= n_ || x >= n_) continue;
      pts.push_back({static_cast<int>(y), static_cast<int>(x)});
    }
    std::sort(pts.begin(), pts.end(), [](Point a, Point b) { return a.y != b.y ? a.y < b.y : a.x < b.x; });
    pts.erase(std::unique(pts.begin(), pts.end(), [](Point a, Point b) { return a.y == b.y && a.x == b.x; }),
              pts.end());
    if (pts.empty()) return false;
    std::vector<double> cmf(pts.size()), orient(pts.size());
    double total = 0;
    for (size_t i = 0; i < pts.size(); ++i) {
      orient[i] = std::atan2(double(pts[i].y - pivot.y), double(pts[i].x - pivot.x));
      double d = std::abs(orient[i] - s.orientation);
      d = std::min(std::min(d, 2 * kPi - d) * p_.continuity, kPi / 2);
      double w = std::max(std::cos(d), 0.0);
      total += (1.0 - dilated(pts[i])) * w * w;
      cmf[i] = total;
    }
    if (total < 1e-4) return false;
    for (int trial = 0; trial <= p_.max_paddle_retrial; ++trial) {
      double u = rng_.uniform() * total;
      size_t i = std::upper_bound(cmf.begin(), cmf.end(), u) - cmf.begin();
      i = std::min(i, pts.size() - 1);
      Patch q = paddle(pts[i], flip(orient[i]), contrast);
      if (overlaps(q)) continue;
      draw(image, q);
      occupy(s.last);
      s.last = std::move(q);
      s.pivot = pivot;
      s.orientation = orient[i];
      s.head = pts[i];
      return true;
    }
    return false;
  }

  // The mask's maximum over a disk of radius margin around c.
  float dilated(Point c) const {
    float best = 0;
    for (int dy = -m_; dy <= m_; ++dy)
      for (int dx = -m_; dx <= m_; ++dx)
        if (dy * dy + dx * dx <= m_ * m_ && mask_.inside(c.y + dy, c.x + dx))
          best = std::max(best, mask_.at(c.y + dy, c.x + dx));
    return best;
  }

  const PathfinderParams& p_;
  Rng& rng_;
  int n_, m_;
  Grid mask_;
  double half_line_, half_mask_;
};

// Antialiased disk of the given radius at tip, intensity in [0, 1].
void draw_marker(std::vector<float>& img, int n, Tip tip, double radius) {
  const int R = static_cast<int>(std::ceil(radius)) + 1;
  for (int y = std::max(0, tip[0] - R); y <= std::min(n - 1, tip[0] + R); ++y)
    for (int x = std::max(0, tip[1] - R); x <= std::min(n - 1, tip[1] + R); ++x) {
      int in = 0;
      for (int a = 0; a < kSub; ++a)
        for (int b = 0; b < kSub; ++b) {
          double dy = y + (a + 0.5) / kSub - 0.5 - tip[0], dx = x + (b + 0.5) / kSub - 0.5 - tip[1];
          in += dy * dy + dx * dx <= radius * radius;
        }
      float v = float(in) / (kSub * kSub);
      img[size_t(y) * n + x] = std::max(img[size_t(y) * n + x], v);
    }
}

}  // namespace

PathfinderScene draw_pathfinder_scene(const PathfinderParams& p, uint64_t seed) {
  Rng rng(seed);
  PathfinderScene s;
  s.side = p.side;
  s.margin = p.margins[rng.below(p.margins.size())];
  Painter painter(p, rng, s.margin);
  Grid t0, t1;
  // The original retries the two targets until they fit; a bound turns impossible parameters into an
  // error instead of a hang.
  int tries = 0;
  while (!painter.two_targets(t0, t1, s.origin_tips, s.terminal_tips))
    if (++tries == 10000) throw DataError("Pathfinder generator: could not place the two target contours");
  Grid image(p.side);
  for (size_t i = 0; i < image.v.size(); ++i) image.v[i] = std::max(t0.v[i], t1.v[i]);
  s.targets = image.v;
  painter.distractors(image, p.distractors, p.distractor_length);
  s.image = std::move(image.v);
  return s;
}

std::vector<uint8_t> compose_pathfinder(const PathfinderScene& s, const PathfinderParams& p, int label, int first) {
  const int n = s.side;
  std::vector<float> img = s.image;
  draw_marker(img, n, s.origin_tips[first], p.marker_radius);
  draw_marker(img, n, s.terminal_tips[label ? first : 1 - first], p.marker_radius);
  float top = *std::max_element(img.begin(), img.end());
  std::vector<uint8_t> out(img.size());
  for (size_t i = 0; i < img.size(); ++i)
    out[i] = static_cast<uint8_t>(std::lround(std::clamp(img[i] / top, 0.0f, 1.0f) * 255));
  return out;
}

PathfinderSample make_pathfinder_sample(const PathfinderParams& p, uint64_t seed, uint64_t index) {
  const uint64_t s = derive_seed(seed, index);
  PathfinderScene scene = draw_pathfinder_scene(p, derive_seed(s, 0));
  Rng coin(derive_seed(s, 1));
  PathfinderSample out;
  out.label = static_cast<int>(coin.below(2));
  out.first = static_cast<int>(coin.below(2));
  out.margin = scene.margin;
  out.pixels = compose_pathfinder(scene, p, out.label, out.first);
  return out;
}

std::array<int64_t, 2> generate_pathfinder(const std::string& out_dir, const PathfinderParams& p,
                                           const PathfinderGenOptions& o,
                                           const std::function<void(int64_t, int64_t)>& progress) {
  if (o.count < 1 || o.per_batch < 1) throw DataError("Pathfinder generator: count and per_batch must be positive");
  const int threads = worker_threads(o.threads);
  const int64_t batches = (o.count + o.per_batch - 1) / o.per_batch;
  fs::create_directories(fs::path(out_dir) / "metadata");
  std::array<int64_t, 2> labels{0, 0};
  char num[64];
  auto fmt = [&](double v) {
    std::snprintf(num, sizeof num, "%g", v);
    return std::string(num);
  };
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t first = b * o.per_batch, n = std::min(o.per_batch, o.count - first);
    const std::string sub = "imgs/" + std::to_string(b);
    fs::create_directories(fs::path(out_dir) / sub);
    std::vector<int> label(n), margin(n);
    std::vector<std::string> errors(threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        try {
          for (int64_t k = t; k < n; k += threads) {
            PathfinderSample s = make_pathfinder_sample(p, o.seed, uint64_t(first + k));
            write_png((fs::path(out_dir) / sub / ("sample_" + std::to_string(k) + ".png")).string(), s.pixels.data(),
                      p.side, p.side, 1);
            label[k] = s.label;
            margin[k] = s.margin;
          }
        } catch (const std::exception& e) {
          errors[t] = e.what();
        }
      });
    for (auto& th : pool) th.join();
    for (const auto& e : errors)
      if (!e.empty()) throw DataError(e);
    std::string meta_path = (fs::path(out_dir) / "metadata" / (std::to_string(b) + ".npy")).string();
    std::ofstream meta(meta_path, std::ios::binary);
    for (int64_t k = 0; k < n; ++k) {
      meta << sub << " sample_" << k << ".png " << k << ' ' << label[k] << ' ' << fmt(p.continuity) << ' '
           << p.contour_length << ' ' << p.distractor_length << ' ' << p.paddle_length << ' ' << fmt(p.thickness) << ' '
           << margin[k] << " 1\n";
      ++labels[label[k]];
    }
    meta.close();
    if (!meta) throw DataError("Pathfinder generator: cannot write " + meta_path);
    if (progress) progress(first + n, o.count);
  }
  return labels;
}

void write_contact_sheet(const std::string& path, const std::vector<std::vector<uint8_t>>& images,
                         const std::vector<int>& labels, int side, int columns, int scale) {
  const int count = static_cast<int>(images.size());
  if (count == 0) throw DataError("contact sheet: no images");
  const int rows = (count + columns - 1) / columns, gap = 2 * scale, bar = 2 * scale;
  const int cell_w = side * scale + gap, cell_h = side * scale + bar + gap;
  const int W = columns * cell_w + gap, H = rows * cell_h + gap;
  std::vector<uint8_t> sheet(size_t(W) * H, 40);
  for (int k = 0; k < count; ++k) {
    int ox = gap + (k % columns) * cell_w, oy = gap + (k / columns) * cell_h;
    for (int y = 0; y < side * scale; ++y)
      for (int x = 0; x < side * scale; ++x)
        sheet[size_t(oy + y) * W + ox + x] = images[k][size_t(y / scale) * side + x / scale];
    uint8_t shade = labels[k] ? 255 : 110;
    for (int y = 0; y < bar; ++y)
      for (int x = 0; x < side * scale; ++x) sheet[size_t(oy + side * scale + y) * W + ox + x] = shade;
  }
  write_png(path, sheet.data(), W, H, 1);
}

}  // namespace lasgrad::data
