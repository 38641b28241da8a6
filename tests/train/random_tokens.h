// A data set of random token sequences for trainer tests: n sequences drawn from `seed`, each of
// min_length..info.max_length tokens in [lowest, info.vocab_size), labelled by `label_of`.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "engine/rng.h"

namespace lasgrad::testing {

class RandomTokens : public data::Dataset {
 public:
  RandomTokens(const data::TaskInfo& info, int64_t n, uint64_t seed, int64_t min_length, int32_t lowest,
               const std::function<int32_t(const std::vector<int32_t>&)>& label_of) {
    info_ = info;
    Rng rng(seed);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<int32_t> t(min_length + rng.below(info.max_length - min_length + 1));
      for (auto& x : t) x = lowest + static_cast<int32_t>(rng.below(info.vocab_size - lowest));
      labels_.push_back(label_of(t));
      seqs_.push_back(std::move(t));
    }
  }
  int64_t size() const override { return static_cast<int64_t>(seqs_.size()); }
  int32_t label(int64_t i) const override { return labels_[i]; }
  int64_t length(int64_t i, int) const override { return static_cast<int64_t>(seqs_[i].size()); }
  void tokens(int64_t i, int, int32_t* out) const override { std::copy(seqs_[i].begin(), seqs_[i].end(), out); }
  void pixels(int64_t, float*) const override {}
  std::string text(int64_t, int) const override { return ""; }
  std::vector<uint8_t> image_bytes(int64_t) const override { return {}; }

 private:
  std::vector<std::vector<int32_t>> seqs_;
  std::vector<int32_t> labels_;
};

}  // namespace lasgrad::testing
