// The Pathfinder generator, a port of the snake generator of Linsley et al. (2018) as used for the LRA
// Pathfinder and Path-X images (docs/data.md): two long target contours and short distractor contours
// made of short antialiased line segments ("paddles"), and two round markers that sit on the two ends
// of one target (label 1) or on ends of different targets (label 0).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lasgrad::data {

struct PathfinderParams {
  int side = 32;                   // image is side x side
  int padding = 1;                 // border band no contour may enter
  int aa = 2;                      // antialiasing: paddles are resolved at aa times the resolution
  std::vector<int> margins = {1};  // paddle occupancy margin, drawn per image from this list
  int seed_distance = 7;           // the two targets start this far apart, 2x this away from the border
  double marker_radius = 1.5;
  int paddle_length = 2;
  double thickness = 0.5;
  double continuity = 1.0;  // higher: straighter contours
  int contour_length = 14;  // segments per target contour (the difficulty)
  int distractor_length = 4;
  int distractors = 20;
  double snake_contrast = 2.0, paddle_contrast = 0.75;
  int max_paddle_retrial = 2, max_distractor_retrial = 4;
  std::string difficulty = "curv_contour_length_14";
};

// The release's parameters for a size (32, 64 or 128 = Path-X) and difficulty (curv_baseline = 6
// segments, curv_contour_length_9, curv_contour_length_14). Throws DataError for others.
PathfinderParams pathfinder_params(int side, const std::string& difficulty);

using Tip = std::array<int, 2>;  // (row, column)

// An image before its markers: contours only, and where the target contours start and end.
struct PathfinderScene {
  int side = 0, margin = 0;
  std::vector<float> image;            // [side*side] max of all contours, unnormalised
  std::vector<float> targets;          // [side*side] the two target contours alone
  std::array<Tip, 2> origin_tips{};    // start of target 0 and target 1
  std::array<Tip, 2> terminal_tips{};  // end of target 0 and target 1
};

// Draws the contours of one image from `seed` (deterministic).
PathfinderScene draw_pathfinder_scene(const PathfinderParams& p, uint64_t seed);

// The final 8-bit image: markers on the origin tip of target `first` and on the terminal tip of the same
// target (label 1) or of the other (label 0), then stretched so the brightest pixel is 255.
std::vector<uint8_t> compose_pathfinder(const PathfinderScene& s, const PathfinderParams& p, int label, int first);

struct PathfinderSample {
  std::vector<uint8_t> pixels;  // [side*side]
  int label = 0, first = 0, margin = 0;
};
// Sample `index` of a data set generated with `seed`: its scene, then a fair coin for the label and
// one for which target carries the origin marker.
PathfinderSample make_pathfinder_sample(const PathfinderParams& p, uint64_t seed, uint64_t index);

struct PathfinderGenOptions {
  uint64_t seed = 0;
  int64_t count = 1000;
  int64_t per_batch = 1000;  // images per imgs/<b>/ folder and metadata/<b>.npy file
  int threads = 0;           // 0 or more than the cores: all cores; the output does not depend on it
};

// Writes out_dir/imgs/<b>/sample_<k>.png and out_dir/metadata/<b>.npy (text lines
// "imgs/<b> sample_<k>.png <k> <label> <continuity> <contour_length> <distractor_length> <paddle_length>
// <thickness> <margin> 1"), exactly the release's layout. Returns the label counts.
std::array<int64_t, 2> generate_pathfinder(const std::string& out_dir, const PathfinderParams& p,
                                           const PathfinderGenOptions& o,
                                           const std::function<void(int64_t, int64_t)>& progress = {});

// A grid of images (each side x side, `labels` shown as a bar under each: white = 1, gray = 0), scaled
// up `scale` times, written as one 8-bit PNG.
void write_contact_sheet(const std::string& path, const std::vector<std::vector<uint8_t>>& images,
                         const std::vector<int>& labels, int side, int columns, int scale);

}  // namespace lasgrad::data
