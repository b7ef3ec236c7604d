#!/usr/bin/env bash
# tobus-state wait: exit 0 at once when the condition holds, woken by a set from another process
# (fast: by the change event, not by the 5s re-check), by a hand-written HSET (by the re-check),
# 124 at --timeout, 128+N on SIGINT/SIGTERM, and no polling loop (Redis counts its commands).
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
[[ -x $TOBUS_BIN_DIR/tobus-state ]] || setup_fail "tobus-state not built"

ms() { date +%s%3N; }
# A waiter is blocked when Redis shows a client in XREAD.
blocked_readers() { rcli CLIENT LIST | grep -c 'cmd=xread'; }
readers_at_least() { (($(blocked_readers) >= $1)); }

# Holds already: exit 0 at once.
tobus-state set svc status=ready
t0=$(ms)
run now tobus-state wait svc status=ready --timeout 10s
assert_rc 0 "wait for a condition that holds"
assert_empty_file "$RUN_OUT" "wait prints nothing"
(($(ms) - t0 < 2000)) || fail "wait for a condition that holds took $(($(ms) - t0))ms"
run now0 tobus-state wait svc status=ready --timeout 0
assert_rc 0 "wait --timeout 0 for a condition that holds"
run absent tobus-state wait svc other=
assert_rc 0 "wait FIELD= for an absent field"

# Woken by a set from another process.
start_bg waiter tobus-state wait svc status=done --timeout 60s
waiter=$E2E_LAST_PID
wait_for -t 10 readers_at_least 1 || fail "the waiter never blocked in XREAD"
tobus-state set svc status=starting
tobus-state set other status=done
sleep 0.3
alive "$waiter" || fail "the waiter ended on a change that does not meet its condition"
t0=$(ms)
tobus-state set svc status=done
wait_for -t 10 not alive "$waiter" || fail "the waiter did not end after the set"
woke=$(($(ms) - t0))
wait_proc "$waiter"
assert_rc 0 "wait woken by a set"
((woke < 2000)) || fail "the waiter took ${woke}ms to see the set: it was not woken by the change event"
assert_empty_file "$T/waiter.stdout" "the waiter's stdout"

# Woken by a del (FIELD= waits for absent or empty).
start_bg waiter2 tobus-state wait svc status=
waiter=$E2E_LAST_PID
wait_for -t 10 readers_at_least 1 || fail "the second waiter never blocked"
tobus-state del svc status
wait_proc "$waiter"
assert_rc 0 "wait FIELD= woken by a del"

# Many waiters on one record, all woken by one write.
pids=()
for i in 1 2 3 4 5; do
    start_bg "many$i" tobus-state wait job:7 status=done --timeout 60s
    pids+=("$E2E_LAST_PID")
done
wait_for -t 10 readers_at_least 5 || fail "five waiters never blocked"
tobus-state set job:7 status=done
for pid in "${pids[@]}"; do
    wait_proc "$pid"
    assert_rc 0 "one of five waiters"
done

# A write by hand (redis-cli HSET) makes no change event: the 5s re-check sees it.
start_bg byhand tobus-state wait svc2 f=v --timeout 30s
waiter=$E2E_LAST_PID
wait_for -t 10 readers_at_least 1 || fail "the waiter never blocked"
rcli HSET "$NS:state:svc2" f v >/dev/null
t0=$(ms)
wait_for -t 15 not alive "$waiter" || fail "the waiter did not see a hand-written HSET"
wait_proc "$waiter"
assert_rc 0 "wait woken by the re-check after a hand-written HSET"
(($(ms) - t0 < 8000)) || fail "the re-check took $(($(ms) - t0))ms (every 5s expected)"

# Timeout: 124, not before it, not long after; nothing on stdout.
t0=$(ms)
run timeout tobus-state wait svc status=never --timeout 1500ms
took=$(($(ms) - t0))
assert_rc 124 "wait --timeout 1500ms"
assert_empty_file "$RUN_OUT" "wait that timed out: stdout"
assert_empty_file "$RUN_ERR" "wait that timed out: stderr (silent without -v)"
((took >= 1400 && took < 4000)) || fail "wait --timeout 1500ms took ${took}ms"
run timeout0 tobus-state wait svc status=never --timeout 0
assert_rc 124 "wait --timeout 0 for a condition that does not hold"

# No polling: a 6s wait costs a handful of commands, not a loop of them.
rcli CONFIG RESETSTAT >/dev/null
run quiet tobus-state wait svc status=never --timeout 6s
assert_rc 124 "the 6s wait"
stats=$(rcli INFO commandstats)
calls() { sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p" <<<"$stats" | tr -d '\r'; }
hget=$(calls hget)
xread=$(calls xread)
((${hget:-0} <= 4)) || fail "a 6s wait read the record ${hget} times: it polls"
((${xread:-0} <= 4)) || fail "a 6s wait issued ${xread} XREADs: it polls"
((${xread:-0} >= 1)) || fail "a 6s wait issued no XREAD: $stats"

# Stopped by a signal: 128+N, at once.
for sig in INT TERM; do
    start_bg "sig$sig" tobus-state wait svc status=never
    waiter=$E2E_LAST_PID
    wait_for -t 10 readers_at_least 1 || fail "the waiter never blocked"
    t0=$(ms)
    kill -s "$sig" "$waiter"
    wait_proc "$waiter"
    want=130
    [[ $sig == TERM ]] && want=143
    assert_rc "$want" "wait stopped by SIG$sig"
    (($(ms) - t0 < 2000)) || fail "SIG$sig took $(($(ms) - t0))ms to end the wait"
    wait_for -t 5 not readers_at_least 1 || fail "the waiter's XREAD is still blocked in Redis after SIG$sig"
done

# Usage.
run usage tobus-state wait svc status
assert_rc 2 "wait without ="
run usage2 tobus-state wait svc status=x --timeout soon
assert_rc 2 "wait with a bad duration"
assert_contains "invalid duration 'soon'" "$(cat "$RUN_ERR")" "the bad duration is named"

pass
