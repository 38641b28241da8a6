#!/usr/bin/env bash
# The CUDA backend's first run on a GPU, cheapest and most telling check first, with every
# step's log in one folder: build (CUDA on, portable host code), the GPU and driver, test_cuda with the
# skip turned into a failure and synchronous launches, compute-sanitizer (memcheck on the training
# cases, racecheck and synccheck on small attention calls), then tools/bench_cuda.sh.
#   tools/gpu_check.sh [LOGDIR]        (default runs/gpu-check)
# Environment: LASGRAD_GPU_BUILD (build folder, default build-gpu), BENCH_STEPS (default 10; 0 skips it).
# Exits 1 if any step failed; without a GPU it stops after the build, saying so.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=${1:-runs/gpu-check}
build=${LASGRAD_GPU_BUILD:-build-gpu}
mkdir -p "$logs"
failed=0
step() {  # step NAME COMMAND...: runs it with its output in LOGDIR/NAME.log
  local name=$1
  shift
  echo "== $name: $*"
  local start=$SECONDS
  if "$@" >"$logs/$name.log" 2>&1; then
    echo "   ok ($((SECONDS - start)) s)"
  else
    echo "   FAILED (exit $?, $((SECONDS - start)) s); the end of $logs/$name.log:"
    tail -n 15 "$logs/$name.log" | sed 's/^/   | /'
    failed=1
  fi
}
no_skips() { ! grep -q "SKIPPED" "$1"; }

step build bash -c "cmake -S . -B '$build' -DCMAKE_BUILD_TYPE=Release -DLASGRAD_CUDA=ON -DLASGRAD_NATIVE=OFF -DLASGRAD_TESTS=ON &&
  cmake --build '$build' -j$(nproc) --target test_cuda lasgrad"
[ "$failed" = 0 ] || { echo "gpu_check: the build failed"; exit 1; }
test_cuda=$build/tests/cuda/test_cuda

step gpu bash -c "nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv && ldd '$test_cuda'"
if [ "$failed" != 0 ]; then
  echo "gpu_check: no usable GPU here (nvidia-smi failed; see $logs/gpu.log), so no GPU step ran"
  exit 1
fi

export LASGRAD_REQUIRE_GPU=1
step test_cuda env LASGRAD_CUDA_SYNC=1 "$test_cuda"
no_skips "$logs/test_cuda.log" || { echo "   FAILED: test_cuda skipped cases"; failed=1; }

sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [ -x "$sanitizer" ]; then
  step memcheck "$sanitizer" --tool memcheck --error-exitcode 1 "$test_cuda" \
    -tc="one training step*,training with device = cuda*"
  for tool in racecheck synccheck; do
    step $tool "$sanitizer" --tool $tool --error-exitcode 1 "$test_cuda" \
      -tc="fused attention equals the literal reference*"
  done
else
  echo "== compute-sanitizer: not found ($sanitizer); memcheck, racecheck and synccheck did not run"
  failed=1
fi

if [ "${BENCH_STEPS:-10}" != 0 ]; then
  step bench tools/bench_cuda.sh "${BENCH_STEPS:-10}"
fi
echo "gpu_check: logs in $logs; $([ "$failed" = 0 ] && echo "every step passed" || echo "some steps FAILED")"
exit $failed
