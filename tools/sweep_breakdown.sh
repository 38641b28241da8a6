#!/usr/bin/env bash
# A ListOps sweep's test accuracy by root operator, per variant: `lasgrad eval --breakdown` of every
# finished run's best checkpoint (kept in RUN/breakdown.txt, so a rerun evaluates only new runs), then
# per variant the mean over its seeds of the accuracy on the expressions rooted at each operator, as a
# Markdown table. Where the root-operator rule (`lasgrad data inspect`) is all a model learned, these
# equal the rule's own per-operator accuracies; learning past it shows as gains on MED and SM.
#   tools/sweep_breakdown.sh SWEEP_DIR [LASGRAD]     (default: build/lasgrad; evaluations nice'd, 1 thread)
set -euo pipefail
sweep=${1:?usage: tools/sweep_breakdown.sh SWEEP_DIR [LASGRAD]}
L=${2:-build/lasgrad}
for best in "$sweep"/*/seed*/best.safetensors; do
  run=$(dirname "$best")
  grep -q '"split": "test"' "$run/metrics.jsonl" 2> /dev/null || continue  # not finished
  [ -s "$run/breakdown.txt" ] && continue
  nice -n 19 "$L" eval --checkpoint "$best" --breakdown --threads 1 > "$run/breakdown.tmp"
  mv "$run/breakdown.tmp" "$run/breakdown.txt"
done
echo "| variant | seeds | test | MIN | MAX | MED | SM |"
echo "|---|---|---|---|---|---|---|"
for group in "$sweep"/*/; do
  ls "$group"seed*/breakdown.txt > /dev/null 2>&1 || continue
  cat "$group"seed*/breakdown.txt | awk -v name="$(basename "$group")" '
    /test split of listops: accuracy/ { for (i = 1; i <= NF; ++i) if ($i == "accuracy") { v = $(i + 1); sub(/%,?/, "", v); all += v } ++n }
    $1 ~ /^(MIN|MAX|MED|SM)$/ { v = $2; sub(/%/, "", v); sum[$1] += v }
    END { printf "| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", name, n, all / n, sum["MIN"] / n, sum["MAX"] / n, sum["MED"] / n, sum["SM"] / n }'
done
