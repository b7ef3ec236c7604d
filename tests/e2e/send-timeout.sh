#!/usr/bin/env bash
# tobus-send --wait --timeout with nobody to do the work: exit 124, each late message named with
# the hop where it waits, nothing on stdout.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus

run one tobus-send --to nobody -m hi --id late1 --wait --timeout 1s
assert_rc 124 "tobus-send --to nobody --wait --timeout 1s"
assert_empty_file "$RUN_OUT" "stdout after a timeout"
err=$(cat "$RUN_ERR")
assert_contains late1 "$err" "stderr names the late message"
assert_contains nobody "$err" "stderr names the hop where it waits"

# Two hops, the first one done: the message waits at the second.
start_module first
run two tobus-send --to first,second -m a -m b --id late2 --wait --timeout 2s
assert_rc 124 "tobus-send --to first,second --wait --timeout 2s"
assert_empty_file "$RUN_OUT" "stdout after a timeout"
err=$(cat "$RUN_ERR")
assert_contains late2.1 "$err" "stderr names the first late message"
assert_contains late2.2 "$err" "stderr names the second late message"
grep -F late2.1 "$RUN_ERR" | grep -Fq second ||
    fail "the line for late2.1 does not name hop 'second': $err"

# Control: the same command with a module running answers at once.
start_module quick -- tr a-z A-Z
run mixed tobus-send --to quick -m ok --id mix --wait --timeout 60s
assert_rc 0 "tobus-send --to quick --wait (control)"
assert_bytes "$RUN_OUT" 'OK\n' "stdout of the control message"

pass
