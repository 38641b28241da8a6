#!/usr/bin/env bash
# sMNIST, psMNIST (the real MNIST files) and sFashion-MNIST (Debian's dataset-fashion-mnist), softmax
# against LaS, 3 seeds, 10 epochs of the `small` model: the comparison past early learning that
# docs/results.md's claim 1 asks for. Prepared, not yet run: at 2.5-3.5 s per step on the 2-core
# development machine a run takes about half a day, so this is meant for a GPU (DEVICE=cuda). Every
# sweep is resumable: run the script again and it skips finished runs and resumes the others.
#   DEVICE=cpu|cuda tools/experiments_mnist.sh [LASGRAD]     (default: build/lasgrad; nice'd)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
lasgrad_require "${LASGRAD_DATA_PACKAGES[@]}"
L=${1:-build/lasgrad}
"$L" data fetch mnist --out data-cache/mnist
for task in smnist psmnist sfmnist; do
  data=data-cache/mnist
  [ "$task" = sfmnist ] && data=/usr/share/datasets/fashion-mnist
  echo "== $task"
  start=$SECONDS
  nice -n 19 "$L" sweep --task "$task" --data "$data" --out "runs/sweeps/$task-10epochs" --preset small \
    --set epochs=10 --set steps=0 --set eval_batches=40 --set device="${DEVICE:-cpu}" --variants softmax,las --seeds 1,2,3
  echo "== $task: $((SECONDS - start)) s"
done
