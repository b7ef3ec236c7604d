#!/usr/bin/env bash
# --stats against known traffic: 100 messages handled by upper, 3 failed at picky, 10 waiting for
# nobody (no instance: it is marked). The figures of a snapshot from history (--since), live
# counts and rates, --module, the plain table when piped (one snapshot per interval) and the
# table redrawn in place, with the mark in colour, on a terminal.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v jq >/dev/null || skip "jq not installed"

start_bus
start_module upper -- tr a-z A-Z
start_module picky -- sh -c 'exit 3'
for m in upper picky; do
    wait_for -t 30 instances_at_least "$m" 1 || fail "$m did not attach"
done

seq 1 100 >"$T/hundred.txt"
run upper tobus-send -t upper --wait --timeout 60s <"$T/hundred.txt"
assert_rc 0 "100 messages to upper"
run picky tobus-send -t picky --wait -m a -m b -m c
assert_rc 1 "3 messages to picky"
seq 1 10 | run nobody tobus-send -t nobody
assert_rc 0 "10 messages to nobody"
wait_for -t 30 xlen_ge "$NS:in:nobody" 10 || fail "the messages to nobody were not routed"
wait_for -t 30 xlen_ge "$NS:dead" 3 || fail "picky's failures were not dead-lettered"

# --- one snapshot of the history, as JSON ------------------------------------------------------
run snap tobus-watch --stats --since 5m -c 1 --json --interval 500ms
assert_rc 0 "--stats --since 5m -c 1 --json"
assert_empty_file "$RUN_ERR" "stderr of --stats"
assert_eq 1 "$(count_lines "$RUN_OUT")" "snapshots"
assert_eq 3 "$(jq .dead "$RUN_OUT")" "dead letters"
assert_eq '["nobody","picky","upper"]' "$(jq -c '[.modules[].module]' "$RUN_OUT")" "the modules"
row() { jq -c --arg m "$1" '.modules[] | select(.module == $m) | [.instances, .inbox, .lag, .pending, .handled, .failed, .stalled]' "$RUN_OUT"; }
assert_eq '[1,100,0,0,100,0,false]' "$(row upper)" "upper: instances, inbox, lag, pending, handled, failed, stalled"
assert_eq '[1,3,0,0,0,3,false]' "$(row picky)" "picky"
assert_eq '[0,10,10,0,0,0,true]' "$(row nobody)" "nobody"
jq -e '.time as $t | .modules[] | select(.module == "upper") | .p50_ms >= 0 and .p99_ms >= .p50_ms and ($t - .last_seen) < 30000' \
    "$RUN_OUT" >/dev/null || fail "upper's percentiles and last_seen: $(cat "$RUN_OUT")"
jq -e '.modules[] | select(.module == "nobody") | .p50_ms == null and .last_seen == null' "$RUN_OUT" >/dev/null ||
    fail "nobody has no percentiles and was never seen: $(cat "$RUN_OUT")"
jq -e '.interval_ms == 500 and .bus_rate == 0 and (.modules | all(.rate_in == 0 and .rate_out == 0))' "$RUN_OUT" \
    >/dev/null || fail "no rates for old traffic: $(cat "$RUN_OUT")"

run only tobus-watch --stats --since 5m -c 1 --json --interval 200ms --module upper
assert_eq '["upper"]' "$(jq -c '[.modules[].module]' "$RUN_OUT")" "--stats --module upper"

# --- the plain table, piped: a snapshot per interval, an empty line after each -----------------
run table tobus-watch --stats --since 5m -c 2 --interval 300ms
assert_rc 0 "--stats -c 2"
# (Columns are as wide as their widest value: a slow machine's P99 widens its column.)
assert_eq 2 "$(grep -cE '^  MODULE +INST +INBOX +LAG +PEND +IN/s +OUT/s +HANDLED +FAILED +P50 +P99 +SEEN$' "$RUN_OUT")" \
    "table headers in two snapshots"
assert_eq 2 "$(grep -c '^$' "$RUN_OUT")" "empty lines after the snapshots"
assert_match '^[0-9:.]{12}  bus 0\.0/s  dead 3$' "$(head -1 "$RUN_OUT")" "the first line of a snapshot"
assert_eq '! nobody 0 10 10 0 0 0' "$(awk '$2 == "nobody" { print $1, $2, $3, $4, $5, $6, $9, $10; exit }' "$RUN_OUT")" \
    "nobody's row, marked"
