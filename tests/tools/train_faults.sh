#!/usr/bin/env bash
# lasgrad train under faults, as a scheduler, a full disk or a clumsy user would cause them:
#   - a run directory is locked: a second train there is refused naming the holder's PID; a folder that
#     holds a run is refused without --resume or --overwrite; gen refuses to overwrite data;
#   - SIGTERM checkpoints and exits 130, and the run resumes;
#   - kill -9 at several moments, at least one of them during a checkpoint write: every time the run
#     resumes, stale temporaries are removed, and metrics.jsonl ends with no duplicated or missing step;
#   - a write failure on metrics.jsonl (the file-size limit, EFBIG, standing in for a full disk) stops
#     the run with an error naming the file, the last checkpoint intact; the resume completes the log;
#   - a resumed run takes --data for a moved data folder, and refuses a folder with other data;
#   - out of memory while building the model exits 1 with a message (skipped under ASan: it reserves
#     more address space than the limit);
#   - messages: a directory as checkpoint, --resume "", --data FILE, eval --batches -1, an empty split
#     (refused when the data is opened), bytes after a checkpoint's data.
#   tests/tools/train_faults.sh LASGRAD [sanitized 0|1]
set -euo pipefail
lasgrad=$1
sanitized=${2:-0}
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# Train steps 1..N each once, val lines exactly every E steps, one test line.
whole_metrics() {
  local dir=$1 n=$2 e=$3 got
  got=$(grep '"split": "train"' "$dir/metrics.jsonl" | sed 's/.*"step": \([0-9]*\).*/\1/' | tr '\n' ' ')
  [ "$got" = "$(seq -s ' ' 1 "$n") " ] || fail "$dir: train steps are '$got'"
  got=$(grep '"split": "val"' "$dir/metrics.jsonl" | sed 's/.*"step": \([0-9]*\).*/\1/' | tr '\n' ' ')
  [ "$got" = "$(seq -s ' ' "$e" "$e" "$n") " ] || fail "$dir: val steps are '$got'"
  [ "$(grep -c '"split": "test"' "$dir/metrics.jsonl")" = 1 ] || fail "$dir: not exactly one test line"
}

"$lasgrad" gen listops --out data --seed 5 --train 200 --val 32 --test 32 --min-length 10 --max-length 30 --quiet
expect_fail 2 "data/basic_train.tsv already exists; give --overwrite" \
  "$lasgrad" gen listops --out data --seed 6 --train 10 --val 2 --test 2 --min-length 10 --max-length 30 --quiet
"$lasgrad" gen listops --out data --seed 5 --train 200 --val 32 --test 32 --min-length 10 --max-length 30 --quiet --overwrite

T=(train --task listops --data data --preset small --progress lines --set layers=1 --set width=16 --set heads=2
   --set warmup=2 --set threads=1 --set log_every=1)

# 1. The lock, then SIGTERM.
"$lasgrad" "${T[@]}" --set steps=3000 --set eval_every=50 --out R > r1.log 2>&1 &
pid=$!
for _ in $(seq 1 1200); do [ -f R/last.safetensors ] && break; sleep 0.05; done
[ -f R/last.safetensors ] || fail "the first run wrote no checkpoint"
expect_fail 1 "run directory R is in use by another lasgrad (pid $pid" "$lasgrad" "${T[@]}" --set steps=10 --out R
kill -TERM $pid
status=0
wait $pid || status=$?
[ "$status" = 130 ] || { cat r1.log; fail "SIGTERM gave exit status $status, not 130"; }
grep -q "interrupted at step" r1.log || fail "SIGTERM wrote no checkpoint"
expect_fail 1 "already holds a partial run" "$lasgrad" "${T[@]}" --set steps=10 --out R
"$lasgrad" train --resume R/last.safetensors --progress lines > r2.log 2>&1 || { cat r2.log; fail "resume after SIGTERM failed"; }
whole_metrics R 3000 50
expect_fail 1 "already holds a finished run" "$lasgrad" "${T[@]}" --set steps=10 --out R
"$lasgrad" "${T[@]}" --set steps=10 --set eval_every=5 --out R --overwrite > r3.log 2>&1 || fail "--overwrite failed"
whole_metrics R 10 5

