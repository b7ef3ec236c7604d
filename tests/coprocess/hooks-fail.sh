#!/usr/bin/env bash
# A receive hook that dies, hangs or answers nonsense never stalls the bus: the message passes
# (the documented default) within --hook-timeout, one warning is logged, the hook is restarted.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

start_module a -- sh -c 'cat; printf " via a"'

# elapsed CMD...: runs CMD with `run`, and sets ELAPSED to the seconds it took.
elapsed() {
    local start=$SECONDS
    run "$@"
    ELAPSED=$((SECONDS - start))
}

# --- a hook that exits on its first message, without an answer ---------------------------------
start_bus --on-receive "read -r line; echo 'hook: bye' >&2; exit 3"
bus=$E2E_LAST_PID
bus_log=$T/bus.$E2E_BUS_N.log
elapsed exits tobus-send --to a -m one -m two -m three --wait --timeout 30s
assert_rc 0 "messages through a hook that exits"
assert_bytes "$RUN_OUT" 'one via a\ntwo via a\nthree via a\n' "results through a hook that exits"
((ELAPSED <= $(secs 5))) || fail "3 messages took ${ELAPSED}s through a hook that exits"
assert_contains "co-process 'receive hook' died (exited with 3)" "$(cat "$bus_log")" "the bus says the hook died"
assert_contains "receive hook: hook: bye" "$(cat "$bus_log")" "the hook's stderr is in the bus's log"
wait_for -t 10 grep -q "restarting in" "$bus_log" || fail "the hook was not restarted"
alive "$bus" || fail "the bus died with its hook"
stop_proc "$bus"

# --- a hook that hangs: each time the bus takes the message (sent, then its result) it waits
# --hook-timeout (default 1s), then passes it
start_bus --on-receive 'exec sleep 1000'
bus=$E2E_LAST_PID
bus_log=$T/bus.$E2E_BUS_N.log
elapsed hang tobus-send --to a -m slow --id slow --wait --timeout 30s
assert_rc 0 "a message through a hook that hangs"
assert_bytes "$RUN_OUT" 'slow via a\n' "result through a hook that hangs"
((ELAPSED <= $(secs 4))) || fail "a message took ${ELAPSED}s through a hook that hangs (timeout 1s, twice)"
assert_eq 2 "$(grep -c 'receive hook gave no answer for slow within 1s, passing it and restarting the hook' "$bus_log")" \
    "one warning line each time the bus took the message; log: $(cat "$bus_log")"
elapsed hang2 tobus-send --to a -m again -m more --wait --timeout 30s
assert_rc 0 "the bus keeps routing through a hook that hangs"
assert_bytes "$RUN_OUT" 'again via a\nmore via a\n' "results after the hook was restarted"
((ELAPSED <= $(secs 7))) || fail "2 messages took ${ELAPSED}s through a hook that hangs"
# The hung hooks were killed when they were restarted: one sleep is left, the current hook's.
assert_eq 1 "$(pgrep -f -x 'sleep 1000' -P "$bus" | wc -l)" "sleeping hooks left under the bus"
stop_proc "$bus"
wait_for -t 10 not pgrep -f -x 'sleep 1000' -P "$bus" || fail "the hook outlived the bus"

# --- --hook-timeout, and a hook that answers nonsense -------------------------------------------
start_bus --hook-timeout 200ms --on-receive 'while read -r l; do echo nonsense; done'
bus_log=$T/bus.$E2E_BUS_N.log
run nonsense tobus-send --to a -m x --wait --timeout 30s
assert_rc 0 "a message through a hook that answers nonsense"
assert_bytes "$RUN_OUT" 'x via a\n' "result through a hook that answers nonsense"
assert_contains "receive hook: not a JSON object in its answer for" "$(cat "$bus_log")" "the warning for nonsense"
stop_proc "$E2E_LAST_PID"
start_bus --hook-timeout 200ms --on-receive 'exec sleep 1000'
elapsed short tobus-send --to a -m quick --wait --timeout 30s
assert_rc 0 "a message through a hanging hook with --hook-timeout 200ms"
((ELAPSED <= $(secs 3))) || fail "--hook-timeout 200ms: a message took ${ELAPSED}s"
assert_contains "within 200ms" "$(cat "$T/bus.$E2E_BUS_N.log")" "the warning names the timeout"

# --- a bad --hook-timeout is a usage error ------------------------------------------------------
run bad tobus-bus --hook-timeout soon --on-receive cat
assert_rc 2 "tobus-bus --hook-timeout soon"
assert_contains "invalid duration 'soon'" "$(cat "$RUN_ERR")" "the error for a bad duration"
pass
