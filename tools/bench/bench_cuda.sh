#!/usr/bin/env bash
# lasgrad on the GPU beside PyTorch on the same GPU, in one invocation (needs a CUDA GPU, python3 with a
# CUDA build of torch, and the bench_cuda program: built here with nvcc + cuBLAS, or given):
#   1. training step throughput (tokens/s) of the bench model and the ListOps-size model for softmax,
#      LaS and LaS-Chunk: lasgrad vs the identical PyTorch model (tests/reference/make_fixture.py, LaS
#      written literally) in eager mode and under torch.compile, with the ratios;
#   2. the fused LaS kernel's TFLOP/s (forward; forward + backward) beside PyTorch's flash
#      scaled_dot_product_attention on the same shapes (bf16: the flash backend needs 16-bit inputs;
#      and float32, which SDPA serves with its memory-efficient kernel);
#   3. peak memory of one attention forward + backward against L up to 16384: lasgrad's fused LaS vs
#      PyTorch's literal LaS and PyTorch's SDPA.
#   tools/bench/bench_cuda.sh [steps]        (default 10; the median of `steps` after 2 warm-ups everywhere)
# Every cell runs on its own with a time limit: one that fails or runs out of time prints "failed" or
# "timeout", its error goes to the log, and the table goes on.
# Environment:
#   LASGRAD_BENCH_CUDA   the bench_cuda program to run (the GPU bundle's); unset: built in LASGRAD_BENCH_BUILD
#                        (default build-bench-cuda)
#   LASGRAD_LIBRARY_PATH the library path of the bench_cuda program alone (PyTorch keeps its own)
#   BENCH_CELL_SECONDS   each cell's time limit (default 150; a torch.compile of the ListOps model is the longest)
#   BENCH_LOG            where failing cells' errors go (default runs/bench_cuda-errors.log)
#   PYTHON               default python3
#   LASGRAD_TF32=1       TF32 GEMMs in lasgrad and in PyTorch
set -uo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-10}
py=${PYTHON:-python3}
limit=${BENCH_CELL_SECONDS:-150}
log=${BENCH_LOG:-runs/bench_cuda-errors.log}
mkdir -p "$(dirname "$log")"
: > "$log"
if [ -n "${LASGRAD_BENCH_CUDA:-}" ]; then
  bench=$LASGRAD_BENCH_CUDA
else
  build=${LASGRAD_BENCH_BUILD:-build-bench-cuda}
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DLASGRAD_TESTS=OFF -DLASGRAD_CUDA=ON >/dev/null &&
    cmake --build "$build" -j"$(nproc)" --target bench_cuda >/dev/null || { echo "bench_cuda.sh: the build failed" >&2; exit 1; }
  bench="$build/bench_cuda"
fi
tf32=${LASGRAD_TF32:-0}

gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
echo "gpu: ${gpu:-unknown}; torch $("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo missing); median of $steps; errors in $log"

# The PyTorch side: one function per section, selected by the first argument.
torch_bench() {
  timeout "$limit" "$py" - "$@" <<'PY'
import sys, time, statistics, torch, torch.nn.functional as F
sys.path.insert(0, "tests/reference")
import make_fixture as mf

section, args = sys.argv[1], sys.argv[2:]
torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = (args[-1] == "1")
dev = torch.device("cuda")

def timed(f, steps):
    f(); f()
    ts = []
    for _ in range(steps):
        torch.cuda.synchronize(); t0 = time.perf_counter(); f(); torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)

def step_bench(model, kind, batch, steps, compiled):
    L, d, layers = (2000, 256, 6) if model == "listops" else (1024, 128, 4)
    c = dict(mf.CONFIG, vocab=20, classes=10, d_model=d, heads=8, layers=layers, expand=4, L=L, batch=batch,
             las_b=0.1, pool=5, chunk=128, causal=1)
    pe = mf.sinusoidal(L, d).to(device=dev, dtype=torch.float32)   # built once: torch.compile would trace its loops
    mf.sinusoidal = lambda L_, d_: pe
    gen = torch.Generator().manual_seed(0)
    w = {n: t.to(dev).requires_grad_() for n, t in mf.init_weights(c, gen).items()}
    x = torch.randint(0, 20, (batch, L), generator=gen).to(dev)
    y = torch.randint(0, 10, (batch,), generator=gen).to(dev)
    lengths = [L] * batch
    fwd = torch.compile(mf.forward) if compiled else mf.forward
    def step():
        loss = F.cross_entropy(fwd(c, kind, w, x, lengths), y)
        loss.backward()
        with torch.no_grad():
            for t in w.values():
                t -= 1e-3 * t.grad
                t.grad = None
    s = timed(step, steps)
    print(f"{batch * L / s:.0f}")

def kernel_bench(B, H, L, dh, steps):
    out = []
    for dt in (torch.bfloat16, torch.float32):
        q, k, v = (torch.randn(B, H, L, dh, device=dev, dtype=dt, requires_grad=True) for _ in range(3))
        g = torch.randn(B, H, L, dh, device=dev, dtype=dt)
        from torch.nn.attention import sdpa_kernel, SDPBackend
        backend = SDPBackend.FLASH_ATTENTION if dt == torch.bfloat16 else SDPBackend.EFFICIENT_ATTENTION
        with sdpa_kernel(backend):
            f = timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), steps)
            fb = timed(lambda: torch.autograd.grad(F.scaled_dot_product_attention(q, k, v, is_causal=True), (q, k, v), g),
                       steps)
        flops = 4.0 * B * H * dh * L * (L + 1) / 2
        out += [f"{flops / f / 1e12:.2f}", f"{3.5 * flops / fb / 1e12:.2f}"]
    print(" ".join(out))

