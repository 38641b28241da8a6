#!/usr/bin/env bash
# lasgrad on the GPU beside PyTorch on the same GPU, in one invocation (needs a CUDA GPU, python3 with a
# CUDA build of torch, and the bench_cuda program: built here with nvcc + cuBLAS, or given):
#   1. training step throughput (tokens/s) of the bench model and the ListOps-size model for softmax,
#      LaS and LaS-Chunk: lasgrad vs the identical PyTorch model (tests/reference/make_fixture.py, LaS
#      written literally) in eager mode and under torch.compile, with the ratios; then in bf16: lasgrad
#      with precision bf16 vs the same PyTorch model under torch.autocast(bfloat16) with its attention
#      through FlexAttention (LaS as a score_mod, smoothing on V), compiled;
#   2. the fused LaS kernel's TFLOP/s (forward; forward + backward), float32 and bf16, beside PyTorch's
#      FlexAttention LaS in bf16 (compiled) and flash scaled_dot_product_attention on the same shapes
#      (bf16: the flash backend needs 16-bit inputs; and float32, which SDPA serves with its
#      memory-efficient kernel);
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
#   BENCH_SECTIONS       which tables, of: step bf16 kernel memory (default all four)
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

def flex_las(q, k, v, alphas, kind, pool, chunk, causal, lengths):
    """make_fixture.attention through FlexAttention, as a PyTorch user writes LaS fast: V smoothed by average
    pooling inside each chunk (the box is its own mirror: A_p V = A V~), then the decay as a score_mod on the
    scaled logits and the causal and chunk masks as a block mask. Every position valid (lengths all L)."""
    from torch.nn.attention.flex_attention import create_block_mask
    B, H, L, dh = q.shape
    C = chunk if kind == "las-chunk" else L
    P = 1 if kind == "softmax" else pool
    if P > 1:
        n = (L + C - 1) // C
        x = F.pad(v, (0, 0, 0, n * C - L)).reshape(B * H * n, C, dh).transpose(1, 2)
        x = F.avg_pool1d(x, P, stride=1, padding=P // 2, count_include_pad=True)
        v = x.transpose(1, 2).reshape(B, H, n * C, dh)[:, :, :L]
    a = torch.tensor(alphas, device=q.device, dtype=torch.float32)
    def score_mod(score, b, h, qi, ki):
        return score * torch.exp(-a[h] * (qi - ki).abs())
    key = (L, C, causal)
    if key not in FLEX_MASKS:
        def mask_mod(b, h, qi, ki):
            same = (qi // C) == (ki // C)
            return same & (ki <= qi) if causal else same
        FLEX_MASKS[key] = create_block_mask(mask_mod, None, None, L, L, device=q.device)
    return FLEX(q, k, v.to(q.dtype), score_mod=score_mod, block_mask=FLEX_MASKS[key])

FLEX_MASKS = {}
try:
    from torch.nn.attention.flex_attention import flex_attention
    FLEX = torch.compile(flex_attention)
except ImportError:
    FLEX = None

def step_bench(model, kind, batch, steps, compiled, bf16=False):
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
    if bf16:
        mf.attention = flex_las
    fwd = torch.compile(mf.forward) if compiled else mf.forward
    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
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

def flex_bench(kind, B, H, L, dh, steps):
    """FlexAttention LaS (flex_las) in bf16, compiled: forward and forward + backward TFLOP/s."""
    q, k, v = (torch.randn(B, H, L, dh, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    g = torch.randn(B, H, L, dh, device=dev, dtype=torch.bfloat16)
    alphas = mf.las_alphas(kind, H, 0.1, L)
    run = lambda: flex_las(q, k, v, alphas, kind, 5, 128, 1, [L] * B)
    f = timed(run, steps)
    fb = timed(lambda: torch.autograd.grad(run(), (q, k, v), g), steps)
    C = 128 if kind == "las-chunk" else L
    pairs = sum((min(C, L - c0) * (min(C, L - c0) + 1)) / 2 for c0 in range(0, L, C))
    flops = 4.0 * B * H * dh * pairs
    print(f"{flops / f / 1e12:.2f} {3.5 * flops / fb / 1e12:.2f}")

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
    step_bench(args[0], args[1], int(args[2]), int(args[3]), args[4] == "1", args[5] == "1")
elif section == "flex":
    flex_bench(args[0], *map(int, args[1:6]))
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
sections=" ${BENCH_SECTIONS:-step bf16 kernel memory} "
want() { [[ "$sections" == *" $1 "* ]]; }

want step && {
echo
echo "== training step throughput (tokens/s), float32$([ "$tf32" = 1 ] && echo ' with TF32 GEMMs')"
printf "%-8s %-10s %6s %12s %12s %12s %9s %9s\n" model kind batch lasgrad torch_eager torch_compile x_eager x_compile
for model in bench listops; do
  batch=8
  for kind in softmax las las-chunk; do
    tok=$(cell "lasgrad step $model $kind" lasgrad_bench --step --model "$model" --kind "$kind" --batch "$batch" \
            --steps "$steps" $tflag | field tokens_per_s)
    eager=$(cell "torch eager step $model $kind" torch_bench step "$model" "$kind" "$batch" "$steps" 0 0 "$tf32")
    comp=$(cell "torch.compile step $model $kind" torch_bench step "$model" "$kind" "$batch" "$steps" 1 0 "$tf32")
    printf "%-8s %-10s %6s %12s %12s %12s %9s %9s\n" "$model" "$kind" "$batch" "$tok" "$eager" "$comp" \
      "$(ratio "$tok" "$eager")" "$(ratio "$tok" "$comp")"
  done
done
}

want bf16 && {
echo
echo "== training step throughput (tokens/s), bf16: lasgrad precision=bf16; PyTorch autocast(bfloat16) + FlexAttention, compiled"
printf "%-8s %-10s %6s %12s %16s %9s\n" model kind batch lasgrad_bf16 torch_autocast_flex x_torch
for model in bench listops; do
  batch=8
  for kind in softmax las las-chunk; do
    tok=$(cell "lasgrad bf16 step $model $kind" lasgrad_bench --step --model "$model" --kind "$kind" --batch "$batch" \
            --steps "$steps" --bf16 | field tokens_per_s)
    flex=$(cell "torch autocast flex step $model $kind" torch_bench step "$model" "$kind" "$batch" "$steps" 1 1 "$tf32")
    printf "%-8s %-10s %6s %12s %16s %9s\n" "$model" "$kind" "$batch" "$tok" "$flex" "$(ratio "$tok" "$flex")"
  done
done
}

want kernel && {
echo
echo "== fused attention kernels, causal, TFLOP/s forward + backward (forward alone in fwd_*): lasgrad float32"
echo "   (CUDA cores) and bf16 (tensor-core forward); PyTorch FlexAttention LaS bf16 (compiled), SDPA bf16 flash and float32"
printf "%-16s %-10s %8s %8s %8s %8s %8s %8s %8s %8s %8s %8s\n" "B,H,L,dh" kind f32_fwd f32 bf16_fwd bf16 flex_fwd flex \
  x_flex sdpa_bf16 sdpa_f32 x_flash
for shape in "8 8 2000 32" "4 8 4096 64" "2 8 8192 64" "1 8 16384 64"; do
  read -r B H L dh <<<"$shape"
  pt=$(cell "torch kernels $shape" torch_bench kernel "$B" "$H" "$L" "$dh" "$steps" "$tf32")
  case "$pt" in failed|timeout) pt="$pt $pt $pt $pt" ;; esac
  read -r bf bfb ff ffb <<<"$pt"
  for kind in softmax las las-chunk; do
    line=$(cell "lasgrad kernel $kind $shape" lasgrad_bench --kernel --kind "$kind" --batch "$B" --heads "$H" --len "$L" \
             --dh "$dh" --steps "$steps")
    f=$(echo "$line" | field fwd_tflops); fb=$(echo "$line" | field fwdbwd_tflops)
    line=$(cell "lasgrad bf16 kernel $kind $shape" lasgrad_bench --kernel --kind "$kind" --batch "$B" --heads "$H" \
             --len "$L" --dh "$dh" --steps "$steps" --bf16)
    hf=$(echo "$line" | field fwd_tflops); hfb=$(echo "$line" | field fwdbwd_tflops)
    fx=$(cell "torch flex kernel $kind $shape" torch_bench flex "$kind" "$B" "$H" "$L" "$dh" "$steps" "$tf32")
    case "$fx" in failed|timeout) fx="$fx $fx" ;; esac
    read -r xf xfb <<<"$fx"
    printf "%-16s %-10s %8s %8s %8s %8s %8s %8s %8s %8s %8s %8s\n" "$B,$H,$L,$dh" "$kind" "$f" "$fb" "$hf" "$hfb" "$xf" \
      "$xfb" "$(ratio "$hfb" "$xfb")" "$bfb" "$ffb" "$(ratio "$hfb" "$bfb")"
  done
done
}

want memory && {
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
}
failures=$(grep -c "^== " "$log")
echo
echo "bench_cuda.sh: $([ "$failures" = 0 ] && echo "every cell ran" || echo "$failures cells failed or ran out of time; see $log")"
[ "$failures" = 0 ]
