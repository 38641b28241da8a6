#!/usr/bin/env bash
# The paper's full protocol (docs/las-attention.md §4): every LRA task and sMNIST / psMNIST, softmax, LaS
# and LaS-Chunk, 3 seeds, the `paper` preset (6 blocks of width 256, 8 heads, the paper's and S4's
# per-task optimisation and epochs). That is days of compute on a CPU: it is meant for a big machine or a
# GPU. Each task is one resumable sweep in $OUT/<task>; a task that fails (its data missing, say) is
# reported and the others go on.
#   tools/paper_protocol.sh LRA_ROOT MNIST_DIR [flags for every sweep, e.g. --set device=cuda --jobs 1]
# LRA_ROOT holds the release's folders: listops-1000, aclImdb, tsv_data, cifar-10-batches-bin,
# pathfinder32/<difficulty>, pathfinder128/<difficulty> (docs/data.md). Environment: LASGRAD (default
# build/lasgrad), OUT (default runs/paper), SEEDS (default 1,2,3), TASKS (default: all eight).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: tools/paper_protocol.sh LRA_ROOT MNIST_DIR [sweep flags]" >&2; exit 2; }
lra=$1 mnist=$2
shift 2
L=${LASGRAD:-build/lasgrad}
out=${OUT:-runs/paper}
failed=""
for task in ${TASKS:-listops text retrieval image pathfinder pathx smnist psmnist}; do
  data=$lra
  case $task in smnist | psmnist) data=$mnist ;; esac
  echo "== $task"
  "$L" sweep --task "$task" --data "$data" --preset paper --variants softmax,las,las-chunk --seeds "${SEEDS:-1,2,3}" \
    --out "$out/$task" "$@" || failed="$failed $task"
done
[ -z "$failed" ] || { echo "tools/paper_protocol.sh: the sweeps of$failed did not finish (see $out/<task>/summary.md)" >&2; exit 1; }
