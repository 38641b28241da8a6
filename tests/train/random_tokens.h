// A data set of random sequences for trainer tests: n examples drawn from `seed`, each of
// min_length..info.max_length symbols in [lowest, vocab), labelled by `label_of` on the first document.
// vocab is info.vocab_size for token tasks and 256 for pixel tasks (info.pixels), whose pixel values are
// symbol / 255; pair tasks (info.pair) draw a second document the same way.
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
    const int32_t vocab = info.pixels ? 256 : info.vocab_size;
    auto draw = [&] {
      std::vector<int32_t> t(min_length + rng.below(info.max_length - min_length + 1));
      for (auto& x : t) x = lowest + static_cast<int32_t>(rng.below(vocab - lowest));
      return t;
    };
    for (int64_t i = 0; i < n; ++i) {
      std::vector<int32_t> t = draw();
      labels_.push_back(label_of(t));
      docs_[0].push_back(std::move(t));
      if (info.pair) docs_[1].push_back(draw());
    }
  }
  int64_t size() const override { return static_cast<int64_t>(docs_[0].size()); }
  int32_t label(int64_t i) const override { return labels_[i]; }
  int64_t length(int64_t i, int doc) const override { return static_cast<int64_t>(docs_[doc][i].size()); }
  void tokens(int64_t i, int doc, int32_t* out) const override {
    std::copy(docs_[doc][i].begin(), docs_[doc][i].end(), out);
  }
  void pixels(int64_t i, float* out) const override {
    for (int32_t s : docs_[0][i]) *out++ = static_cast<float>(s) / 255.0f;
  }
  std::string text(int64_t, int) const override { return ""; }
  std::vector<uint8_t> image_bytes(int64_t) const override { return {}; }

 private:
  std::vector<std::vector<int32_t>> docs_[2];
  std::vector<int32_t> labels_;
};

}  // namespace lasgrad::testing
