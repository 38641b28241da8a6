#!/usr/bin/env bash
# Defects a hostile-use campaign found in the lasgrad program (issue 27), one case each; every case failed
# on commit fa46bfc. The two that hung there run under a time limit.
#   tests/tools/hostile_inputs.sh LASGRAD
set -euo pipefail
lasgrad=$1
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
expect() { local want=$1 pattern=$2; shift 2; expect_fail "$want" "$pattern" "$lasgrad" "$@"; }  # STATUS PATTERN ARGS...
"$lasgrad" gen listops --out d --seed 5 --train 64 --val 16 --test 16 --min-length 10 --max-length 30 --quiet
T=(train --task listops --data d --preset small --progress lines --set layers=1 --set width=16 --set heads=2
   --set steps=4 --set warmup=1 --set eval_every=2)

# 1, 2. threads: at most 1024 anywhere (train segfaulted at 100000); a count above the cores runs on the
# cores, and says so (2000 threads made 4 steps take 27.6 s).
expect 2 "config: threads must be <= 1024, got '100000'" "${T[@]}" --set threads=100000 --out R0
[ ! -e R0/metrics.jsonl ] || fail "a refused run wrote metrics"
"$lasgrad" "${T[@]}" --set threads=1000 --out R1 > r1.log 2>&1 || { cat r1.log; fail "threads = 1000 failed"; }
grep -q "threads = 1000 is more than this machine's .* cores: using" r1.log || { cat r1.log; fail "the thread cap was not said"; }
expect 2 "--threads must be in 0..1024 (0: the run's setting), got 20000" eval --checkpoint R1/best.safetensors --threads 20000
expect 2 "--threads must be in 1..1024, got 2000" sweep --task listops --data d --out S --threads 2000
expect 2 "--threads must be in 0..1024, got 100000" gen listops --out g0 --threads 100000
"$lasgrad" gen listops --out g1 --train 8 --val 2 --test 2 --min-length 10 --max-length 30 --threads 1000 --quiet ||
  fail "gen --threads 1000 failed"

# 3, 4. gen listops with bounds no tree meets, or too few distinct trees for the count: a clear error in
# bounded time, no file left behind, and the rerun is not refused as "already exists".
for bounds in "1 3 10" "1 5 5000"; do
  read -r lo hi n <<< "$bounds"
  status=0
  timeout 300 "$lasgrad" gen listops --out g2 --min-length "$lo" --max-length "$hi" --train "$n" --val 1 --test 1 --quiet \
    > g.log 2>&1 || status=$?
  [ "$status" = 1 ] || { cat g.log; fail "gen with bounds $lo-$hi and $n trees exited $status (124: hung)"; }
  grep -q "brought no new one" g.log || { cat g.log; fail "gen with bounds $lo-$hi did not say why"; }
  [ -z "$(ls -A g2)" ] || { ls g2; fail "gen with bounds $lo-$hi left files"; }
done

# 5, 21. Sweep lists: a grid key given twice, and empty items, are refused.
expect 1 "the grid varies pool twice" sweep --task listops --data d --out S --grid pool=3 --grid pool=5
expect 2 "grid pool: '3,,5' has an empty item" sweep --task listops --data d --out S --grid pool=3,,5
expect 2 "--seeds: '1,,2' has an empty item" sweep --task listops --data d --out S --seeds 1,,2
expect 2 "config: alphas: '0.1,' has an empty item" "${T[@]}" --set alphas=0.1, --out R2
[ ! -e S ] || fail "a refused sweep made its folder"

# 6, 20. kill -9 of a sweep: its running child dies with it (it checkpoints on the SIGTERM it is sent), and
# the rerun resumes that run (waiting for it if it is still ending) instead of failing it as "in use";
# the summary then holds no stale error.
"$lasgrad" sweep --task listops --data d --out K --variants las --seeds 1 --set layers=1 --set width=16 --set heads=2 \
  --set steps=6000 --set warmup=1 --set eval_every=100 > k1.log 2>&1 &
sweep=$!
for _ in $(seq 1 1500); do [ -f K/las/seed1/last.safetensors ] && break; sleep 0.02; done
[ -f K/las/seed1/last.safetensors ] || { cat k1.log; fail "the sweep's run wrote no checkpoint"; }
child=$(cat K/las/seed1/lock)
kill -9 $sweep
wait $sweep 2>/dev/null || true
for _ in $(seq 1 100); do kill -0 "$child" 2>/dev/null || break; sleep 0.02; done
kill -0 "$child" 2>/dev/null && { kill -9 "$child"; fail "the run outlived its killed sweep (pid $child)"; }
"$lasgrad" sweep --task listops --data d --out K --variants las --seeds 1 --set layers=1 --set width=16 --set heads=2 \
  --set steps=6000 --set warmup=1 --set eval_every=100 > k2.log 2>&1 || { cat k2.log; fail "the rerun after kill -9 failed"; }
