#!/usr/bin/env bash
# Data-parallel training over MPI (train/group.h) against one process with the same global batch:
#   - 2 ranks x batch 8 and 1 process x batch 16, 20 steps, LayerNorm: every step's train loss within
#     1e-5 relative, every validation line alike, and the final parameters within 1e-5 (check_mpi.py);
#   - the ranks' parameters bit for bit: the trainer compares their checksums at each evaluation;
#   - rank 0 alone writes the run folder; the checkpoint records 2 ranks; resuming it with 1 process
#     is refused with the mpirun line to use;
#   - Ctrl-C on mpirun checkpoints, and the job resumes with 2 ranks to its end;
#   - a rank with other settings is refused at start-up, naming the rank;
#   - BatchNorm over ranks is refused (synchronised BatchNorm is not implemented);
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
# eps = 1e-6, not Adam's 1e-8: the key bias's gradient is nearly zero (a constant added to every key
# moves each row's logits alike, but for the decay), a sum that cancels down to rounding noise of about
# 1e-9, which differs between 1 and 2 ranks; with eps = 1e-8 Adam turns that noise into steps of a
# sizeable fraction of lr (final key biases 3e-5 apart after 20 steps, the rest within 6e-6), with
# 1e-6 into nothing visible (every parameter within 0.08 x 1e-5 (1 + |p|)).
T=(train --task listops --data data --preset small --progress lines --set layers=1 --set width=16 --set heads=2
   --set warmup=2 --set threads=1 --set log_every=1 --set steps=20 --set eval_every=10 --set eps=1e-6)

"$lasgrad" "${T[@]}" --set batch_size=16 --out one > one.log 2>&1 || { cat one.log; fail "one process"; }
timeout 300 "${mpi[@]}" "$lasgrad" "${T[@]}" --set batch_size=8 --out two > two.log 2>&1 || { cat two.log; fail "2 ranks"; }
grep -q "batch 8 x 1 x 2 ranks" two.log || { cat two.log; fail "2 ranks: no 'x 2 ranks' in the log"; }
[ "$(grep -c '^training' two.log)" = 1 ] || fail "2 ranks: more than rank 0 printed"
python3 "$here/check_mpi.py" one two

# Resuming with another number of ranks is refused, naming the one to use.
expect_fail 1 "written by 2 rank(s).*mpirun -np 2" "$lasgrad" train --resume two/last.safetensors

# Settings that differ between ranks are refused before training (rank 1 gets another learning rate).
cat > differ.sh <<EOF
#!/usr/bin/env bash
extra=()
[ "\${OMPI_COMM_WORLD_RANK:-0}" = 1 ] && extra=(--set lr=0.5)
exec "$lasgrad" ${T[*]} --set batch_size=8 --out differ "\${extra[@]}"
EOF
chmod +x differ.sh
status=0
timeout 120 "${mpi[@]}" ./differ.sh > differ.log 2>&1 || status=$?
[ "$status" != 0 ] && [ "$status" != 124 ] || { cat differ.log; fail "mismatched settings: exit $status"; }
grep -q "settings differ between ranks: rank 1" differ.log || { cat differ.log; fail "mismatched settings not named"; }

# BatchNorm across ranks needs synchronised statistics: refused, not silently wrong.
status=0
timeout 120 "${mpi[@]}" "$lasgrad" "${T[@]}" --set norm=batch --set batch_size=8 --out bn > bn.log 2>&1 || status=$?
[ "$status" = 1 ] || { cat bn.log; fail "BatchNorm over ranks: exit $status"; }
grep -q "synchronised BatchNorm is not implemented" bn.log || { cat bn.log; fail "BatchNorm refusal not said"; }

# Ctrl-C on mpirun (SIGINT): every rank stops at one step, rank 0 writes last.safetensors, and the job
# resumes with 2 ranks to the end, every train step logged once.
"${mpi[@]}" "$lasgrad" "${T[@]}" --set steps=3000 --set eval_every=1000 --set batch_size=8 --out intr > intr.log 2>&1 &
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
timeout 300 "${mpi[@]}" "$lasgrad" "${T[@]}" --set steps=100000 --set eval_every=100000 --set batch_size=8 \
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
