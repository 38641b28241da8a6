// libFuzzer entry for one target, chosen at build time with -DLASGRAD_FUZZ_TARGET="name"
// (tools/fuzz.sh builds one binary per target). With -DLASGRAD_WRITE_SEEDS it is instead a small
// program writing the targets' seed inputs to DIR/<target>/seed_<k>.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/fuzz/targets.h"

#ifdef LASGRAD_WRITE_SEEDS
int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  for (const auto& t : lasgrad::fuzz::targets()) {
    auto dir = std::filesystem::path(argv[1]) / t.name;
    std::filesystem::create_directories(dir);
    int k = 0;
    for (const auto& s : t.seeds()) std::ofstream(dir / ("seed_" + std::to_string(k++)), std::ios::binary) << s;
  }
  return 0;
}
#else
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const lasgrad::fuzz::Target* target = [] {
    auto* t = lasgrad::fuzz::find_target(LASGRAD_FUZZ_TARGET);
    if (!t) std::abort();
    return t;
  }();
  target->run(data, size);
  return 0;
}
#endif
