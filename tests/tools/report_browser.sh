#!/usr/bin/env bash
# lasgrad report in a real browser: reports of a tiny ListOps run (precision bf16), a tiny Pathfinder run
# (a pixel task) and a tiny sweep are loaded in headless Chromium, opened in chosen states through the URL
# hash (which drives the same controls a user clicks):
#   - the page logs nothing to the console (no errors, no uncaught exceptions);
#   - tests/tools/check_report.py checks the rendered DOM: the curves have one point per metrics line,
#     the explorer shows every position with the embedded weight of the chosen example, layer, head and
#     query (decoded independently), coloured by it, the image beneath for pixel tasks;
#   - choosing another head and query changes the shown weights;
#   - a screenshot is written (REPORT_SHOT=FILE keeps it);
#   - bad input: an existing report is not overwritten without --overwrite, a folder holding neither a
#     run nor a sweep and a malformed summary.json are refused with messages.
# Without Chromium the test skips (exit 77) unless LASGRAD_REQUIRE_BROWSER=1 (tools/test.sh sets it).
#   tests/tools/report_browser.sh LASGRAD
set -euo pipefail
lasgrad=$1
here=$(cd "$(dirname "$0")" && pwd)
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  [ "${LASGRAD_REQUIRE_BROWSER:-0}" = 1 ] && { echo "FAIL: no chromium, and LASGRAD_REQUIRE_BROWSER=1" >&2; exit 1; }
  echo "SKIP: no chromium (Debian package chromium; tools/test.sh installs it)"
  exit 77
