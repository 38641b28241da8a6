#!/usr/bin/env bash
# One training step (forward, backward, AdamW) of each model in lasgrad and in the identical PyTorch
# model (tests/reference/bench_torch.py: make_fixture.py's model, LaS written literally with L x L
# matrices), at 1 thread and at every core, in one invocation; prints the median step times, the
# speed-up, lasgrad's GFLOP/s beside its measured GEMM rate and FMA peak at the same thread count, the
# scaling from 1 thread, and where lasgrad's step time goes. Then the fused attention's peak memory.
#   tools/bench/bench_step.sh [steps] [model ...]
# Defaults: 5 steps; the models smnist smnist-chunk listops bench bench-softmax bench-chunk (bench_step.cpp
# describes them). LASGRAD_BENCH_TORCH=0 skips PyTorch (its bench-model steps take about a minute each).
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-5}
shift || true
models=("$@")
[[ ${#models[@]} -gt 0 ]] || models=(smnist smnist-chunk listops bench bench-softmax bench-chunk)
cores=$(nproc)
threads=1
[[ $cores -gt 1 ]] && threads="1,$cores"
build=${LASGRAD_BENCH_BUILD:-build-bench}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DLASGRAD_TESTS=OFF -DLASGRAD_CUDA=OFF >/dev/null
cmake --build "$build" -j"$cores" --target bench_step >/dev/null
torch=${LASGRAD_BENCH_TORCH:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $cores cores, vector extensions: $(grep -m1 -o -w -E 'avx512f|avx2|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "build: $(git rev-parse --short HEAD)$(git diff --quiet || echo +changes), median of $steps steps after 2 warm-ups"
declare -A gemm
while read -r _ t g p; do
  gemm[${t#threads=}]=${g#gflops=}
  echo "threads ${t#threads=}: lasgrad float32 GEMM ${g#gflops=} GFLOP/s, FMA peak ${p#fma_peak_gflops=} GFLOP/s"
done < <("$build"/bench_step --gemm --threads "$threads")

# %peak: of the FMA peak measured beside the steps; "scaling": the step against its 1-thread time, and
# in brackets the FMA peak against its 1-thread figure, which is what the cores delivered at that moment.
printf "%-14s %3s %10s %10s %8s %8s %6s %6s %14s  %s\n" model thr lasgrad_ms pytorch_ms speedup GFLOP/s %GEMM %peak \
  "scaling (peak)" "lasgrad time by part (outside = between kernels)"
for m in "${models[@]}"; do
  "$build"/bench_step --model "$m" --describe > "$work/$m.json"
  one=
  while read -r line; do
    t=$(sed -n 's/.* threads=\([0-9]*\).*/\1/p' <<< "$line")
    ms=$(sed -n 's/.* step_ms=\([0-9.]*\).*/\1/p' <<< "$line")
    gf=$(sed -n 's/.* gflops=\([0-9.]*\).*/\1/p' <<< "$line")
    pk=$(sed -n 's/.* fma_peak_gflops=\([0-9.]*\).*/\1/p' <<< "$line")
    parts=$(sed -n 's/.* fma_peak_gflops=[0-9.]* //p' <<< "$line")
    pt=-
    [[ $torch == 1 ]] && pt=$(/usr/bin/python3 tests/reference/bench_torch.py "$work/$m.json" "$t" "$steps" | sed 's/step_ms=//')
    [[ -n $one ]] || one=$ms one_peak=$pk
    awk -v m="$m" -v t="$t" -v ms="$ms" -v pt="$pt" -v gf="$gf" -v g="${gemm[$t]}" -v p="$pk" -v one="$one" \
      -v one_peak="$one_peak" -v parts="$parts" 'BEGIN {
        printf "%-14s %3s %10.1f %10s %8s %8.1f %5.0f%% %5.0f%% %6.2fx (%4.2fx)  %s\n", m, t, ms, pt,
          pt == "-" ? "-" : sprintf("%.1fx", pt / ms), gf, 100 * gf / g, 100 * gf / p, one / ms, p / one_peak, parts }'
  done < <("$build"/bench_step --model "$m" --steps "$steps" --threads "$threads")
done

echo "fused LaS attention, forward + backward, B = 1, 1 head, dh = 64, causal, P = 5: peak RSS against L"
for L in 1024 2048 4096 8192 16384; do "$build"/bench_step --memory "$L" --heads 1 --dh 64; done
