#!/usr/bin/env bash
# The GPU check, run on the GPU machine from the folder that tools/gpu_bundle.sh made (it is copied there
# as DIR/gpu_check.sh); it needs nothing but the bundle, the NVIDIA driver, the CUDA 13 runtime with
# cuBLAS, and python3 with a CUDA build of PyTorch for the benchmark.
#   DIR/gpu_check.sh [LOGDIR]        (default DIR/logs-<date>-<time>; an existing LOGDIR is refused)
# The steps, each under its own time limit (seconds; 480 in all, so that a 15-minute GPU loan leaves room
# for a second run):
#   gpu         15   nvidia-smi: the GPU and its driver
#   test_cuda   60   every case, LASGRAD_REQUIRE_GPU=1 (a skip fails), synchronous launches
#   memcheck    90   compute-sanitizer memcheck over the op cases and the model cases
#   racecheck   45   compute-sanitizer racecheck over the small attention case (every kind, dh 16, 64, 128)
#   synccheck   30   compute-sanitizer synccheck over the same case
#   bench      190   tools/bench/bench_cuda.sh BENCH_STEPS (default 5), each cell within BENCH_CELL_SECONDS (45),
#                    the tables of BENCH_SECTIONS (default "bf16 kernel": issue 24's; all four exceed 190 s)
#   pathx       50   lasgrad train on the bundled Path-X set: the paper's 6 x 256 model, L = 16384, 4 steps
# GPU_PILOT=1 runs the science pilot of issue 25 instead (about 500 s): generated ListOps of 500-2000
# tokens made there (20k / 1k / 2k), the root-operator rule on its test split, then softmax and LaS at the
# paper's 6 x 256 for 120 s each (SIGTERM checkpoints them), each checkpoint evaluated on the test split
# by root operator: steps per second, and whether either model leaves the rule.
#   rule          30   lasgrad data inspect --split test
#   pilot-data    90   lasgrad gen listops on every core
#   <kind>       150   lasgrad train --preset paper --device cuda, stopped by SIGTERM after 120 s
#   <kind>-test   60   lasgrad eval --breakdown of its last.safetensors
# GPU_NUMERICS=1 runs issue 24's numerics instead (about 200 s): the main job's data and model, 500 steps
# in fp32 and in bf16 on the GPU (the final training loss within 2%, test accuracy within 1.5 points):
#   numerics-data  60   lasgrad gen listops as tools/run.sh makes it
#   fp32, bf16    120   lasgrad train --device cuda --set precision=P, each
# Each step writes LOGDIR/<step>.log; LOGDIR/summary.md holds the table of what passed, failed or ran out
# of time, which is printed at the end. The library path is set for lasgrad's own programs only
# (DIR/lib and the machine's cuBLAS): PyTorch keeps its own libraries.
# Exits 1 if a step failed or ran out of time, and at once, saying why, where there is no usable GPU.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
logs=${1:-$here/logs-$(date +%Y%m%d-%H%M%S)}
for p in test_cuda bench_cuda lasgrad; do
  [ -x "$here/bin/$p" ] || { echo "gpu_check: $here/bin/$p is missing: run this from a folder made by tools/gpu_bundle.sh" >&2; exit 1; }
done
if [ -e "$logs" ]; then
  echo "gpu_check: $logs exists; give a new log folder (nothing ran)" >&2
  exit 1
fi

# A GPU, or stop here.
if ! command -v nvidia-smi >/dev/null; then
  echo "gpu_check: no usable GPU here: nvidia-smi is not installed (no NVIDIA driver); nothing ran" >&2
  exit 1
fi
if ! why=$(nvidia-smi -L 2>&1) || [ -z "$why" ]; then
  echo "gpu_check: no usable GPU here: nvidia-smi -L says: ${why:-nothing}; nothing ran" >&2
  exit 1
fi

# The machine's cuBLAS: the first folder that holds every cuBLAS library the programs were linked against.
mapfile -t wanted < <(grep '^libcublas' "$here/lib/SYSTEM_LIBS.txt")
cublas_dir=""
for d in ${CUDA_HOME:+"$CUDA_HOME/lib64"} /usr/local/cuda/lib64 /usr/local/cuda/lib $(ls -d /usr/local/cuda-*/lib64 2>/dev/null | sort -rV) \
         $(ldconfig -p 2>/dev/null | awk '/libcublas\.so/ { sub(/\/[^\/]*$/, "", $NF); print $NF }' | sort -u); do
  ok=1
  for lib in "${wanted[@]}"; do [ -e "$d/$lib" ] || ok=0; done
  if [ "$ok" = 1 ]; then cublas_dir=$d; break; fi
done
if [ -z "$cublas_dir" ]; then
  echo "gpu_check: none of the CUDA library folders holds ${wanted[*]} (set CUDA_HOME); nothing ran" >&2
  exit 1
fi
libpath="$here/lib:$cublas_dir"
with_libs=(env "LD_LIBRARY_PATH=$libpath")  # before each of lasgrad's programs, and only there

