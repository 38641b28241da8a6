#!/usr/bin/env bash
# Where test_cuda skips (no GPU here), LASGRAD_REQUIRE_GPU=1 must turn the skip into a failure that says
# why. Where it runs on a GPU there is nothing to check.
set -uo pipefail
test_cuda=$1
out=$("$test_cuda" 2>&1)
grep -q "SKIPPED: every GPU test case is skipped" <<<"$out" || { echo "test_cuda ran on a GPU: nothing to check"; exit 0; }
if req=$(LASGRAD_REQUIRE_GPU=1 "$test_cuda" 2>&1); then
  echo "FAIL: test_cuda passed with LASGRAD_REQUIRE_GPU=1 and no GPU"; exit 1
fi
grep -q "FAILED: LASGRAD_REQUIRE_GPU=1, but the GPU cannot be used" <<<"$req" || { echo "FAIL: unclear message: $req"; exit 1; }
echo "LASGRAD_REQUIRE_GPU=1 fails without a GPU: $(grep FAILED <<<"$req")"
