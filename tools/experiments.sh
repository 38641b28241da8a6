#!/usr/bin/env bash
# The measurements of docs/results.md, in order of priority, on this machine: data generation, then one
# `lasgrad sweep` per table. Every sweep is resumable: run this script again after an interruption and it
# skips finished runs and resumes the others. Results go to runs/sweeps/<name>/summary.{md,json,png}.
#   tools/experiments.sh [LASGRAD]     (default: build/lasgrad; runs nice'd)
# Every variant gets the same model (the small preset: 2 blocks of width 64, 4 heads), the same steps and
# the same untuned learning rate (the preset's 2e-3).
set -euo pipefail
cd "$(dirname "$0")/.."
L=${1:-build/lasgrad}
run() { echo "== $*"; nice -n 10 "$L" "$@"; }
common=(--preset small --set warmup=30 --set log_every=10)

# Data: generated ListOps in three length bands, generated Pathfinder-32, the real MNIST files.
[ -f data-cache/listops-long/basic_test.tsv ] || "$L" gen listops --out data-cache/listops-long --seed 0 \
  --train 10000 --val 500 --test 1000 --min-length 500 --max-length 2000 --quiet
[ -f data-cache/listops-mid/basic_test.tsv ] || "$L" gen listops --out data-cache/listops-mid --seed 0 \
  --train 10000 --val 500 --test 1000 --min-length 250 --max-length 500 --quiet
[ -f data-cache/listops-short/basic_test.tsv ] || "$L" gen listops --out data-cache/listops-short --seed 0 \
  --train 20000 --val 1000 --test 1000 --min-length 10 --max-length 100 --quiet
"$L" data fetch mnist --out data-cache/mnist
[ -d data-cache/pathfinder/pathfinder32 ] || "$L" gen pathfinder --out data-cache/pathfinder --size 32 \
  --count 12000 --seed 0 --quiet

# Table 4, ablations at 250-500 tokens: every variant, 3 seeds.
run sweep --task listops --data data-cache/listops-mid --out runs/sweeps/listops-mid "${common[@]}" \
  --variants softmax,las,local-only,smooth-only,las-gaussian,las-chunk --seeds 1,2,3 \
  --set max_length=512 --set steps=300 --set eval_every=100
# Table 1, the short contrast: 11-99 tokens.
run sweep --task listops --data data-cache/listops-short --out runs/sweeps/listops-short "${common[@]}" \
  --variants softmax,las --seeds 1,2,3 --set steps=600 --set eval_every=100
# Table 5, sensitivity at 250-500 tokens: B, P and C each at two values beside the ablation's defaults
# (B = 0.5, P = 5, C = 32, seed 1).
run sweep --task listops --data data-cache/listops-mid --out runs/sweeps/listops-mid-sensitivity "${common[@]}" \
  --variant B=0.1:decay_max=0.1 --variant B=0.9:decay_max=0.9 --variant P=3:pool=3 --variant P=9:pool=9 \
  --variant C=16:attention=las-chunk,chunk=16 --variant C=64:attention=las-chunk,chunk=64 --variants "" \
  --seeds 1 --set max_length=512 --set steps=300 --set eval_every=100
# Table 1c, five times the budget at 250-500 tokens: does smoothing pay later? softmax against LaS, 1,500
# steps (about 5 epochs), 3 seeds.
run sweep --task listops --data data-cache/listops-mid --out runs/sweeps/listops-mid-long-training "${common[@]}" \
  --variants softmax,las --seeds 1,2,3 --set max_length=512 --set steps=1500 --set eval_every=250
# Table 2, sMNIST (L = 784), real MNIST files.
run sweep --task smnist --data data-cache/mnist --out runs/sweeps/smnist "${common[@]}" \
  --variants softmax,las --seeds 1,2,3 --set steps=200 --set eval_every=100 --set eval_batches=40
# Table 2, psMNIST (the bit-reversal permutation of sMNIST).
run sweep --task psmnist --data data-cache/mnist --out runs/sweeps/psmnist "${common[@]}" \
  --variants softmax,las --seeds 1,2,3 --set steps=200 --set eval_every=100 --set eval_batches=40
# Table 1, the benchmark's bounds (500-2000 tokens): softmax against LaS, one seed.
run sweep --task listops --data data-cache/listops-long --out runs/sweeps/listops-long "${common[@]}" \
  --variants softmax,las --seeds 1 --set max_length=2000 --set steps=300 --set eval_every=100
# Table 3, Pathfinder-32, generated (L = 1024): softmax against LaS, one seed.
run sweep --task pathfinder --data data-cache/pathfinder --out runs/sweeps/pathfinder "${common[@]}" \
  --variants softmax,las --seeds 1 --set steps=200 --set eval_every=100 --set eval_batches=20
