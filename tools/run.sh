#!/usr/bin/env bash
# The main job, from a fresh machine: install what is missing, build Release, train, report.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
lasgrad_require "${LASGRAD_BUILD_PACKAGES[@]}"

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLASGRAD_TESTS=OFF >/dev/null
cmake --build build -j"$(lasgrad_jobs)" --target lasgrad
./build/lasgrad demo "$@"
