#!/usr/bin/env bash
# Data-parallel training over MPI (train/group.h) against one process with the same global batch:
#   - 2 ranks x batch 8 and 1 process x batch 16, 20 steps, for a LayerNorm and a BatchNorm model
#     (synchronised BatchNorm), and on a GPU where there is one: every step's train loss within 1e-5
#     relative, every validation line alike, and the final parameters and BatchNorm statistics within
#     1e-5 (check_mpi.py);
#   - the ranks' parameters and buffers bit for bit: the trainer compares their checksums at each
#     evaluation;
#   - rank 0 alone writes the run folder; the checkpoint records 2 ranks; resuming it with 1 process
#     is refused with the mpirun line to use;
#   - Ctrl-C on mpirun checkpoints, and the job resumes with 2 ranks to its end;
#   - a rank with other settings is refused at start-up, naming the rank;
#   - kill -9 of one rank ends the job within a bounded time, never a hang.
#   tests/tools/mpi_train.sh LASGRAD
set -euo pipefail
lasgrad=$(realpath "$1")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/common.sh"
# As root (CI's containers) Open MPI wants both variables; --oversubscribe: 2 ranks on any machine.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Under AddressSanitizer (tools/test.sh's second run) the ranks skip leak detection: Open MPI keeps
# its runtime's tables until exit in components it has unloaded by then, which LeakSanitizer can
# neither name nor suppress. Single-process runs keep it (the other tests, and "one" below).
mpi=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" mpirun -np 2 --bind-to none)

"$lasgrad" gen listops --out data --seed 3 --train 300 --val 40 --test 40 --min-length 10 --max-length 40 --quiet
# eps = 1e-4, not Adam's 1e-8: some parameters' gradients are zero but for rounding. The key bias
# (a constant added to every key moves each row's logits alike, but for the decay) and, with
# BatchNorm, each bias right before a norm (the norm subtracts it again) get sums that cancel down
# to noise of about 1e-9, which differs between 1 and 2 ranks. Adam divides by sqrt(v) + eps, and
# turns that noise into steps of a fraction of lr. Measured after 20 steps, in units of
# 1e-5 (1 + |p|): with eps = 1e-8 the key bias lay 2.8 apart (LayerNorm) and the biases before a
# BatchNorm 372 (their running means 299); with 1e-6, 0.08 and 4.9; with 1e-4, 0.006 and 0.042.
T=(train --task listops --preset small --progress lines --set layers=1 --set width=16 --set heads=2
   --set warmup=2 --set threads=1 --set log_every=1 --set steps=20 --set eval_every=10 --set eps=1e-4)

# Also a last batch with fewer rows than ranks: 17 examples in global batches of 16 leave one row
# every other step, which rank 0 runs as filler at weight 0 and its BatchNorm must leave out.
"$lasgrad" gen listops --out odd --seed 4 --train 17 --val 40 --test 40 --min-length 10 --max-length 40 --quiet
for run in data:layer data:batch odd:batch; do
  set -- "${run%:*}" "${run#*:}" "${run/:/-}"
  "$lasgrad" "${T[@]}" --data "$1" --set norm="$2" --set batch_size=16 --out "one-$3" > one.log 2>&1 ||
    { cat one.log; fail "one process, $run"; }
  timeout 300 "${mpi[@]}" "$lasgrad" "${T[@]}" --data "$1" --set norm="$2" --set batch_size=8 --out "two-$3" > two.log 2>&1 ||
    { cat two.log; fail "2 ranks, $run"; }
  grep -q "batch 8 x 1 x 2 ranks" two.log || { cat two.log; fail "2 ranks: no 'x 2 ranks' in the log"; }
  [ "$(grep -c '^training' two.log)" = 1 ] || fail "2 ranks: more than rank 0 printed"
  python3 "$here/check_mpi.py" "one-$3" "two-$3"
done

