// The data interface the trainer consumes: one Dataset per task and split, read from the original
// files, and a BatchIterator that cuts it into padded batches of plain host data.
//
//   data::Options opt;                                   // task length, pixel scaling, ...
//   auto train = data::open_task("listops", "/data/listops-1000", data::Split::Train, opt);
//   data::BatchIterator it(*train, {.batch_size = 32, .seed = 1});
//   for (int64_t epoch = 0; epoch < 10; ++epoch) {
//     it.start_epoch(epoch);                             // seeded shuffle, new order each epoch
//     data::Batch b;
//     while (it.next(b)) { /* b.tokens is [b.size * b.length], b.labels is [b.size] */ }
//   }
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/names.h"

namespace lasgrad::data {

enum class Split { Train, Val, Test };
Split parse_split(const std::string& s);  // "train" | "val" | "test"; throws DataError otherwise
const char* split_name(Split s);

// What a model needs to know about a task.
struct TaskInfo {
  std::string name;  // the task (TaskSpec::name)
  int num_classes = 0;
  int vocab_size = 0;      // token ids are in [0, vocab_size); 0 when the input is pixel values
  int64_t max_length = 0;  // the task length: no example is longer
  bool pixels = false;     // input is pixel values (Batch::pixels) rather than token ids (Batch::tokens)
  bool pair = false;       // two documents per example (retrieval): Batch::tokens2/lengths2 are filled
  int image_side = 0;      // image tasks: the side of the square image (length = side * side); else 0
};

// One batch, all plain host data, rows in the order of `index`. R = size, T = length.
struct Batch {
  int64_t size = 0;               // R: examples in the batch (the last batch of an epoch may be smaller)
  int64_t length = 0;             // T: padded length of every row
  std::vector<int32_t> tokens;    // [R*T] row-major token ids, 0 = padding; empty for pixel input
  std::vector<float> pixels;      // [R*T] row-major pixel values, 0 past each row's length; empty for token input
  std::vector<int32_t> lengths;   // [R] real length of each row (<= T)
  std::vector<int32_t> labels;    // [R] class in [0, num_classes)
  std::vector<int32_t> tokens2;   // [R*T] retrieval only: the second document, padded to the same T
  std::vector<int32_t> lengths2;  // [R] retrieval only
  std::vector<int64_t> index;     // [R] each row's example index in the Dataset
};

enum class Pixels {
  Unit,  // value / 255 in [0, 1], then (v - mean) / std with Options::pixel_mean/std (the S4 code base)
  Raw,   // 0..255 as floats
};
inline constexpr EnumName<Pixels> kPixelNames[] = {{Pixels::Unit, "unit"}, {Pixels::Raw, "raw"}};

// How open_task reads a task. Defaults reproduce the LRA set-up.
struct Options {
  int64_t max_length = 0;   // 0: the task's length (ListOps 2000, Text 4096, Retrieval 4000 per document)
  uint64_t split_seed = 0;  // seeds the held-out validation splits (CIFAR, Pathfinder, MNIST)
  // Pixel tasks (image, pathfinder, pathx, smnist, psmnist, sfmnist):
  bool pixel_tokens = false;  // give pixels as token ids 0..255 (vocabulary 256, as the LRA transformer)
  Pixels pixel_scale = Pixels::Unit;
  float pixel_mean = 0.0f, pixel_std = 1.0f;  // applied after Unit scaling only
  // Pathfinder / Path-X:
  std::string difficulty = "curv_contour_length_14";  // or curv_baseline, curv_contour_length_9
  int resolution = 0;                                 // 0: 32 for pathfinder, 128 for pathx
  bool skip_missing = false;  // a PNG listed in the metadata but absent is skipped (counted) instead of an error
  // psMNIST:
  std::string permutation = "bitreversal";  // or "random" (seeded by permutation_seed)
  uint64_t permutation_seed = 0;
  // ListOps: a word outside the vocabulary is an error; false maps it to the unknown id (counted).
  bool strict_vocab = true;
};

// One split of one task, read into memory compactly (one byte per step) or, for Pathfinder, decoded
// from its PNG on demand. Thread-safe for concurrent reads.
class Dataset {
 public:
  virtual ~Dataset() = default;
  const TaskInfo& info() const { return info_; }
  int num_classes() const { return info_.num_classes; }
  int vocab_size() const { return info_.vocab_size; }
  int64_t max_length() const { return info_.max_length; }

