#!/usr/bin/env bash
# Checkpoints written before a change still load and continue: tests/reference/checkpoint-2026-12 holds a
# checkpoint made by the code of December 2026 (tests/reference/make_checkpoint_fixture.sh), its data,
# and the eval lines that code printed.
#   - lasgrad eval of the checkpoint prints the same accuracy and loss;
#   - a run resumed from it (step 2 of 4; with --allow-gaps, as its metrics.jsonl is not in the fixture)
#     ends where the original uninterrupted run ended: the same eval of its last.safetensors, and its
#     test line evaluates the same best checkpoint (it has no checksums: they came later);
#   - a resume whose folder lacks the best checkpoint it records is refused before training.
#   tests/tools/checkpoint_compat.sh LASGRAD
set -euo pipefail
lasgrad=$1
fixture=$(cd "$(dirname "$0")/../reference/checkpoint-2026-12" && pwd)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
eval_line() { "$lasgrad" eval --checkpoint "$1" --data "$fixture/data" | sed 's/^[^ ]* //'; }

[ "$(eval_line "$fixture/best.safetensors")" = "$(sed -n 1p "$fixture/expected.txt")" ] ||
  fail "the old checkpoint evaluates to '$(eval_line "$fixture/best.safetensors")', not '$(sed -n 1p "$fixture/expected.txt")'"

# The checkpoint alone, without its run's metrics.jsonl: a resume needs --allow-gaps, which records the
# missing lines (those of step 2).
mkdir run && cp "$fixture/best.safetensors" run/best.safetensors
"$lasgrad" train --resume run/best.safetensors --data "$fixture/data" --allow-gaps > resume.log 2>&1 ||
  { cat resume.log; fail "resume"; }
grep -q '"split": "gap", "step": 2, "from": 2, "to": 2' run/metrics.jsonl || { cat run/metrics.jsonl; fail "no gap line"; }
grep -q "resuming after step 2" resume.log || { cat resume.log; fail "the resume did not start after step 2"; }
[ "$(eval_line run/last.safetensors)" = "$(sed -n 2p "$fixture/expected.txt")" ] ||
  fail "the resumed run ends at '$(eval_line run/last.safetensors)', the original at '$(sed -n 2p "$fixture/expected.txt")'"
grep -q "test accuracy" resume.log || fail "the resumed run did not test its best checkpoint"

mkdir lost && cp "$fixture/best.safetensors" lost/ckpt.safetensors
status=0
"$lasgrad" train --resume lost/ckpt.safetensors --data "$fixture/data" > lost.log 2>&1 || status=$?
[ "$status" = 1 ] && grep -q "best.safetensors is missing" lost.log || { cat lost.log; fail "a resume without its best checkpoint"; }
[ ! -e lost/last.safetensors ] || fail "the refused resume trained"
echo "checkpoint_compat: all checks passed"
