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
expect 1 "threads must be <= 1024 (0 = all cores), got 100000" "${T[@]}" --set threads=100000 --out R0
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
expect 1 "config: alphas: '0.1,' has an empty item" "${T[@]}" --set alphas=0.1, --out R2
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
echo "hostile inputs: all checks passed"
