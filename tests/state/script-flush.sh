#!/usr/bin/env bash
# Lua scripts run by EVALSHA survive the server losing them (SCRIPT FLUSH, as after a restart):
# between two tobus-state commands, and mid-session in a running tobus-module, whose job records
# (tobus-state's write scripts) and joins (join.cpp's scripts) go on after a flush.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
[[ -x $TOBUS_BIN_DIR/tobus-state ]] || setup_fail "tobus-state not built"

flush() { assert_eq OK "$(rcli SCRIPT FLUSH)" "SCRIPT FLUSH"; }

# --- between two tobus-state commands -----------------------------------------------------------

run set1 tobus-state set cfg a=1
assert_rc 0 "set before a flush"
flush
run set2 tobus-state set cfg b=2
assert_rc 0 "set after a flush"
assert_empty_file "$RUN_ERR" "set after a flush: stderr"
flush
run incr tobus-state incr cfg n 5
assert_rc 0 "incr after a flush"
assert_bytes "$RUN_OUT" '5\n' "incr after a flush"
flush
run cas tobus-state cas cfg a 1 9
assert_rc 0 "cas after a flush"
flush
run del tobus-state del cfg b
assert_rc 0 "del after a flush"
run get tobus-state get cfg
assert_bytes "$RUN_OUT" 'a=9\nn=5\n' "the record after writes between flushes"
assert_eq 5 "$(xlen "$NS:state-changes")" "one change event per write"

# --- mid-session: a module's job records and joins --------------------------------------------

start_bus
start_module m -- cat
m_log=$T/module.m.1.log
start_module j --join 2 -- sh -c 'sort | paste -sd+ - | tr -d "\\n"'
j_log=$T/module.j.1.log
job_done() { [[ $(rcli HGET "$NS:state:job:$1" status) == done ]]; }

# join ID: two messages correlated by ID to j; both senders get the joined result.
join() {
    tobus-send --to j --correlation "$1" -m 1 --wait --timeout 30s >"$T/$1.1.out" 2>"$T/$1.1.err" &
    local first=$!
    run "$1" tobus-send --to j --correlation "$1" -m 2 --wait --timeout 30s
    wait_proc "$first"
    assert_eq 0 "$RC" "join $1: the first sender"
    assert_bytes "$T/$1.1.out" '1+2\n' "join $1: the first sender's result"
    assert_bytes "$RUN_OUT" '1+2\n' "join $1: the second sender's result"
}

for round in 1 2 3; do
    run "send$round" tobus-send -t m --id "msg$round" -m "hello $round" --wait --timeout 30s
    assert_rc 0 "round $round: send to m"
    assert_bytes "$RUN_OUT" "hello $round\n" "round $round: m's result"
    wait_for -t 30 job_done "msg$round" || fail "round $round: no job record job:msg$round with status=done"
    join "g$round"
    flush
done
assert_eq 0 "$(grep -c 'cannot' "$m_log")" "m logged no failed write: $(cat "$m_log")"
assert_eq 0 "$(grep -c 'cannot' "$j_log")" "j logged no failed write: $(cat "$j_log")"

finish
