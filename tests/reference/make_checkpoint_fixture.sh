#!/usr/bin/env bash
# Writes tests/reference/checkpoint-2026-12/: a checkpoint of today's format, kept so that later
# changes are tested to still load it (tests/tools/checkpoint_compat.sh). Run once, by hand, and commit
# the result; running it again replaces the fixture and defeats its purpose.
#   tests/reference/make_checkpoint_fixture.sh LASGRAD
# It holds a tiny generated ListOps set (48 / 16 / 16 expressions), best.safetensors (a full checkpoint,
# with the optimizer state, at step 2 of a 4-step run: its best validation step) and expected.txt: the
# `lasgrad eval` lines of that checkpoint and of the run's last.safetensors (step 4), which a run resumed
# from step 2 must reproduce.
set -euo pipefail
lasgrad=$1
out=$(cd "$(dirname "$0")" && pwd)/checkpoint-2026-12
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$out" && mkdir -p "$out"
"$lasgrad" gen listops --out "$out/data" --seed 11 --train 48 --val 16 --test 16 --min-length 8 --max-length 24 --quiet
"$lasgrad" train --task listops --data "$out/data" --out "$work/run" --set layers=2 --set width=16 --set heads=2 \
  --set warmup=2 --set log_every=2 --set eval_every=2 --set batch_size=8 --set steps=4 > /dev/null
grep -q '"split": "test", "step": 2,' "$work/run/metrics.jsonl" || { echo "the best step is not 2" >&2; exit 1; }
cp "$work/run/best.safetensors" "$out/best.safetensors"
{ "$lasgrad" eval --checkpoint "$work/run/best.safetensors" --data "$out/data" | sed 's/^[^ ]* //'
  "$lasgrad" eval --checkpoint "$work/run/last.safetensors" --data "$out/data" | sed 's/^[^ ]* //'; } > "$out/expected.txt"
cat "$out/expected.txt"
