#!/usr/bin/env bash
# Builds everything a GPU check needs here and packs it into one folder that runs on a bare GPU machine:
# one with the NVIDIA driver, the CUDA 13 runtime and cuBLAS, and python3 with a CUDA build of PyTorch,
# but no Eigen, doctest, Cairo, toml++, CLI11 or nlohmann-json, and no network.
#   tools/gpu_bundle.sh DIR
# Then, on the GPU machine: DIR/gpu_check.sh (tools/gpu_check.sh says what it runs).
#   DIR/bin/         test_cuda, bench_cuda and lasgrad, built with CUDA (portable host code, sm 80 and 90)
#   DIR/lib/         every shared library they load except glibc, libstdc++, libgcc, the driver and
#                    cuBLAS, which the GPU machine's own copies serve (SYSTEM_LIBS.txt lists them)
#   DIR/tools/bench/bench_cuda.sh, DIR/tests/reference/make_fixture.py: the benchmark and its PyTorch side
#   DIR/data/pathx/  a small generated Path-X set (200 images of 128 x 128, L = 16384)
# The programs are built without MPI (a GPU check runs one process): fewer libraries to carry.
# Before it ends it checks with ldd that every library resolves from DIR/lib or is one of those the GPU
# machine provides, and exits 1 otherwise.
# Environment: LASGRAD_BUNDLE_BUILD (build folder, default build-bundle).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# = 1 ] || { echo "usage: tools/gpu_bundle.sh DIR" >&2; exit 2; }
out=$1
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
  echo "gpu_bundle: $out exists and is not empty; give a new folder (nothing was written)" >&2
  exit 1
fi
source tools/deps.sh
lasgrad_require "${LASGRAD_BUILD_PACKAGES[@]}"
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] ||
  { echo "gpu_bundle: no nvcc here (CUDA 13 with cuBLAS is needed to build for the GPU)" >&2; exit 1; }
build=${LASGRAD_BUNDLE_BUILD:-build-bundle}
programs=(tests/cuda/test_cuda bench_cuda lasgrad)

echo "== building ${programs[*]##*/} in $build (CUDA, sm 80 and 90, portable host code, no MPI)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DLASGRAD_CUDA=ON -DLASGRAD_NATIVE=OFF -DLASGRAD_TESTS=ON \
  -DCMAKE_CUDA_ARCHITECTURES="80;90" -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON >/dev/null
cmake --build "$build" -j"$(lasgrad_jobs)" --target test_cuda bench_cuda lasgrad >/dev/null

# The libraries the GPU machine provides itself: glibc's, the C++ runtime, the driver and cuBLAS.
provided='^(linux-vdso|ld-linux|libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libstdc\+\+|libgcc_s|libcuda|libcublas|libcublasLt)\.so'
mkdir -p "$out/bin" "$out/lib" "$out/tools/bench" "$out/tests/reference" "$out/data"
out=$(cd "$out" && pwd)  # absolute: ldd names the libraries it finds by the path it was given
for p in "${programs[@]}"; do
  install -m 755 -s "$build/$p" "$out/bin/"
  ldd "$build/$p" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | while read -r name path; do
    if [[ "$name" =~ $provided ]]; then
      echo "$name"
    elif [ ! -e "$out/lib/$name" ]; then
      cp -L "$path" "$out/lib/$name"
      chmod 644 "$out/lib/$name"
      strip --strip-unneeded "$out/lib/$name" 2>/dev/null || true
    fi
  done
done | sort -u > "$out/lib/SYSTEM_LIBS.txt"
cp tools/gpu_check.sh "$out/"
cp tools/bench/bench_cuda.sh "$out/tools/bench/"
cp tests/reference/make_fixture.py "$out/tests/reference/"
echo "== generating a small Path-X set"
"$out/bin/lasgrad" gen pathfinder --out "$out/data/pathx" --size 128 --count 200 --seed 0 --quiet
git rev-parse HEAD > "$out/COMMIT" 2>/dev/null || echo unknown > "$out/COMMIT"

# Every library from the bundle, or one the GPU machine provides.
bad=0
for p in "$out"/bin/*; do
  while read -r name arrow path _; do
    [ "$arrow" = "=>" ] || continue
    if [ "$path" = "not" ]; then
      echo "gpu_bundle: $(basename "$p") needs $name, found nowhere" >&2
      bad=1
    elif [[ "$path" != "$out/lib/"* ]] && ! [[ "$name" =~ $provided ]]; then
      echo "gpu_bundle: $(basename "$p") loads $name from $path, outside the bundle" >&2
      bad=1
    fi
  done < <(LD_LIBRARY_PATH="$out/lib" ldd "$p")
done
[ "$bad" = 0 ] || exit 1
echo "gpu_bundle: $out ($(du -sh "$out" | cut -f1); $(ls "$out/lib" | grep -c '\.so') libraries carried; the GPU machine" \
  "provides $(tr '\n' ' ' < "$out/lib/SYSTEM_LIBS.txt"))"
echo "on the GPU machine: $out/gpu_check.sh [LOGDIR]"