# With a GPU (none in CI): the LayerNorm pair on device = cuda, each rank driving the GPU of its local
# rank (on a one-GPU machine both share it). Skipped, saying why, where device = cuda cannot be used.
if "$lasgrad" "${T[@]}" --data data --set device=cuda --set batch_size=16 --out one-cuda > one.log 2>&1; then
  timeout 300 "${mpi[@]}" "$lasgrad" "${T[@]}" --data data --set device=cuda --set batch_size=8 --out two-cuda > two.log 2>&1 ||
    { cat two.log; fail "2 ranks on cuda"; }
  python3 "$here/check_mpi.py" one-cuda two-cuda
elif grep -q "setting device = cuda: " one.log; then
  echo "mpi_train: device = cuda skipped ($(grep -o 'setting device = cuda: .*' one.log))"
else
  cat one.log; fail "one process on cuda"
fi

# Resuming with another number of ranks is refused, naming the one to use.
expect_fail 1 "written by 2 rank(s).*mpirun -np 2" "$lasgrad" train --resume two-data-layer/last.safetensors

# Settings that differ between ranks are refused before training (rank 1 gets another learning rate).
cat > differ.sh <<EOF
#!/usr/bin/env bash
extra=()
[ "\${OMPI_COMM_WORLD_RANK:-0}" = 1 ] && extra=(--set lr=0.5)
exec "$lasgrad" ${T[*]} --data data --set batch_size=8 --out differ "\${extra[@]}"
EOF
chmod +x differ.sh
status=0
timeout 120 "${mpi[@]}" ./differ.sh > differ.log 2>&1 || status=$?
[ "$status" != 0 ] && [ "$status" != 124 ] || { cat differ.log; fail "mismatched settings: exit $status"; }
grep -q "settings differ between ranks: rank 1" differ.log || { cat differ.log; fail "mismatched settings not named"; }

# Ctrl-C on mpirun (SIGINT): every rank stops at one step, rank 0 writes last.safetensors, and the job
# resumes with 2 ranks to the end, every train step logged once.
"${mpi[@]}" "$lasgrad" "${T[@]}" --data data --set steps=3000 --set eval_every=1000 --set batch_size=8 --out intr > intr.log 2>&1 &
job=$!
for _ in $(seq 1 300); do
  grep -q "^step 20/" intr.log 2>/dev/null && break
  sleep 0.1
done
kill -INT "$job"
wait "$job" || true
[ -f intr/last.safetensors ] || { cat intr.log; fail "Ctrl-C on mpirun wrote no checkpoint"; }
timeout 600 "${mpi[@]}" "$lasgrad" train --resume intr/last.safetensors --progress lines > resume.log 2>&1 ||
  { cat resume.log; fail "2 ranks: resume after Ctrl-C"; }
got=$(grep -c '"split": "train"' intr/metrics.jsonl)
[ "$got" = 3000 ] || fail "after Ctrl-C and resume: $got train lines, not 3000"
[ "$(sed -n 's/.*"split": "train", "step": \([0-9]*\).*/\1/p' intr/metrics.jsonl | sort -n | uniq | wc -l)" = 3000 ] ||
  fail "after Ctrl-C and resume: a train step logged twice"
grep -q '"split": "test"' intr/metrics.jsonl || fail "after Ctrl-C and resume: no test line"

# kill -9 of rank 1 mid-run: the job ends (mpirun notices) well inside the timeout.
timeout 300 "${mpi[@]}" "$lasgrad" "${T[@]}" --data data --set steps=100000 --set eval_every=100000 --set batch_size=8 \
  --out killed > killed.log 2>&1 &
job=$!
for _ in $(seq 1 200); do
  grep -q "^step 2/" killed.log 2>/dev/null && break
  sleep 0.1
done
victim=$(pgrep -f "lasgrad train .*--out killed" | tail -1)
[ -n "$victim" ] || { cat killed.log; fail "no rank to kill"; }
start=$(date +%s)
kill -9 "$victim"
status=0
wait "$job" || status=$?
[ "$status" != 0 ] && [ "$status" != 124 ] || { cat killed.log; fail "after kill -9 of a rank: exit $status"; }
[ $(($(date +%s) - start)) -le 60 ] || fail "the job took more than 60 s to end after a rank died"
echo "mpi_train: all checks passed"