# 2. kill -9 at several moments: at random, and (even rounds) inside a checkpoint write. An even round
#    watches for this run's checkpoint temporary (named after its PID; a killed run's stale one does not
#    count), freezes the run with SIGSTOP when one appears, and kills it if the temporary is still there,
#    that is, if the run stopped before renaming it; otherwise it lets the run go on and watches again.
#    A busy machine can then make a round miss only by ending the run before a write is seen, so after
#    the fourth round more rounds follow, up to ten, until one has landed.
K=("${T[@]}" --set layers=2 --set width=128 --set heads=4 --set steps=32 --set eval_every=1 --out K)
in_write=0
round=0
while [ "$round" -lt 4 ] || { [ "$in_write" = 0 ] && [ "$round" -lt 10 ]; }; do
  round=$((round + 1))
  # A run that finished before a kill landed starts afresh: resuming it would end at once, and the
  # rounds after it would wait for a checkpoint write that never comes.
  if [ -f K/last.safetensors ] && ! grep -q '"split": "test"' K/metrics.jsonl 2>/dev/null; then
    "$lasgrad" train --resume K/last.safetensors --progress lines > k.log 2>&1 &
  else
    "$lasgrad" "${K[@]}" --overwrite > k.log 2>&1 &
  fi
  pid=$!
  if [ $((round % 2)) = 0 ]; then
    deadline=$((SECONDS + 120))
    while kill -0 $pid 2>/dev/null && [ $SECONDS -lt $deadline ]; do
      compgen -G "K/*.safetensors.tmp.$pid" >/dev/null || continue
      kill -STOP $pid 2>/dev/null || break
      compgen -G "K/*.safetensors.tmp.$pid" >/dev/null && break
      kill -CONT $pid 2>/dev/null || break
    done
  else
    sleep "0.$((3 + RANDOM % 6))"
  fi
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  compgen -G "K/*.safetensors.tmp.$pid" >/dev/null && in_write=$((in_write + 1))
done
[ "$in_write" -ge 1 ] || fail "no kill landed during a checkpoint write"
if grep -q '"split": "test"' K/metrics.jsonl 2>/dev/null; then
  :  # the last round's run finished before its kill
elif [ -f K/last.safetensors ]; then
  "$lasgrad" train --resume K/last.safetensors --progress lines > k.log 2>&1 || { cat k.log; fail "the resume after kill -9 failed"; }
else
  "$lasgrad" "${K[@]}" --overwrite > k.log 2>&1
fi
ls K/*.safetensors.tmp.* >/dev/null 2>&1 && fail "stale checkpoint temporaries were left in K"
whole_metrics K 32 1
echo "kill -9: $round kills, $in_write during a checkpoint write; resumed with whole metrics"

# 3. A failing metrics write (a 64 KiB file-size limit; SIGXFSZ ignored, so write() fails with EFBIG).
status=0
(trap '' XFSZ; ulimit -f 64; exec "$lasgrad" "${T[@]}" --set steps=700 --set eval_every=50 --out M) > m.log 2>&1 || status=$?
[ "$status" = 1 ] || { cat m.log; fail "a failed metrics write gave exit status $status"; }
grep -q "cannot write M/metrics.jsonl at step .*the last good checkpoint M/last.safetensors is intact" m.log ||
  { cat m.log; fail "the metrics write failure was not reported"; }
"$lasgrad" train --resume M/last.safetensors --progress lines > m2.log 2>&1 || { cat m2.log; fail "resume after the write failure failed"; }
whole_metrics M 700 50

# 4. A moved data folder: --data on resume; other data is refused.
"$lasgrad" "${T[@]}" --set steps=40 --set eval_every=10 --out D > d.log 2>&1 &
pid=$!
for _ in $(seq 1 1500); do [ -f D/last.safetensors ] && break; sleep 0.02; done
kill -INT $pid; wait $pid || true
mv data moved
expect_fail 1 "the run's data folder data (.*/data) is not here; give --data DIR" "$lasgrad" train --resume D/last.safetensors
"$lasgrad" gen listops --out other --seed 9 --train 100 --val 32 --test 32 --min-length 10 --max-length 30 --quiet
expect_fail 1 "is not what D/last.safetensors trained on" "$lasgrad" train --resume D/last.safetensors --data other
if grep -q '"split": "test"' D/metrics.jsonl; then echo "(the run finished before the interrupt; --data on resume untested)";
else "$lasgrad" train --resume D/last.safetensors --data moved --progress lines > d2.log 2>&1 || { cat d2.log; fail "resume with --data failed"; }; fi
mv moved data

# 5. Out of memory while building the model.
if [ "$sanitized" = 0 ]; then
  expect_fail 1 "out of memory" bash -c "ulimit -v 2000000; exec '$lasgrad' ${T[*]} --set layers=100000 --set width=64 --out O"
fi

# 6. Messages that say what is wrong.
expect_fail 1 "R: is a directory, not a safetensors file" "$lasgrad" eval --checkpoint R
expect_fail 2 "--resume needs a checkpoint file" "$lasgrad" train --resume ""
expect_fail 1 "data folder data/basic_train.tsv is a file, not a folder" \
  "$lasgrad" train --task listops --data data/basic_train.tsv --out X
expect_fail 2 "--batches must be >= 0" "$lasgrad" eval --checkpoint R/best.safetensors --batches -1
"$lasgrad" gen listops --out empty --seed 5 --train 0 --val 8 --test 8 --min-length 10 --max-length 30 --quiet
expect_fail 1 "the train split of listops in empty has no examples" "$lasgrad" train --task listops --data empty --out E
cp R/last.safetensors trailing.safetensors && printf 'x' >> trailing.safetensors
expect_fail 1 "1 bytes after the last tensor's data belong to no tensor" "$lasgrad" eval --checkpoint trailing.safetensors
echo "train fault tests passed"
