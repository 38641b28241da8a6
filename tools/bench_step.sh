#!/usr/bin/env bash
# One training step (forward, backward, SGD) of the bench model in lasgrad and in the identical PyTorch
# model (tests/reference/make_fixture.py's model: LaS written literally, L x L matrices), for softmax,
# LaS and LaS-Chunk (C = 128), with the same thread count; prints median step times, the ratio, and
# lasgrad's GFLOP/s beside its measured GEMM rate; then the fused attention's peak memory against L.
#   tools/bench_step.sh [threads] [steps]        (defaults: all cores, 5 steps)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-$(nproc)}
steps=${2:-5}
build=${LASGRAD_BENCH_BUILD:-build-bench}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DLASGRAD_TESTS=OFF -DLASGRAD_CUDA=OFF >/dev/null
cmake --build "$build" -j"$threads" --target bench_step >/dev/null
export OMP_NUM_THREADS=$threads

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; threads $threads; median of $steps steps"
gemm=$("$build"/bench_step --gemm | sed -n 's/.*gflops=//p')
echo "lasgrad float32 GEMM rate: $gemm GFLOP/s"
printf "%-10s %12s %12s %8s %10s %8s\n" kind lasgrad_ms pytorch_ms ratio GFLOP/s %GEMM
for kind in las softmax las-chunk; do
  line=$("$build"/bench_step --kind "$kind" --steps "$steps")
  ms=$(echo "$line" | sed -n 's/.*step_ms=\([0-9.]*\).*/\1/p')
  gf=$(echo "$line" | sed -n 's/.*gflops=\([0-9.]*\).*/\1/p')
  pt=$(/usr/bin/python3 - "$kind" "$steps" "$threads" <<'PY'
import sys, time, statistics, torch, torch.nn.functional as F
sys.path.insert(0, "tests/reference")
import make_fixture as mf
kind, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
c = dict(mf.CONFIG, vocab=20, classes=10, d_model=128, heads=8, layers=4, expand=4, L=1024, batch=8,
         las_b=0.1, pool=5, chunk=128, causal=1)
gen = torch.Generator().manual_seed(0)
w = {n: t.requires_grad_() for n, t in mf.init_weights(c, gen).items()}
x = torch.randint(0, 20, (8, 1024), generator=gen)
y = torch.randint(0, 10, (8,), generator=gen)
lengths = [1024] * 8
def step():
    loss = F.cross_entropy(mf.forward(c, kind, w, x, lengths), y)
    loss.backward()
    with torch.no_grad():
        for t in w.values():
            t -= 1e-3 * t.grad
            t.grad = None
step(); step()
times = []
for _ in range(steps):
    t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
print(f"{statistics.median(times) * 1e3:.1f}")
PY
)
  ratio=$(awk -v a="$pt" -v b="$ms" 'BEGIN { printf "%.1f", a / b }')
  pct=$(awk -v a="$gf" -v b="$gemm" 'BEGIN { printf "%.0f", 100 * a / b }')
  printf "%-10s %12s %12s %7sx %10s %7s%%\n" "$kind" "$ms" "$pt" "$ratio" "$gf" "$pct"
done

echo "fused LaS attention, forward + backward, B = 1, 1 head, dh = 64, causal, P = 5: peak RSS against L"
for L in 1024 2048 4096 8192 16384; do "$build"/bench_step --memory "$L" --heads 1 --dh 64; done
