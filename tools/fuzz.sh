#!/usr/bin/env bash
# tools/fuzz.sh [SECONDS]: fuzz the parsers of untrusted files (TSV lines, idx, CIFAR records, PNG +
# Pathfinder metadata, the safetensors header) with clang's libFuzzer under AddressSanitizer and UndefinedBehaviorSanitizer, each target
# for SECONDS (default 30). Builds into build-fuzz/; the corpus grows in build-fuzz/corpus/<target>/,
# and a crashing input is kept as build-fuzz/crashes/<target>-crash-*. Exits non-zero on any finding.
set -euo pipefail
secs=${1:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/build-fuzz
cxx=${FUZZ_CXX:-}
if [[ -z $cxx ]]; then
  for c in clang++ clang++-14; do command -v "$c" >/dev/null && { cxx=$c; break; }; done
fi
[[ -n $cxx ]] || { echo "fuzz.sh: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }

mkdir -p "$out/obj" "$out/corpus" "$out/crashes"
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
common="-std=c++20 -O1 -g -I$root"
objs=()
for src in data/reader.cpp data/formats.cpp engine/safetensors_header.cpp tests/fuzz/targets.cpp; do
  obj=$out/obj/$(basename "$src" .cpp).o
  if [[ ! -f $obj || $root/$src -nt $obj || $root/data/formats.h -nt $obj || $root/data/reader.h -nt $obj || $root/engine/safetensors.h -nt $obj ]]; then
    $cxx $common $sanitize -fsanitize=fuzzer-no-link -c "$root/$src" -o "$obj"
  fi
  objs+=("$obj")
done
$cxx $common $sanitize -DLASGRAD_WRITE_SEEDS "$root/tests/fuzz/libfuzzer_main.cpp" "${objs[@]}" -lpng -lz -o "$out/write_seeds"
"$out/write_seeds" "$out/corpus"

status=0
for t in tsv idx cifar pathfinder safetensors; do
  $cxx $common $sanitize -fsanitize=fuzzer -DLASGRAD_FUZZ_TARGET="\"$t\"" "$root/tests/fuzz/libfuzzer_main.cpp" "${objs[@]}" \
    -lpng -lz -o "$out/fuzz_$t"
  echo "== fuzz $t for ${secs}s"
  if ! "$out/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
      -artifact_prefix="$out/crashes/$t-" "$out/corpus/$t" 2>"$out/fuzz_$t.log"; then
    echo "fuzz.sh: target $t found a problem; see $out/fuzz_$t.log and $out/crashes/" >&2
    tail -40 "$out/fuzz_$t.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$out/fuzz_$t.log" | tr '\n' ' '
    echo
  fi
done
exit $status
