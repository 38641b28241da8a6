// The fuzz targets under the ordinary compiler: every seed, then a few thousand deterministic mutations
// of each (bit flips, byte changes, cuts, splices). Only DataError may come out; the libFuzzer runs in
// tools/fuzz.sh explore much further.
#include "engine/rng.h"
#include "tests/data/fixtures.h"
#include "tests/fuzz/targets.h"

using namespace lasgrad;

static std::string mutate(std::string s, lasgrad::Rng& rng) {
  const int edits = 1 + static_cast<int>(rng.below(4));
  for (int e = 0; e < edits && !s.empty(); ++e) {
    size_t at = rng.below(s.size());
    switch (rng.below(5)) {
      case 0: s[at] ^= static_cast<char>(1 << rng.below(8)); break;
      case 1: s[at] = static_cast<char>(rng.below(256)); break;
      case 2: s.resize(at); break;
      case 3: s.insert(at, std::string(1 + rng.below(8), static_cast<char>(rng.below(256)))); break;
      default: s.erase(at, 1 + rng.below(16)); break;
    }
  }
  return s;
}

TEST_CASE("fuzz targets survive their seeds and mutations of them") {
  for (const auto& t : fuzz::targets()) {
    INFO("target " << t.name);
    lasgrad::Rng rng(42);
    auto seeds = t.seeds();
    REQUIRE(!seeds.empty());
    for (const auto& s : seeds) CHECK_NOTHROW(t.run(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
    for (int k = 0; k < 3000; ++k) {
      std::string in = mutate(seeds[rng.below(seeds.size())], rng);
      CHECK_NOTHROW(t.run(reinterpret_cast<const uint8_t*>(in.data()), in.size()));
    }
    CHECK_NOTHROW(t.run(nullptr, 0));
  }
}