assert_eq 'upper 1 100 0 0 100 0' "$(awk '$1 == "upper" { print $1, $2, $3, $4, $5, $8, $9; exit }' "$RUN_OUT")" \
    "upper's row"
grep -q $'\e' "$RUN_OUT" && fail "terminal control in piped --stats"

# --- live: counts and rates of traffic sent while it runs -----------------------------------------
# Snapshots until upper has handled the 100 (however long that takes on a slow machine), the first
# one before any traffic; then stopped (SIGTERM: 143, after the snapshots printed so far).
watch_bg live --stats --json --interval 1s
live_pid=$E2E_LAST_PID
wait_for -t 30 lines_ge "$T/live.stdout" 1 || fail "no first live snapshot"
run live-send tobus-send -t upper --wait --timeout 60s <"$T/hundred.txt"
assert_rc 0 "100 more messages"
upper_done() { tail -1 "$T/live.stdout" | jq -e '.modules[] | select(.module == "upper") | .handled == 100' >/dev/null; }
wait_for -t 60 upper_done || fail "no live snapshot counted upper's 100: $(tail -1 "$T/live.stdout")"
stop_proc "$live_pid"
assert_eq 143 "$RC" "--stats stopped by SIGTERM"
assert_eq '100 0 200' "$(tail -1 "$T/live.stdout" | jq -r '.modules[] | select(.module == "upper") | "\(.handled) \(.failed) \(.inbox)"')" \
    "upper's live counts (handled since the start) and its inbox"
# (A burst's routings and results may fall in different windows: each is somewhere.)
jq -s -e '[.[].modules[] | select(.module == "upper")] as $u | any(.[]; .bus_rate > 0) and
    any($u[]; .rate_in > 0) and any($u[]; .rate_out > 0)' \
    "$T/live.stdout" >/dev/null || fail "no rates while traffic ran: $(cat "$T/live.stdout")"
# The windows tile (each from the previous snapshot's time): over all of them, every routing is
# counted once. A rate is per second of its window, and a busy machine stretches windows: weigh
# each by its length. (The first window ended before any traffic.)
jq -s -e '[range(1; length) as $i | (.[$i].time - .[$i - 1].time) as $ms |
    .[$i].modules[] | select(.module == "upper") | .rate_in * $ms / 1000] | add | . >= 90 and . <= 110' \
    "$T/live.stdout" >/dev/null || fail "rates in over the snapshots do not add up to 100 routings: $(cat "$T/live.stdout")"

# --- hostile records written straight into Redis: skipped, never a crash -------------------------
deep=$(head -c 100000 /dev/zero | tr '\0' '[')
rcli HSET "$NS:module:upper" evil "$deep" >/dev/null
rcli HSET "$NS:modules" evil "{\"first_seen\":$deep" >/dev/null
run hostile tobus-watch --stats --since 5m -c 1 --json --interval 200ms
assert_rc 0 "--stats over records nested 100,000 deep"
assert_eq 1 "$(jq '.modules[] | select(.module == "upper") | .instances' "$RUN_OUT")" "upper's instances beside a hostile one"
rcli HDEL "$NS:module:upper" evil >/dev/null
rcli HDEL "$NS:modules" evil >/dev/null

# --- on a terminal: redrawn in place, the mark in colour ---------------------------------------
if command -v script >/dev/null; then
    script -qec "tobus-watch --stats -c 2 --interval 200ms" /dev/null >"$T/tty.out" 2>&1 </dev/null
    assert_eq 2 "$(grep -o $'\e\\[H' "$T/tty.out" | wc -l)" "cursor-home per snapshot on a terminal"
    grep -q $'\e\\[J' "$T/tty.out" || fail "no clear-to-end on a terminal: $(show_file "$T/tty.out")"
    grep -q $'\e\\[1;31m! nobody' "$T/tty.out" || fail "nobody's row is not red on a terminal: $(show_file "$T/tty.out")"
    NO_COLOR=1 script -qec "tobus-watch --stats -c 1 --interval 200ms" /dev/null >"$T/tty-nc.out" 2>&1 </dev/null
    grep -q $'\e\\[1;31m' "$T/tty-nc.out" && fail "colour despite NO_COLOR"
    grep -q '^! nobody' "$T/tty-nc.out" || fail "the mark without colour: $(show_file "$T/tty-nc.out")"
fi

pass