grep -q "done   las/seed1" k2.log || { cat k2.log; fail "the rerun did not finish the run"; }
grep -q "FAILED\|in use" K/summary.md && { cat K/summary.md; fail "the summary keeps an error"; }

# 7. A folder given as a settings or spec file is refused, naming it.
mkdir cfgdir
expect 1 "cfgdir: is a folder, not a file" train --config cfgdir --out R3
expect 2 "cfgdir: is a folder, not a file" sweep --spec cfgdir --task listops --data d --out S

# 9, 10. A real file-size limit (SIGXFSZ not ignored by the caller): a clean error naming the file and
# the true cause, not a kill by the signal.
status=0
(ulimit -f 8; exec "$lasgrad" "${T[@]}" --set steps=400 --set eval_every=100 --set log_every=1 --out M) > m.log 2>&1 || status=$?
[ "$status" = 1 ] || { cat m.log; fail "a file past ulimit -f gave exit status $status"; }
grep -q "cannot write M/.*(File too large)" m.log || { cat m.log; fail "the write failure did not name its cause"; }

# 21. Flags outside their range.
"$lasgrad" "${T[@]}" --out A > a.log 2>&1 || { cat a.log; fail "training for the attn checks failed"; }
expect 2 "--query must be a position >= 0, or -1 for the last, got -2" attn --checkpoint A/best.safetensors --out maps --query -2
expect 2 "--max-tokens must be >= 0, got -5" attn --checkpoint A/best.safetensors --out maps --max-tokens -5
expect 2 "--max-length must be >= 0, got -1" data inspect --task listops --data d --max-length -1

# 22. A UTF-8 byte order mark before a TOML settings file.
printf '\xef\xbb\xbfwarmup = 1\nsteps = 4\nlayers = 1\nwidth = 16\nheads = 2\ndata = "d"\n' > bom.toml
"$lasgrad" train --config bom.toml --out B --progress lines > b.log 2>&1 || { cat b.log; fail "a TOML file with a BOM was refused"; }
grep -q '^steps = 4' B/config.toml || fail "the BOM file's settings were not used"
# 8. A resume over a damaged metrics.jsonl (cut, a garbage line, deleted) is refused naming the hole, the
# log untouched; --allow-gaps goes on and records the gap, which the report carries.
"$lasgrad" "${T[@]}" --set log_every=1 --out G > g.log 2>&1 || { cat g.log; fail "training for the gap checks failed"; }
cp G/metrics.jsonl whole.jsonl  # train 1, 2, val 2, train 3, 4, val 4, test
head -n 2 whole.jsonl > G/metrics.jsonl
cp G/metrics.jsonl cut.jsonl
expect 1 "G/metrics.jsonl lacks the lines of 3 step(s) between 2 and 4" train --resume G/last.safetensors
cmp -s cut.jsonl G/metrics.jsonl || fail "a refused resume changed the log"
sed '2i garbage' whole.jsonl > G/metrics.jsonl
expect 1 "line 2 of G/metrics.jsonl is not a metrics line" train --resume G/last.safetensors
rm G/metrics.jsonl
expect 1 "G/metrics.jsonl is missing" train --resume G/last.safetensors
cp cut.jsonl G/metrics.jsonl
"$lasgrad" train --resume G/last.safetensors --allow-gaps > g2.log 2>&1 || { cat g2.log; fail "--allow-gaps did not resume"; }
grep -q "recorded as a gap in the log" g2.log || { cat g2.log; fail "--allow-gaps did not say what it did"; }
grep -q '"split": "gap", "step": 4, "from": 2, "to": 4' G/metrics.jsonl || { cat G/metrics.jsonl; fail "no gap line"; }
"$lasgrad" report G > /dev/null || fail "report of a run with a gap"
grep -q '"gaps":\[\[2' G/report.html || fail "the report does not carry the gap"

# 11. A split without newlines (/dev/zero) is refused after 64 MiB, not read whole.
mkdir z && ln -s /dev/zero z/basic_train.tsv && cp d/basic_val.tsv d/basic_test.tsv z/
status=0
timeout 300 "$lasgrad" data inspect --task listops --data z --split train > z.log 2>&1 || status=$?
[ "$status" = 1 ] || { cat z.log; fail "a split of zeros gave exit status $status (124: still reading)"; }
grep -q "line 1 runs past 64 MiB without a newline" z.log || { cat z.log; fail "the endless line was not named"; }

