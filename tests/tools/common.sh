# Sourced by the tests/tools scripts: a scratch folder removed at exit (the script runs inside it),
# fail, and expect_fail.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_fail STATUS PATTERN COMMAND...: the command exits STATUS, saying PATTERN (output in out.log).
expect_fail() {
  local want=$1 pattern=$2 status=0
  shift 2
  "$@" >out.log 2>&1 || status=$?
  [ "$status" = "$want" ] || { cat out.log; fail "'$*' exited $status, not $want"; }
  grep -q -- "$pattern" out.log || { cat out.log; fail "'$*' did not say '$pattern'"; }
}
