#!/usr/bin/env bash
# Threads under contention: steps/s of one training run with threads = 1 and 2, alone and beside a second
# training (threads = 1) that keeps another core busy. OMP_WAIT_POLICY (default active) is passed on:
# passive measured worse beside another job (5.9 against 9.8 steps/s with 2 fixed threads).
#   tools/bench/bench_threads.sh [LASGRAD] [STEPS]     (default build/lasgrad, 150 steps)
# The model is the `small` preset on generated ListOps of 11-99 tokens (where threads = 2 once ran 20x
# slower than threads = 1 beside another job). Run it on an otherwise idle machine.
set -euo pipefail
L=${1:-build/lasgrad}
steps=${2:-150}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$L" gen listops --out "$work/data" --seed 0 --train 4000 --val 100 --test 100 --min-length 10 --max-length 100 --quiet
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $steps steps of the small preset"
printf "%-8s %-8s %-18s %s\n" policy threads "other core" "steps/s"
rate() {  # rate POLICY THREADS: steps/s of the run, from its last progress line
  OMP_WAIT_POLICY=$1 "$L" train --task listops --data "$work/data" --preset small --out "$work/run" --overwrite \
    --progress lines --set steps="$steps" --set eval_every=100000 --set threads="$2" --set log_every=10 |
    grep -o '[0-9.]* steps/s' | tail -1 | cut -d' ' -f1
}
for policy in ${OMP_WAIT_POLICY:-active}; do
  for threads in 1 2; do
    printf "%-8s %-8s %-18s %s\n" $policy $threads idle "$(rate $policy $threads)"
    OMP_WAIT_POLICY=$policy "$L" train --task listops --data "$work/data" --preset small --out "$work/busy" --overwrite \
      --progress lines --set steps=1000000 --set eval_every=1000000 --set threads=1 > /dev/null 2>&1 &
    busy=$!
    sleep 1
    printf "%-8s %-8s %-18s %s\n" $policy $threads "another training" "$(rate $policy $threads)"
    kill $busy; wait $busy 2>/dev/null || true
  done
done