fi
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# headless Chromium: the DOM after the page's scripts ran (stdout), the console (stderr).
chrome() { "$browser" --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$work/profile" \
             --enable-logging=stderr --v=0 --virtual-time-budget=5000 "$@"; }
# render REPORT HASH NAME: DOM to NAME.dom, the console must be silent.
render() {
  chrome --dump-dom "file://$work/$1#$2" > "$3.dom" 2> "$3.console" || { cat "$3.console"; fail "chromium failed on $1"; }
  if grep -q "CONSOLE" "$3.console"; then grep "CONSOLE" "$3.console"; fail "$1#$2 wrote to the console"; fi
  grep -q 'class="cell' "$3.dom" || fail "$1#$2: the explorer did not render"
}

small=(--set layers=2 --set width=16 --set heads=2 --set warmup=2 --set log_every=2 --set eval_every=5 --set batch_size=8)
"$lasgrad" gen listops --out lo --seed 2 --train 64 --val 16 --test 16 --min-length 8 --max-length 24 --quiet
# The ListOps run trains in precision bf16: its report (maps from the reference in bf16) must work too.
"$lasgrad" train --task listops --data lo --out runs/lo "${small[@]}" --set steps=10 --set precision=bf16 > lo.log 2>&1 ||
  { cat lo.log; fail "listops run"; }
"$lasgrad" gen pathfinder --out pf --size 32 --count 80 --per-batch 80 --seed 1 --quiet
"$lasgrad" train --task pathfinder --data pf --out runs/pf "${small[@]}" --set steps=4 --set eval_batches=1 > pf.log 2>&1 ||
  { cat pf.log; fail "pathfinder run"; }
"$lasgrad" sweep --task listops --data lo --out sweep --variants softmax,las --seeds 1 --jobs 1 "${small[@]}" \
  --set steps=6 > sweep.log 2>&1 || { cat sweep.log; fail "sweep"; }

"$lasgrad" report runs/lo --out lo.html --examples 2 > report.log || fail "report of a run"
"$lasgrad" report runs/pf --out pf.html --examples 1 --max-kib 16 > report.log || fail "report of a pixel run"
"$lasgrad" report sweep --out sweep.html --run las/seed1 --examples 1 > report.log || fail "report of a sweep"
grep -q "wrote sweep.html" report.log || fail "report did not say what it wrote"
if grep -q -E '(src|href)="?(https?:)?//' lo.html; then fail "the page refers to something outside itself"; fi

# ListOps: two states; the shown weights must follow the selection.
render lo.html "example=1&layer=1&head=0&query=5" a
python3 "$here/check_report.py" lo.html a.dom runs/lo 1 1 0 5 > a.w || fail "ListOps report, state a"
render lo.html "example=1&layer=0&head=1&query=7" b
python3 "$here/check_report.py" lo.html b.dom runs/lo 1 0 1 7 > b.w || fail "ListOps report, state b"
cmp -s a.w b.w && fail "another layer, head and query showed the same weights"
# Pathfinder: the weights folded onto the 32 x 32 image; 16 KiB keeps only some queries, so 100 snaps.
render pf.html "example=0&layer=1&head=0&query=100" p
python3 "$here/check_report.py" pf.html p.dom runs/pf 0 1 0 100 > p.w || fail "Pathfinder report"
grep -q "nearest stored to 100" p.dom || fail "the Pathfinder report does not say the query snapped to a stored one"
render sweep.html "head=1&query=3" s
python3 "$here/check_report.py" sweep.html s.dom sweep/las/seed1 0 0 1 3 2 > s.w || fail "sweep report"

shot=${REPORT_SHOT:-$work/shot.png}
chrome --hide-scrollbars --window-size=1280,1800 --screenshot="$shot" "file://$work/lo.html#example=1&layer=1&head=1&query=12" \
  > /dev/null 2> shot.console || { cat shot.console; fail "screenshot"; }
[ "$(head -c 8 "$shot" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "the screenshot is not a PNG"
[ "$(stat -c %s "$shot")" -gt 20000 ] || fail "the screenshot is nearly empty"

# A run of one step draws its single points as dots and says it finished; a run stopped on a NaN loss
# says so (issue 27, defect 19).
one=(--set layers=1 --set width=16 --set heads=2 --set warmup=0 --set eval_every=1)
"$lasgrad" train --task listops --data lo --out runs/one "${one[@]}" --set steps=1 > one.log 2>&1 || { cat one.log; fail "one-step run"; }
"$lasgrad" report runs/one --out one.html --examples 1 > /dev/null || fail "report of a one-step run"
render one.html "" o
for name in train val; do
  grep -q "<circle class=\"marker\"[^>]*data-name=\"$name\"" o.dom || fail "the one-step run's $name point is not drawn"
done
grep -q "How the run ended: finished" o.dom || fail "the report does not say the run finished"
status=0
"$lasgrad" train --task listops --data lo --out runs/nan "${one[@]}" --set steps=4 --set lr=1e30 > nan.log 2>&1 || status=$?
[ "$status" = 1 ] && grep -q "the loss is NaN" nan.log || { cat nan.log; fail "lr = 1e30 did not stop on a NaN loss"; }
"$lasgrad" report runs/nan --out nan.html --examples 1 > /dev/null || fail "report of a run stopped on NaN"
render nan.html "" n
grep -q "How the run ended: stopped at step 2: the loss is NaN" n.dom || fail "the report does not say the run stopped on NaN"

# Bad input.
cp lo.html keep.html
expect_fail 2 "exists; --overwrite" "$lasgrad" report runs/lo --out lo.html
cmp -s lo.html keep.html || fail "a refused report changed the existing file"
"$lasgrad" report runs/lo --out lo.html --overwrite > /dev/null || fail "--overwrite"
mkdir empty
expect_fail 2 "holds neither a run" "$lasgrad" report empty
expect_fail 2 "give the run or sweep folder" "$lasgrad" report --out x.html
expect_fail 2 "is a run" "$lasgrad" report runs/lo --run x --out y.html
echo '{"runs": [' > sweep/summary.json
expect_fail 1 "sweep/summary.json: not a sweep summary" "$lasgrad" report sweep --out z.html
[ ! -e z.html ] || fail "a failed report left a file"
echo "report_browser: all checks passed"