# 12. Pathfinder metadata listing an image twice: the image is kept once, with a note (400 examples from
# 200 images leaked across the splits).
"$lasgrad" gen pathfinder --out pf --size 32 --count 40 --per-batch 40 --seed 1 --quiet
meta=pf/pathfinder32/curv_contour_length_14/metadata
cp $meta/0.npy $meta/1.npy
"$lasgrad" data inspect --task pathfinder --data pf > pf.log 2>&1 || { cat pf.log; fail "inspect of repeated metadata"; }
grep -q "\[train\] 32 examples" pf.log || { cat pf.log; fail "a repeated image was counted twice"; }
grep -q "skipped 40 metadata line(s) naming an image listed before" pf.log || { cat pf.log; fail "no note of the repeats"; }

# 13, 14. A checkpoint with a flipped bit, or with settings that are not valid, is refused naming the file.
cp A/best.safetensors flipped.safetensors
printf '\x01' | dd of=flipped.safetensors bs=1 seek=$(($(stat -c %s flipped.safetensors) - 1)) conv=notrunc 2> /dev/null
expect 1 "flipped.safetensors: .* does not match its checksum" eval --checkpoint flipped.safetensors
python3 - A/best.safetensors heads.safetensors <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
header["__metadata__"]["config.heads"] = "0"
text = json.dumps(header).encode()
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n:])
PY
expect 1 "heads.safetensors: the settings it holds are not valid: config: heads must be >= 1" eval --checkpoint heads.safetensors

# 15, 23. A resume from another working folder finds the run's data; a resume into another --out takes
# the run's log and best checkpoint along; data that is nowhere is named with a hint at --data.
mkdir -p far/away
(cd far/away && "$lasgrad" train --resume ../../A/last.safetensors --out ../../A15) > a15.log 2>&1 ||
  { cat a15.log; fail "a resume from another working folder did not find the data"; }
grep -q "test accuracy" a15.log || { cat a15.log; fail "the resume from elsewhere did not finish"; }
"$lasgrad" train --resume A/last.safetensors --out A2 > a2.log 2>&1 || { cat a2.log; fail "a resume into another --out"; }
[ -f A2/best.safetensors ] && grep -q '"split": "test"' A2/metrics.jsonl || fail "the resume into A2 lacks the run's files"
mv d d.moved
expect 1 "is not here; give --data DIR where its data is now" train --resume A/last.safetensors --out A3
mv d.moved d

# 16. report never writes over a file that is not a report: here the run's own metrics.
cp A/metrics.jsonl keep.jsonl
expect 2 "is not a report that lasgrad wrote" report A --out A/metrics.jsonl --overwrite
cmp -s keep.jsonl A/metrics.jsonl || fail "report overwrote the run's metrics"

# 17. A sweep does not move into a single run's folder.
expect 1 "sweep: A holds a finished run" sweep --task listops --data d --out A --variants las --seeds 1
[ ! -e A/las ] || fail "the refused sweep wrote into the run"

# 23. Messages: a file given as the data folder; no --resume suggested where there is nothing to resume;
# an unknown name in --set is a usage error (exit 2), as is any value its setting refuses.
expect 1 "data folder d/basic_train.tsv is a file, not a folder" train --task listops --data d/basic_train.tsv --out R5
mkdir C && cp A/config.toml C/
expect 1 "already holds the start of a run" "${T[@]}" --out C
grep -q -- "--resume" out.log && { cat out.log; fail "a folder without a checkpoint was offered --resume"; }
expect 2 "config: task = 'bogus' is not one of" "${T[@]}" --set task=bogus --out R6

# 24. A run refused before it writes anything leaves no folder behind (it held only the lock).
expect 1 "data folder nothere does not exist" train --task listops --data nothere --out L24
[ ! -e L24 ] || { ls -A L24; fail "a refused run left its folder"; }

# 18. --overwrite removes what lasgrad wrote for the old run (its report, attn's figures), not the user's files.
"$lasgrad" report A --out A/report.html > /dev/null || fail "report for the overwrite check"
"$lasgrad" attn --checkpoint A/best.safetensors --index 0 --out A/attn > /dev/null || fail "attn for the overwrite check"
echo mine > A/notes.txt
echo mine > A/attn/mine.txt
"$lasgrad" "${T[@]}" --out A --overwrite > o.log 2>&1 || { cat o.log; fail "--overwrite"; }
[ ! -e A/report.html ] || fail "--overwrite kept the old report"
[ ! -e A/attn/curves.png ] && [ ! -e A/attn/alphas.txt ] || { ls A/attn; fail "--overwrite kept attn's figures"; }
[ -f A/notes.txt ] && [ -f A/attn/mine.txt ] || fail "--overwrite removed the user's files"
echo "hostile inputs: all checks passed"