mkdir -p "$logs"
rows=() failed=0
# step NAME LIMIT COMMAND...: runs it under the limit with its output in LOGDIR/NAME.log; `detail` then
# picks the log's telling line for the table.
step() {
  local name=$1 limit=$2 start=$SECONDS rc result
  shift 2
  echo "== $name (limit $limit s)"
  echo "\$ $*" >"$logs/$name.log"
  timeout --kill-after=10 "$limit" "$@" >>"$logs/$name.log" 2>&1
  rc=$?
  case $rc in
    0) result=passed ;;
    124 | 137) result="TIMEOUT ($limit s)" ;;
    *) result="FAILED (exit $rc)" ;;
  esac
  [ "$rc" = 0 ] || failed=1
  rows+=("| $name | $result | $((SECONDS - start)) | $(detail "$name") |")
  echo "   $result in $((SECONDS - start)) s: $(detail "$name")"
}
detail() {
  local log="$logs/$1.log"
  case $1 in
    gpu) sed -n 2p "$log" ;;
    test_cuda) grep -E "test cases:|SKIPPED|FAILED" "$log" | tail -1 ;;
    memcheck | synccheck) grep -E "ERROR SUMMARY" "$log" | tail -1 ;;
    racecheck) grep -E "RACECHECK SUMMARY" "$log" | tail -1 ;;
    bench) tail -1 "$log" ;;
    pathx) grep -E "^test accuracy|Error|error" "$log" | tail -1 ;;
    rule) grep -o "majority class.*" "$log" ;;
    softmax | las) grep -E "steps/s|error" "$log" | tail -1 ;;
    *-test) grep -E "accuracy [0-9]|error" "$log" | head -1 ;;
    fp32 | bf16) sed -n -e 's/^step 500\/500 *loss \([0-9.]*\).*/final training loss \1;/p' \
                   -e 's/^test accuracy \([0-9.]*%\).*/test accuracy \1/p' -e '/rror/p' "$log" | tr '\n' ' ' ;;
  esac | tr -d '|' | cut -c1-120
}

sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
test_cuda="$here/bin/test_cuda"
export LASGRAD_REQUIRE_GPU=1

step gpu 15 nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv
if [ "${GPU_PILOT:-0}" = 1 ]; then
  lasgrad=("${with_libs[@]}" "$here/bin/lasgrad")
  listops=$logs/listops-500-2000
  step pilot-data 90 "${lasgrad[@]}" gen listops --out "$listops" --seed 0 --train 20000 --val 1000 --test 2000 \
    --min-length 500 --max-length 2000 --quiet
  step rule 30 "${lasgrad[@]}" data inspect --task listops --data "$listops" --split test
  for kind in softmax las; do
    # Stopped by SIGTERM after 120 s, as planned: exit 0 when the time limit (not an error) ended it.
    step $kind 150 bash -c 'timeout -s TERM 120 "$@"; [ $? = 124 ]' _ "${lasgrad[@]}" train --task listops --attention $kind \
      --preset paper --data "$listops" --out "$logs/pilot-$kind" --device cuda --set max_length=2000 --set eval_every=100000 \
      --set log_every=20 --progress lines
    step $kind-test 60 "${lasgrad[@]}" eval --checkpoint "$logs/pilot-$kind/last.safetensors" --breakdown
  done
elif [ "${GPU_NUMERICS:-0}" = 1 ]; then
  lasgrad=("${with_libs[@]}" "$here/bin/lasgrad")
  short=$logs/listops-short
  step numerics-data 60 "${lasgrad[@]}" gen listops --out "$short" --seed 0 --train 20000 --val 1000 --test 1000 \
    --min-length 10 --max-length 100 --quiet
  for precision in fp32 bf16; do
    step $precision 120 "${lasgrad[@]}" train --task listops --attention las --preset small --data "$short" \
      --out "$logs/main-$precision" --device cuda --set layers=4 --set steps=500 --set eval_every=250 \
      --set precision=$precision --progress lines
  done
else
  step test_cuda 60 "${with_libs[@]}" LASGRAD_CUDA_SYNC=1 "$test_cuda"
  step memcheck 90 "${with_libs[@]}" "$sanitizer" --tool memcheck --error-exitcode 1 "$test_cuda" -tc="op cases*,model cases*"
  step racecheck 45 "${with_libs[@]}" "$sanitizer" --tool racecheck --error-exitcode 1 "$test_cuda" -tc="sanitizer attention*"
  step synccheck 30 "${with_libs[@]}" "$sanitizer" --tool synccheck --error-exitcode 1 "$test_cuda" -tc="sanitizer attention*"
  step bench 190 env LASGRAD_BENCH_CUDA="$here/bin/bench_cuda" LASGRAD_LIBRARY_PATH="$libpath" BENCH_LOG="$logs/bench-errors.log" \
    BENCH_CELL_SECONDS="${BENCH_CELL_SECONDS:-45}" BENCH_SECTIONS="${BENCH_SECTIONS:-bf16 kernel}" "$here/tools/bench/bench_cuda.sh" "${BENCH_STEPS:-5}"
  step pathx 50 "${with_libs[@]}" "$here/bin/lasgrad" train --task pathx --attention las --preset paper --data "$here/data/pathx" \
    --out "$logs/pathx-run" --device cuda --set steps=4 --set eval_every=4 --set batch_size=8 --set log_every=1 --progress lines
fi

{
  echo "# GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), bundle of commit $(cat "$here/COMMIT" 2>/dev/null || echo unknown)"
  echo
  echo "GPU: $(sed -n 2p "$logs/gpu.log"); cuBLAS from $cublas_dir"
  echo
  echo "| step | result | seconds | detail |"
  echo "|---|---|---:|---|"
  printf '%s\n' "${rows[@]}"
} >"$logs/summary.md"
echo
cat "$logs/summary.md"
echo
echo "gpu_check: logs in $logs; $([ "$failed" = 0 ] && echo "every step passed" || echo "some steps FAILED or ran out of time")"
exit $failed
