#!/usr/bin/env bash
# lasgrad sweep end to end on a tiny generated ListOps set: 2 variants x 2 seeds; the sweep and its runs
# are killed with SIGKILL mid-run, then the same command resumes the unfinished runs and skips the
# finished ones; every run's metrics.jsonl ends with no duplicated or missing steps; summary.json's
# means and standard deviations equal those computed here from the runs' own metrics with awk; a run
# folder made with other settings is refused, a failed run is reported and the others go on.
set -euo pipefail
lasgrad=$1
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$lasgrad" gen listops --out data --seed 3 --train 300 --val 64 --test 64 --min-length 10 --max-length 40 --quiet
sweep=("$lasgrad" sweep --task listops --data data --variants softmax,las --seeds 1,2 --jobs 2 --out S
       --set steps=400 --set warmup=5 --set eval_every=20 --set log_every=10 --set layers=1 --set width=16 --set heads=2)

# 1. Start, and kill everything with SIGKILL once a run has checkpointed mid-way.
"${sweep[@]}" > first.log 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  ls S/*/seed*/last.safetensors >/dev/null 2>&1 && break
  sleep 0.05
done
ls S/*/seed*/last.safetensors >/dev/null 2>&1 || fail "no run checkpointed"
kill -9 $pid $(pgrep -P $pid) 2>/dev/null || true
wait || true
partial=0
for d in S/*/seed*; do
  [ -f "$d/last.safetensors" ] && ! grep -q '"split": "test"' "$d/metrics.jsonl" && partial=$((partial + 1))
done
[ "$partial" -ge 1 ] || fail "the kill left no interrupted run to resume"

# 2. The same command resumes them and finishes the sweep.
"${sweep[@]}" > second.log 2>&1 || { cat second.log; fail "the resumed sweep failed"; }
grep -q "^resume " second.log || { cat second.log; fail "nothing was resumed"; }
grep -q "4 runs" second.log || fail "the sweep did not count 4 runs"

# 3. A third invocation finds everything done and runs nothing.
"${sweep[@]}" > third.log 2>&1
grep -q "4 done, 0 to run" third.log || { cat third.log; fail "finished runs were not skipped"; }

# 4. Every run's metrics: train lines at 10, 20, ..., 400, val lines at 20, 40, ..., 400, one test line.
for d in S/*/seed*; do
  got=$(grep '"split": "train"' "$d/metrics.jsonl" | sed 's/.*"step": \([0-9]*\).*/\1/' | tr '\n' ' ')
  [ "$got" = "$(seq -s ' ' 10 10 400) " ] || fail "$d: train steps are '$got'"
  got=$(grep '"split": "val"' "$d/metrics.jsonl" | sed 's/.*"step": \([0-9]*\).*/\1/' | tr '\n' ' ')
  [ "$got" = "$(seq -s ' ' 20 20 400) " ] || fail "$d: val steps are '$got'"
  [ "$(grep -c '"split": "test"' "$d/metrics.jsonl")" = 1 ] || fail "$d: not exactly one test line"
done

