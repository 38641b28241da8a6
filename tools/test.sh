#!/usr/bin/env bash
# Checks the formatting (.clang-format), then builds and runs the whole test suite: a Release build, a
# short libFuzzer run over the data parsers, then the same suite under AddressSanitizer and
# UndefinedBehaviorSanitizer. Exits non-zero on any failure. LASGRAD_SANITIZE=0 skips the sanitizer
# run, LASGRAD_FUZZ_SECONDS sets the fuzz time per target (default 10; 0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
lasgrad_require "${LASGRAD_BUILD_PACKAGES[@]}" "${LASGRAD_TEST_PACKAGES[@]}"
jobs=$(lasgrad_jobs)
export LASGRAD_REQUIRE_BROWSER=1  # the report test must not skip here: Chromium was just installed

echo "== Formatting (.clang-format)"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z '*.cpp' '*.h' '*.cu' '*.cuh'
else  # an unpacked copy without .git
  find engine layers models data train tools tests \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print0
fi | xargs -0 clang-format --dry-run --Werror

echo "== Release build and tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLASGRAD_TESTS=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

fuzz_seconds=${LASGRAD_FUZZ_SECONDS:-10}
if [ "$fuzz_seconds" != "0" ]; then
  echo "== libFuzzer: each data parser for ${fuzz_seconds}s"
  tools/fuzz.sh "$fuzz_seconds"
fi

if [ "${LASGRAD_SANITIZE:-1}" != "0" ]; then
  # The test executables (and the lasgrad program the tools tests drive), no CUDA: without a GPU its
  # tests skip, so sanitizing them adds nothing. tests/lsan.supp lists the libraries' own caches.
  echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DLASGRAD_SANITIZE=ON -DLASGRAD_CUDA=OFF -DLASGRAD_TESTS=ON >/dev/null
  cmake --build build-asan -j"$jobs" --target lasgrad_all_tests
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs"
fi

