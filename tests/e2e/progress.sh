#!/usr/bin/env bash
# tobus-send's progress line: never on stdout; not shown when stderr is not a terminal unless
# --progress; on a terminal (script(1) gives one) it shows counts and, for a file, a percentage.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
start_module p
seq 50000 >"$T/in"

run quiet tobus-send --to p --wait <"$T/in"
assert_rc 0 "send without a terminal"
assert_empty_file "$RUN_ERR" "stderr when it is not a terminal"
assert_same_file "$T/in" "$RUN_OUT" "results on stdout, nothing else"

run forced tobus-send --to p --wait --progress <"$T/in"
assert_rc 0 "send --progress"
assert_same_file "$T/in" "$RUN_OUT" "stdout is only data with --progress"
assert_match 'sent 50000 .*done 50000  failed 0  in flight 0  100%' "$(tail -n 1 "$RUN_ERR")" "the last progress line"

run never tobus-send --to p --no-progress --progress -m x
assert_rc 2 "--progress with --no-progress"

if command -v script >/dev/null; then
    # A terminal on stderr: the line appears (long sends only: --progress forces it here).
    script -qec "tobus-send --to p --progress <'$T/in' >/dev/null" /dev/null >"$T/tty.out" 2>&1 || true
    grep -q 'sent 50000' "$T/tty.out" || fail "no progress on a terminal: $(head -c 300 "$T/tty.out")"
    grep -q $'\r' "$T/tty.out" || fail "the progress line is not redrawn in place on a terminal"
fi
pass
