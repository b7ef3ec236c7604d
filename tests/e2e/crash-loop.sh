#!/usr/bin/env bash
# A message whose handler takes its module down (here it kills its own tobus-module with SIGKILL)
# is dead-lettered after three crashes, not after ten: redelivered, it is a suspect and runs alone;
# once two instances ended while running it alone, the next one dead-letters it with the reason.
# (One such end is not enough: a kill -9 from outside may hit an innocent message run alone.)
# The messages in flight with it when it first crashed the module complete, each printed once.
# A supervisor restarts the module each time it dies, as systemd would, and counts the deaths.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

reason='tobus-module ended 2 times while running it alone (does its handler crash the module?)'
max_deaths=3 # once beside other messages, twice alone

# Upper-cases its payload. On "poison" it first kills its parent, the tobus-module that forked it.
# Every run is logged, so runs in flight at a crash show.
# shellcheck disable=SC2016
handler='p=$(cat); echo "$p" >>"$RUNS"; case $p in poison) kill -9 $PPID;; esac; printf %s "$p" | tr a-z A-Z'
export RUNS=$T/runs

# -j 4: the poison message runs beside innocent ones when it first crashes the module.
supervise() {
    local n
    for n in $(seq 1 12); do
        echo "start $n" >>"$T/module.log"
        tobus-module up --claim-after 1s -j 4 -- sh -c "$handler" 2>>"$T/module.log"
        echo "$?" >>"$T/exits"
    done
}
deaths() { if [[ -f $T/exits ]]; then wc -l <"$T/exits"; else echo 0; fi; }

start_bus --claim-after 1s
start_bg supervisor supervise
wait_for -t 30 instances_at_least up 1 || fail "module 'up' did not attach"

{
    seq -f 'msg-%g' 1 2
    echo poison
    seq -f 'msg-%g' 3 19
} >"$T/input.txt"
seq -f 'MSG-%g' 1 19 >"$T/expected.txt"

tobus-send --to up --wait --timeout "$(secs 90)s" <"$T/input.txt" >"$T/send.out" 2>"$T/send.err" &
send_pid=$!
E2E_PIDS+=("$send_pid")

# Done, or more deaths than the bound: without isolation the poison message takes the module
# down ten times, and this fails at the fourth.
send_done_or_crash_loop() { ! alive "$send_pid" || (($(deaths) > max_deaths)); }
wait_for -t 120 send_done_or_crash_loop || fail "tobus-send --wait did not end"
(($(deaths) <= max_deaths)) ||
    fail "the module died $(deaths) times (exit codes: $(tr '\n' ' ' <"$T/exits")), expected at most $max_deaths"

wait_proc "$send_pid"
RUN_ERR=$T/send.err
assert_rc 1 "tobus-send --wait with one message dead-lettered"
assert_same_file "$T/expected.txt" "$T/send.out" "results of the innocent messages, each once, in input order"
assert_contains "$reason" "$(cat "$T/send.err")" "tobus-send's report of the poison message"

# The poison message, and nothing else, is in the dead letters, with the reason.
run dead tobus-state dead list
assert_rc 0 "tobus-state dead list"
assert_eq 1 "$(wc -l <"$RUN_OUT")" "dead letters (tobus-state dead list: $(cat "$RUN_OUT"))"
assert_match " up -1 $(sed 's/[().?]/\\&/g' <<<"$reason")\$" "$(cat "$RUN_OUT")" "the dead letter's hop, rc and reason"
assert_eq poison "$(xfield "$NS:dead" '' '' payload)" "payload of the dead letter"
assert_eq "$reason" "$(xfield "$NS:dead" '' '' dead.reason)" "dead.reason on $NS:dead"

# Nothing left pending, no record of a suspect left behind, no more deaths.
wait_for -t 30 backlog_empty "$NS:in:up" module ||
    fail "backlog left on '$NS:in:up': $(backlog "$NS:in:up" module) (pending, undelivered)"
assert_eq 0 "$(rcli EXISTS "$NS:suspect:up")" "$NS:suspect:up exists after the suspects ran"
assert_eq "$max_deaths" "$(grep -cx poison "$T/runs")" "runs of the poison message"
(($(deaths) <= max_deaths)) || fail "the module died $(deaths) times in the end, expected at most $max_deaths"
note "the module died $(deaths) time(s); $(wc -l <"$T/runs") handler runs for 20 messages"

pass
