#include "data/dataset.h"

#include <sched.h>

#include <algorithm>
#include <thread>

#include "data/error.h"
#include "engine/rng.h"

namespace lasgrad::data {

Split parse_split(const std::string& s) {
  if (s == "train") return Split::Train;
  if (s == "val") return Split::Val;
  if (s == "test") return Split::Test;
  throw DataError("unknown split '" + s + "' (train, val or test)");
}

const char* split_name(Split s) { return s == Split::Train ? "train" : s == Split::Val ? "val" : "test"; }

void Dataset::make_batch(std::span<const int64_t> rows, bool pad_to_max, Batch& out) const {
  const int64_t R = static_cast<int64_t>(rows.size());
  int64_t T = 0;
  if (pad_to_max) {
    T = info_.max_length;
  } else {
    for (int64_t i : rows) {
      T = std::max(T, length(i, 0));
      if (info_.pair) T = std::max(T, length(i, 1));
    }
  }
  out.size = R;
  out.length = T;
  out.index.assign(rows.begin(), rows.end());
  out.lengths.resize(R);
  out.labels.resize(R);
  out.tokens.clear();
  out.pixels.clear();
  out.tokens2.clear();
  out.lengths2.clear();
  if (info_.pixels) {
    out.pixels.assign(R * T, 0.0f);
  } else {
    out.tokens.assign(R * T, 0);
  }
  if (info_.pair) {
    out.tokens2.assign(R * T, 0);
    out.lengths2.resize(R);
  }
  for (int64_t r = 0; r < R; ++r) {
    int64_t i = rows[r];
    out.labels[r] = label(i);
    out.lengths[r] = static_cast<int32_t>(length(i, 0));
    if (info_.pixels) {
      pixels(i, out.pixels.data() + r * T);
    } else {
      tokens(i, 0, out.tokens.data() + r * T);
    }
    if (info_.pair) {
      out.lengths2[r] = static_cast<int32_t>(length(i, 1));
      tokens(i, 1, out.tokens2.data() + r * T);
    }
  }
}

BatchIterator::BatchIterator(const Dataset& data, BatchOptions options) : data_(data), opt_(options) {
  if (opt_.batch_size < 1) throw DataError("batch size must be at least 1");
  start_epoch(0);
}

void BatchIterator::start_epoch(int64_t e) {
  const int64_t n = data_.size();
  if (opt_.shuffle) {
    order_ = seeded_permutation(n, derive_seed(opt_.seed, static_cast<uint64_t>(e)));
  } else {
    order_.resize(n);
    for (int64_t i = 0; i < n; ++i) order_[i] = i;
  }
  pos_ = 0;
}

bool BatchIterator::next(Batch& out) {
  const int64_t n = static_cast<int64_t>(order_.size());
  int64_t k = std::min(opt_.batch_size, n - pos_);
  if (k <= 0 || (opt_.drop_last && k < opt_.batch_size)) return false;
  data_.make_batch(std::span<const int64_t>(order_.data() + pos_, k), opt_.pad_to_max, out);
  pos_ += k;
  return true;
}

int64_t BatchIterator::batches_per_epoch() const {
  const int64_t n = data_.size();
  return opt_.drop_last ? n / opt_.batch_size : (n + opt_.batch_size - 1) / opt_.batch_size;
}

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(n);
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  Rng rng(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[rng.below(static_cast<uint64_t>(i + 1))]);
  return p;
}

std::vector<int32_t> bitreversal_permutation(int n) {
  int bits = 0;
  while ((1 << bits) < n) ++bits;
  std::vector<int32_t> p;
  for (int i = 0; i < (1 << bits); ++i) {
    int r = 0;
    for (int b = 0; b < bits; ++b)
      if (i & (1 << b)) r |= 1 << (bits - 1 - b);
    if (r < n) p.push_back(r);
  }
  return p;
}

std::vector<int32_t> Dataset::pixel_order() const {
  if (!info_.pixels && info_.image_side == 0) return {};
  std::vector<int32_t> order(static_cast<size_t>(info_.max_length));
  for (size_t t = 0; t < order.size(); ++t) order[t] = static_cast<int32_t>(t);
  return order;
}

int worker_threads(int64_t asked) {
  cpu_set_t set;
  int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
  if (cores < 1) cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return asked > 0 && asked < cores ? static_cast<int>(asked) : cores;
}

}  // namespace lasgrad::data
