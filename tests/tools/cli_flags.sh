#!/usr/bin/env bash
# The command line as a user gets it wrong: every subcommand's flags go through CLI11 (tools/cli.cpp);
# mistakes exit 2 with a message naming the flag, errors of the job exit 1, --help exits 0 and lists
# every flag with its default.
#   tests/tools/cli_flags.sh LASGRAD
set -euo pipefail
lasgrad=$1
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
expect() { local want=$1 pattern=$2; shift 2; expect_fail "$want" "$pattern" "$lasgrad" "$@"; }  # STATUS PATTERN ARGS...
expect 2 "unknown flag --bogus" eval --bogus 1
expect 2 "unknown flag --bogus" train --bogus=3
expect 2 "checkpoint" eval --checkpoint
expect 2 "flag --checkpoint given twice" eval --checkpoint a --checkpoint b
expect 2 "unexpected argument 'stray'" eval stray
expect 2 "quiet" gen listops --quiet=maybe
expect 2 "unknown subcommand 'nope'" nope
expect 2 "needs a whole number" attn --checkpoint x --out o --index 1.5
expect 1 "x: cannot open" eval --checkpoint=x
# --name=false leaves a toggle off: gen without --quiet prints what it wrote.
"$lasgrad" gen listops --out lo --train 4 --val 2 --test 2 --quiet=false > gen.log 2>&1
grep -q "wrote 8 expressions" gen.log || { cat gen.log; fail "--quiet=false silenced gen"; }
# --help: every declared flag with its default, exit 0.
expect 0 "--checkpoint VALUE" eval --help
expect 0 "(default: test)" eval --help
"$lasgrad" gen listops --out lo2 --train 4 --val 2 --test 2 --quiet > q.log 2>&1
[ ! -s q.log ] || fail "--quiet printed"
expect 0 "--set VALUE" sweep --help
expect 0 "(repeatable)" sweep --help
expect 0 "subcommands:" --help
echo "cli_flags: all checks passed"