  virtual int64_t size() const = 0;
  virtual int32_t label(int64_t i) const = 0;
  // Real length of example i's document `doc` (0, or 1 for retrieval's second document).
  virtual int64_t length(int64_t i, int doc = 0) const = 0;
  // Writes example i's document as token ids into out[0 .. length(i, doc)).
  virtual void tokens(int64_t i, int doc, int32_t* out) const = 0;
  // Writes example i as pixel values into out[0 .. length(i)) (pixel tasks only).
  virtual void pixels(int64_t i, float* out) const = 0;
  // Example i's document decoded for people: the text, or "" for pixel tasks (see image_bytes).
  virtual std::string text(int64_t i, int doc = 0) const = 0;
  // Pixel tasks: example i's image as raw 0..255 bytes in reading order (before any permutation).
  virtual std::vector<uint8_t> image_bytes(int64_t i) const = 0;
  // Token tasks: example i's tokens as people read them, one string per position (ListOps words,
  // characters); empty for pixel tasks.
  virtual std::vector<std::string> token_texts(int64_t i, int doc = 0) const { return {}; }
  // Pixel tasks: the pixel (in reading order) that each sequence step shows: the identity, except
  // psMNIST's permutation. Folds a step's weight back onto the image.
  virtual std::vector<int32_t> pixel_order() const;

  // Things the loader did that a user should know: skipped files, truncations, mapped unknown words.
  const std::vector<std::string>& notes() const { return notes_; }
  // Fills `out` with the examples `rows`, padded to the longest of them or to max_length().
  void make_batch(std::span<const int64_t> rows, bool pad_to_max, Batch& out) const;

 protected:
  TaskInfo info_;
  std::vector<std::string> notes_;
};

// The task registry: the one place a task is declared. Every list of tasks (the flags' help, the
// settings, the presets, the loaders' dispatch) reads it; train's preset table must hold a row for each
// (tests/train/test_config.cpp fails otherwise).
struct TaskSpec {
  const char* name;  // "listops", "text", "retrieval", "image", "pathfinder", "pathx", "smnist", "psmnist", "sfmnist"
  int classes;
  int64_t length;  // the task's sequence length (per document for retrieval; side * side for images)
  int vocab;       // token ids are in [0, vocab); 0 for pixel input
  // Opens one split (see open_task).
  std::unique_ptr<Dataset> (*open)(const TaskSpec& spec, const std::string& dir, Split split, const Options& o);
};
const std::vector<TaskSpec>& tasks();
// The entry named `name`; throws DataError listing the tasks otherwise.
const TaskSpec& task_spec(const std::string& name);
// "listops, text, retrieval, image, pathfinder, pathx, smnist, psmnist or sfmnist", for help texts and messages.
std::string task_list();

// Opens one split of a task from `dir`. dir may be the task's own folder or a parent holding the
// release's layout (e.g. lra_release/ for listops-1000/, tsv_data/, pathfinder32/...). Throws DataError
// for an unknown task, a missing folder or file, or bad contents.
std::unique_ptr<Dataset> open_task(const std::string& task, const std::string& dir, Split split,
                                   const Options& options = {});

struct BatchOptions {
  int64_t batch_size = 32;
  bool shuffle = true;      // seeded permutation per epoch; false keeps file order
  uint64_t seed = 0;        // with the epoch number, fixes the order
  bool pad_to_max = false;  // pad to the task length rather than to the batch's longest example
  bool drop_last = false;   // drop a last batch smaller than batch_size
};

// Cuts a Dataset into batches, one epoch at a time.
class BatchIterator {
 public:
  BatchIterator(const Dataset& data, BatchOptions options);
  // Starts epoch e: the order is a permutation seeded by (seed, e), or file order without shuffle.
  void start_epoch(int64_t e);
  // Fills `out` with the next batch (reusing its buffers); false when the epoch is over.
  bool next(Batch& out);
  int64_t batches_per_epoch() const;

 private:
  const Dataset& data_;
  BatchOptions opt_;
  std::vector<int64_t> order_;
  int64_t pos_ = 0;
};

// A deterministic permutation of [0, n) from a seed (also used for the validation splits).
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);
// psMNIST's bit-reversal order of 784 steps: the bit reversals of 0..1023 (10 bits) that are < 784, in
// order, as in the S4 code base. perm[t] is the pixel shown at step t.
std::vector<int32_t> bitreversal_permutation(int n);

// How many worker threads to use for `asked`: every core this process may run on for 0, and for more
// than that (threads past the cores only wait for each other); else `asked`.
int worker_threads(int64_t asked);

}  // namespace lasgrad::data
