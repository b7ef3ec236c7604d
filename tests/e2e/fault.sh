#!/usr/bin/env bash
# The fault test: 10,000 messages through a 2-hop route, 2 buses and 2 instances of each module;
# while they flow, random buses and module instances are killed with SIGKILL at random moments and
# restarted. Every message must reach the end: tobus-send --wait prints all 10,000 results, once
# each, in order; nothing is left pending in Redis and nothing is dead-lettered. Duplicates
# (at-least-once) are counted and reported.
#
# Reproduce a run with TOBUS_E2E_SEED=N (printed at the start).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seed=${TOBUS_E2E_SEED:-$$}
RANDOM=$seed
note "seed $seed (rerun with TOBUS_E2E_SEED=$seed)"

N=10000
roles=(bus1 bus2 m1a m1b m2a m2b)
declare -A pid_of=()

# The second hop runs a handler process per message that logs each run, so duplicate runs show.
launch() {
    case $1 in
    bus*) start_bus --claim-after 1s ;;
    m1*) start_module m1 --claim-after 1s ;;
    m2*) start_module m2 --claim-after 1s -j 4 -- \
        awk -v seen="$T/m2.seen" '{ print >> seen; printf "%s", $0 }' ;;
    esac
    pid_of[$1]=$E2E_LAST_PID
}

# A float in [LO, LO+SPAN) seconds, from $RANDOM so the seed reproduces it.
rand_secs() { awk -v lo="$1" -v span="$2" -v r="$RANDOM" 'BEGIN { printf "%.2f", lo + span * r / 32768 }'; }

for r in "${roles[@]}"; do launch "$r"; done
wait_for -t 60 instances_at_least m1 2 || fail "the 2 instances of m1 did not attach"
wait_for -t 60 instances_at_least m2 2 || fail "the 2 instances of m2 did not attach"

seq -f 'msg-%g' "$N" >"$T/input.txt"
tobus-send --to m1,m2 --wait --timeout "$(secs 120)s" <"$T/input.txt" >"$T/send.out" 2>"$T/send.err" &
send_pid=$!
E2E_PIDS+=("$send_pid")

rounds=0
killed=()
chaos_end=$((SECONDS + $(secs 90)))
while alive "$send_pid" && ((SECONDS < chaos_end)); do
    sleep "$(rand_secs 0.05 0.6)"
    alive "$send_pid" || break
    victims=("${roles[RANDOM % ${#roles[@]}]}")
    if ((RANDOM % 4 == 0)); then # sometimes two at once, both buses or both instances included
        v2=${roles[RANDOM % ${#roles[@]}]}
        [[ $v2 != "${victims[0]}" ]] && victims+=("$v2")
    fi
    for v in "${victims[@]}"; do
        p=${pid_of[$v]}
        if ! alive "$p"; then
            wait "$p" 2>/dev/null
            fail "$v (pid $p) exited by itself with code $? before round $((rounds + 1))"
        fi
        kill -KILL "$p"
        wait "$p" 2>/dev/null
    done
    rounds=$((rounds + 1))
    killed+=("${victims[*]}")
    sleep "$(rand_secs 0 0.4)"
    for v in "${victims[@]}"; do launch "$v"; done
done
note "$rounds rounds of kill -9: ${killed[*]/%/;}"
((rounds >= 3)) || note "warning: only $rounds rounds happened before the sender finished"

wait_proc "$send_pid"
RUN_ERR=$T/send.err
send_rc=$RC
for r in "${roles[@]}"; do
    alive "${pid_of[$r]}" || fail "$r (pid ${pid_of[$r]}) is not running at the end"
done

lines=$(wc -l <"$T/send.out")
distinct=$(sort -u "$T/send.out" | wc -l)
missing=$(sort "$T/input.txt" | comm -23 - <(sort -u "$T/send.out") | wc -l)
runs=$(wc -l <"$T/m2.seen" 2>/dev/null || echo 0)
m2_distinct=$(sort -u "$T/m2.seen" 2>/dev/null | wc -l)
replies=0
for k in $(rcli --scan --pattern "$NS:reply:*"); do replies=$((replies + $(xlen "$k"))); done
note "results printed: $lines lines, $distinct distinct, $missing missing"
if ((replies > 0)); then
    reply_note="$((replies > N ? replies - N : 0)) extra results on the reply stream ($replies entries)"
else
    reply_note="the reply stream is gone (tobus-send removed it)"
fi
note "duplicates: $((runs - m2_distinct)) extra handler runs on hop m2 ($runs runs for $m2_distinct messages); $reply_note"

assert_eq 0 "$send_rc" "tobus-send --wait exit code (stderr: $(head -c 1500 "$T/send.err"))"
assert_eq 0 "$missing" "messages missing from the output"
assert_eq "$N" "$distinct" "distinct results"
assert_eq "$N" "$lines" "lines on stdout (--wait prints each result once)"
assert_same_file "$T/input.txt" "$T/send.out" "stdout of tobus-send --wait (all results, input order)"
assert_eq "$N" "$m2_distinct" "distinct messages that reached the second hop's handler"

# Duplicates still in flight settle; then nothing is pending or undelivered anywhere.
for sg in "$NS:bus bus" "$NS:in:m1 module" "$NS:in:m2 module"; do
    # shellcheck disable=SC2086
    wait_for -t 60 backlog_empty $sg ||
        fail "backlog left on '$sg': $(backlog $sg) (pending, undelivered); XPENDING: $(rcli XPENDING $sg | tr '\n' ' ')"
done
assert_eq 0 "$(xlen "$NS:dead")" "entries in $NS:dead (reasons: $(xfield "$NS:dead" '' '' dead.reason | sort | uniq -c | tr '\n' ';'))"

pass