def memory_bench(L, H, dh):
    res = []
    for which in ("literal", "sdpa"):
        torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
        try:
            q, k, v = (torch.randn(1, H, L, dh, device=dev, requires_grad=True) for _ in range(3))
            before = torch.cuda.memory_allocated()
            if which == "literal":
                o = mf.attention(q, k, v, mf.las_alphas("las", H, 0.1, L), "las", 5, 128, 1, [L])
            else:
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            o.sum().backward()
            torch.cuda.synchronize()
            res.append(f"{(torch.cuda.max_memory_allocated() - before) / 2**20:.1f}")
        except torch.cuda.OutOfMemoryError:
            res.append("OOM")
        finally:
            q = k = v = o = None
    print(" ".join(res))

if section == "step":
    step_bench(args[0], args[1], int(args[2]), int(args[3]), args[4] == "1")
elif section == "kernel":
    kernel_bench(*map(int, args[:4]), int(args[4]))
else:
    memory_bench(*map(int, args[:3]))
PY
}

lasgrad_bench() { LD_LIBRARY_PATH="${LASGRAD_LIBRARY_PATH:-${LD_LIBRARY_PATH:-}}" timeout "$limit" "$bench" "$@"; }
# cell NAME COMMAND...: the command's output; on failure "failed" (or "timeout"), with its error in the log.
cell() {
  local name=$1 out rc err
  shift
  err=$(mktemp)
  out=$("$@" 2>"$err")
  rc=$?
  if [ "$rc" = 0 ] && [ -n "$out" ]; then
    echo "$out"
  else
    { echo "== $name: exit $rc"; echo "$out"; cat "$err"; } >>"$log"
    [ "$rc" = 124 ] && echo timeout || echo failed
  fi
  rm -f "$err"
}
# field KEY: KEY=value from its input, or the input itself when it is a failed cell.
field() { sed -n -e "s/.*$1=\([0-9.]*\).*/\1/p" -e '/^\(failed\|timeout\)$/p'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else printf "-" }'; }
tflag=""; [ "$tf32" = 1 ] && tflag="--tf32"

echo
echo "== training step throughput (tokens/s), float32$([ "$tf32" = 1 ] && echo ' with TF32 GEMMs')"
printf "%-8s %-10s %6s %12s %12s %12s %9s %9s\n" model kind batch lasgrad torch_eager torch_compile x_eager x_compile
for model in bench listops; do
  batch=8
  for kind in softmax las las-chunk; do
    tok=$(cell "lasgrad step $model $kind" lasgrad_bench --step --model "$model" --kind "$kind" --batch "$batch" \
            --steps "$steps" $tflag | field tokens_per_s)
    eager=$(cell "torch eager step $model $kind" torch_bench step "$model" "$kind" "$batch" "$steps" 0 "$tf32")
    comp=$(cell "torch.compile step $model $kind" torch_bench step "$model" "$kind" "$batch" "$steps" 1 "$tf32")
    printf "%-8s %-10s %6s %12s %12s %12s %9s %9s\n" "$model" "$kind" "$batch" "$tok" "$eager" "$comp" \
      "$(ratio "$tok" "$eager")" "$(ratio "$tok" "$comp")"
  done
done

echo
echo "== fused attention kernels, causal (lasgrad float32 CUDA-core kernels; PyTorch SDPA bf16 flash and float32)"
printf "%-22s %-10s %9s %9s %9s %9s %9s %9s %8s\n" "B,H,L,dh" kind fwd_TF fwdbwd_TF bf16_fwd bf16_fb f32_fwd f32_fb x_flash
for shape in "8 8 2000 32" "4 8 4096 64" "2 8 8192 64" "1 8 16384 64"; do
  read -r B H L dh <<<"$shape"
  pt=$(cell "torch kernels $shape" torch_bench kernel "$B" "$H" "$L" "$dh" "$steps" "$tf32")
  case "$pt" in failed|timeout) pt="$pt $pt $pt $pt" ;; esac
  read -r bf bfb ff ffb <<<"$pt"
  for kind in softmax las las-chunk; do
    line=$(cell "lasgrad kernel $kind $shape" lasgrad_bench --kernel --kind "$kind" --batch "$B" --heads "$H" --len "$L" \
             --dh "$dh" --steps "$steps")
    f=$(echo "$line" | field fwd_tflops); fb=$(echo "$line" | field fwdbwd_tflops)
    printf "%-22s %-10s %9s %9s %9s %9s %9s %9s %8s\n" "$B,$H,$L,$dh" "$kind" "$f" "$fb" "$bf" "$bfb" "$ff" "$ffb" \
      "$(ratio "$fb" "$bfb")"
  done
done

echo
echo "== peak memory of one attention forward + backward (MiB), B = 1, 8 heads, dh = 64"
printf "%7s %14s %16s %12s %14s\n" L lasgrad_las torch_literal torch_sdpa LxL_per_head
for L in 1024 2048 4096 8192 16384; do
  mine=$(cell "lasgrad memory $L" lasgrad_bench --memory "$L" --heads 8 --dh 64 --kind las | field growth_mib)
  pt=$(cell "torch memory $L" torch_bench memory "$L" 8 64 "$tf32")
  case "$pt" in failed|timeout) pt="$pt $pt" ;; esac
  read -r lit sd <<<"$pt"
  printf "%7s %14s %16s %12s %14s\n" "$L" "$mine" "$lit" "$sd" "$(awk -v l="$L" 'BEGIN { printf "%.1f", 4 * l * l / 2^20 }')"
done
failures=$(grep -c "^== " "$log")
echo
echo "bench_cuda.sh: $([ "$failures" = 0 ] && echo "every cell ran" || echo "$failures cells failed or ran out of time; see $log")"
[ "$failures" = 0 ]
