#!/usr/bin/env bash
# tobus-bus --on-send: a hook sees every message the bus writes, with the key it went to, as a
# JSON line; its output is read and thrown away; one that hangs or exits never stalls the bus.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

start_module a -- sh -c 'cat; printf " via a"'

# --- an observer that logs, and prints noise that must be ignored --------------------------------
start_bus --on-send "while IFS= read -r line; do printf '%s\n' \"\$line\" >>'$T/sent.jsonl'; echo noise; done"
bus=$E2E_LAST_PID
run send tobus-send --to a -m hello --id s --wait
assert_rc 0 "a message with a send hook"
assert_bytes "$RUN_OUT" 'hello via a\n' "result with a send hook"
wait_for -t 10 grep -q '"key":"'"$NS"':reply:' "$T/sent.jsonl" || fail "the send hook did not see the reply"
sent=$(cat "$T/sent.jsonl")
assert_match '^\{"event":"send","key":"'"$NS"':in:a","id":"s","route":\["a"\]' "$sent" "the event for the inbox"
assert_match '"key":"'"$NS"':reply:.*"id":"s".*"payload":"hello via a"' "$sent" "the event for the reply"
seq 1 500 | run many tobus-send --to a --wait
assert_rc 0 "500 messages with a send hook"
assert_eq 500 "$(grep -c ' via a$' "$RUN_OUT")" "results of 500 messages"
inbox_events() { grep -c '"key":"'"$NS"':in:a"' "$T/sent.jsonl"; }
# (Counted anew at each try: the hook may still be writing its log.)
wait_for -t 10 eval '[[ $(inbox_events) == 501 ]]' ||
    fail "the send hook saw $(inbox_events) of 501 inbox writes"
stop_proc "$bus"

# --- a send hook that never reads: the bus keeps routing ----------------------------------------
start_bus --on-send 'exec sleep 1000'
bus=$E2E_LAST_PID
seq 1 200 | run hang tobus-send --to a --wait --timeout 60s
assert_rc 0 "200 messages with a send hook that never reads"
assert_eq 200 "$(grep -c ' via a$' "$RUN_OUT")" "results with a send hook that never reads"
stop_proc "$bus"

# --- a send hook that exits: restarted, the bus keeps routing ----------------------------------
start_bus --on-send "read -r line; echo \"\$line\" >>'$T/once.jsonl'; exit 0"
bus_log=$T/bus.$E2E_BUS_N.log
for i in 1 2 3; do
    run exits tobus-send --to a -m "m$i" --wait --timeout 30s
    assert_rc 0 "message $i with a send hook that exits"
    assert_bytes "$RUN_OUT" "m$i via a\n" "result $i with a send hook that exits"
    sleep 0.3
done
assert_contains "co-process 'send hook' died (exited with 0)" "$(cat "$bus_log")" "the bus says the send hook died"
(($(wc -l <"$T/once.jsonl") >= 2)) || fail "the send hook was not restarted: $(cat "$T/once.jsonl")"
pass