# 5. summary.json against the statistics computed here: per group the mean and sample std over seeds
#    of each run's best val accuracy (max over val lines) and of its test accuracy.
for group in softmax las; do
  stats=$(for d in S/$group/seed*; do
    awk -F'"accuracy": ' '/"split": "val"/ { split($2, a, /[,}]/); if (a[1] > best) best = a[1] }
                          /"split": "test"/ { split($2, a, /[,}]/); test = a[1] }
                          END { printf "%.9f %.9f\n", best, test }' "$d/metrics.jsonl"
  done | awk '{ v[NR] = $1; t[NR] = $2; sv += $1; st += $2 }
              END { mv = sv / NR; mt = st / NR; for (i = 1; i <= NR; i++) { dv += (v[i] - mv)^2; dt += (t[i] - mt)^2 }
                    printf "%.6f %.6f %.6f %.6f\n", mv, sqrt(dv / (NR - 1)), mt, sqrt(dt / (NR - 1)) }')
  mine=$(python3 -c 'import json, sys
g = [g for g in json.load(open("S/summary.json"))["groups"] if g["group"] == sys.argv[1]][0]
print("%.6f %.6f %.6f %.6f" % (g["val_mean"], g["val_std"], g["test_mean"], g["test_std"]))' "$group")
  [ "$mine" = "$stats" ] || fail "$group: summary.json says '$mine', the runs' metrics give '$stats'"
  echo "$group: val mean/std, test mean/std = $stats (summary.json agrees)"
done
for f in summary.md summary.png; do [ -s "S/$f" ] || fail "no S/$f"; done
# The trivial baselines, computed here from the TSVs: the training split's most common label, and per root
# operator (the first [OP token) its most common label, each scored on the test split.
want=$(awk -F'\t' 'FNR == 1 { next }
  { op = match($1, /\[(MIN|MAX|MED|SM)/) ? substr($1, RSTART, RLENGTH) : "" }
  FILENAME ~ /train/ { n[$2]++; if (op != "") r[op, $2]++; next }
  !fitted { fitted = 1; maj = 0; for (l = 1; l < 10; l++) if (n[l] > n[maj]) maj = l  # ties: the smaller label
            split("[MIN [MAX [MED [SM", names, " ")
            for (i in names) { o = names[i]; rule[o] = maj; best = -1
                               for (l = 0; l < 10; l++) if (r[o, l] > best) { best = r[o, l]; if (best > 0) rule[o] = l } } }
  { t++; m += $2 == maj; k += $2 == (op == "" ? maj : rule[op]) }
  END { printf "%.6f %.6f", m / t, k / t }' data/basic_train.tsv data/basic_test.tsv)
got=$(python3 -c 'import json; b = {x["name"]: x["test"] for x in json.load(open("S/summary.json"))["baselines"]}
print("%.6f %.6f" % (b["majority class"], b["root-operator rule"]))')
[ "$want" = "$got" ] || fail "summary.json's baselines are '$got', the TSVs give '$want'"
grep -q "^| \*root-operator rule\* (fitted on train)" S/summary.md || fail "summary.md has no root-operator rule row"
grep -q "lasgrad sweep --task listops --data data --variants softmax,las" S/summary.md || fail "summary.md lacks the command"

# 6. Other settings on the same folder are refused, and nothing there changes.
before=$(md5sum S/las/seed1/metrics.jsonl)
if "${sweep[@]}" --set lr=1e-2 > other.log 2>&1; then fail "a sweep with other settings ran on the same folder"; fi
grep -q "holds a run with lr = 0.002, this sweep asks 0.01" other.log || { cat other.log; fail "unclear refusal"; }
[ "$(md5sum S/las/seed1/metrics.jsonl)" = "$before" ] || fail "the refused sweep changed a run"

# 7. A failing run is reported with its error; the other runs go on; the exit status is 1.
status=0
"$lasgrad" sweep --task listops --data data --variants softmax --variant broken:data=nowhere --seeds 1 --out F \
  --set steps=20 --set warmup=2 --set eval_every=10 > failed.log 2>&1 || status=$?
[ "$status" = 1 ] || { cat failed.log; fail "a failed run gave exit status $status"; }
grep -q '"split": "test"' F/softmax/seed1/metrics.jsonl || fail "the healthy run did not finish"
grep -q "broken/seed1 | new | .*data folder nowhere does not exist" F/summary.md || { cat F/summary.md; fail "the error is not in the summary"; }
# 8. A malformed spec file is a usage error naming the file and the line.
printf 'variants = softmax\nseeds 1,2\n' > bad.spec
status=0
"$lasgrad" sweep --spec bad.spec --data data --out B > spec.log 2>&1 || status=$?
[ "$status" = 2 ] || { cat spec.log; fail "a malformed spec file gave exit status $status"; }
grep -q "bad.spec:2: expected 'name = value', got 'seeds 1,2'" spec.log || { cat spec.log; fail "unclear spec error"; }
echo "sweep smoke test passed"
