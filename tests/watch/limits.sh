#!/usr/bin/env bash
# -c/--count, --timeout and --since: a watch starts now unless --since takes it back into the
# retained history; -c N prints exactly N records and exits 0 (from history or live); --timeout
# exits 124 when nothing (or fewer than -c) matched, on time, quietly, and 0 when something did.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
start_module upper -- tr a-z A-Z
wait_for -t 30 instances_at_least upper 1 || fail "upper did not attach"

run old tobus-send -t upper --wait --id old -m a -m b -m c -m d -m e
assert_rc 0 "five messages"
sleep 3 # they are older than --since 2s below
run recent tobus-send -t upper --wait --id recent -m z
assert_rc 0 "one more"
sleep 0.3

# --since: only what is younger.
run since tobus-watch --since 2s --timeout 500ms --format '%e %i\n'
assert_rc 0 "--since 2s"
assert_bytes "$RUN_OUT" 'sent recent\nrouted recent\nhandled recent\ndelivered recent\n' "only the last 2s"

# elapsed_run NAME CMD...: `run`, and SECS is how long it took.
elapsed_run() {
    local start=$SECONDS
    run "$@"
    SECS=$((SECONDS - start))
}

# Without --since, the history is not shown: nothing comes, so --timeout ends it with 124.
elapsed_run now tobus-watch --timeout 1s
assert_rc 124 "--timeout 1s with no traffic"
assert_empty_file "$RUN_OUT" "stdout of a watch that timed out"
assert_empty_file "$RUN_ERR" "stderr of a watch that timed out"
((SECS <= $(secs 4))) || fail "--timeout 1s took ${SECS}s"

# --since: the history first; -c stops exactly, at once.
elapsed_run count tobus-watch --since 1m -c 3 --format '%e %i\n'
assert_rc 0 "--since 1m -c 3"
assert_bytes "$RUN_OUT" 'sent old.1\nsent old.2\nsent old.3\n' "-c 3 from history"
((SECS <= $(secs 3))) || fail "-c 3 over history took ${SECS}s"
run all tobus-watch --since 1m --timeout 1s --format '%e %i\n'
assert_rc 0 "--since 1m --timeout 1s with history"
assert_eq 24 "$(count_lines "$RUN_OUT")" "events of six messages"
run too-many tobus-watch --since 1m -c 30 --timeout 1s --format '%e %i\n'
assert_rc 124 "-c 30 when 24 came"
assert_eq 24 "$(count_lines "$RUN_OUT")" "what came before the timeout"
assert_empty_file "$RUN_ERR" "stderr of -c 30 --timeout"

# Live: -c 4 exits by itself after the fourth record.
watch_bg live -c 4 --id live --format '%e\n'
live_pid=$E2E_LAST_PID
run live-send tobus-send -t upper --wait --id live -m x
assert_rc 0 "the live message"
wait_proc "$live_pid"
assert_eq 0 "$RC" "a live watch -c 4"
assert_bytes "$T/live.stdout" 'sent\nrouted\nhandled\ndelivered\n' "the live records"

# Live: --timeout with something matched exits 0 when the time is up.
watch_bg live-timeout --timeout 3s --event sent --format '%i\n'
lt_pid=$E2E_LAST_PID
run live-send2 tobus-send -t upper --id lt -m y
assert_rc 0 "another live message"
wait_proc "$lt_pid"
assert_eq 0 "$RC" "--timeout 3s after one match"
assert_bytes "$T/live-timeout.stdout" 'lt\n' "what --timeout 3s printed"

# Live: -c 1 with a long --timeout ends at the first match, not at the timeout.
watch_bg first -c 1 --timeout 60s --event delivered --format '%i\n'
first_pid=$E2E_LAST_PID
start=$SECONDS
run live-send3 tobus-send -t upper --wait --id first -m z
wait_proc "$first_pid"
assert_eq 0 "$RC" "-c 1 --timeout 60s"
((SECONDS - start <= $(secs 10))) || fail "-c 1 waited for the timeout"
assert_bytes "$T/first.stdout" 'first\n' "-c 1"

pass
