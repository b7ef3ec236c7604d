#!/usr/bin/env bash
# The fault test for fan-out and joins: 3,000 messages through @t,j — each copied to the 2
# modules of type t, whose copies the joining module j collects — with 2 buses, 2 instances of
# each module and of j; buses, members and joiners are killed with SIGKILL at random moments and
# restarted. Every message's joined result must come back exactly as expected, nothing may stay
# pending, no group may stay stuck, nothing may be dead-lettered.
# Reproduce a run with TOBUS_E2E_SEED=N (printed at the start).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seed=${TOBUS_E2E_SEED:-$$}
RANDOM=$seed
note "seed $seed (rerun with TOBUS_E2E_SEED=$seed)"

N=3000
roles=(bus1 bus2 a1 a2 b1 b2 j1 j2)
declare -A pid_of=()
launch() {
    case $1 in
    bus*) start_bus --claim-after 1s ;;
    a*) start_module a --type t --claim-after 1s ;;
    b*) start_module b --type t --claim-after 1s -- sed -u 's/$/!/' ;;
    j*) start_module j --join --claim-after 1s -- tr '\n' '+' ;;
    esac
    pid_of[$1]=$E2E_LAST_PID
}
rand_secs() { awk -v lo="$1" -v span="$2" -v r="$RANDOM" 'BEGIN { printf "%.2f", lo + span * r / 32768 }'; }

for r in "${roles[@]}"; do launch "$r"; done
members_are() { [[ $(rcli SCARD "$NS:type:$1") == "$2" ]]; }
wait_for -t 60 members_are t 2 || fail "a and b did not join type t"
for m in a b j; do wait_for -t 60 instances_at_least "$m" 2 || fail "the 2 instances of $m did not attach"; done

seq -f 'm%g' "$N" >"$T/input.txt"
awk '{ print $0 "+" $0 "!" }' "$T/input.txt" >"$T/expected.txt"   # a passes, b appends !, j joins with +
tobus-send --to @t,j --wait --timeout "$(secs 150)s" <"$T/input.txt" >"$T/send.out" 2>"$T/send.err" &
send_pid=$!
E2E_PIDS+=("$send_pid")

rounds=0
chaos_end=$((SECONDS + $(secs 60)))
while alive "$send_pid" && ((SECONDS < chaos_end)); do
    sleep "$(rand_secs 0.2 1.0)"
    alive "$send_pid" || break
    v=${roles[RANDOM % ${#roles[@]}]}
    p=${pid_of[$v]}
    alive "$p" || { wait "$p" 2>/dev/null; fail "$v (pid $p) exited by itself with code $?"; }
    kill -KILL "$p"
    wait "$p" 2>/dev/null
    rounds=$((rounds + 1))
    sleep "$(rand_secs 0 0.5)"
    launch "$v"
done
note "$rounds rounds of kill -9"

wait_proc "$send_pid"
assert_eq 0 "$RC" "tobus-send --wait exit code (stderr: $(head -c 1500 "$T/send.err"))"
assert_same_file "$T/expected.txt" "$T/send.out" "every joined result, once, in input order"

for sg in "$NS:bus bus" "$NS:in:a module" "$NS:in:b module" "$NS:in:j module"; do
    # shellcheck disable=SC2086
    wait_for -t 60 backlog_empty $sg || fail "backlog left on '$sg': $(backlog $sg)"
done
stuck=0
for k in $(rcli --scan --pattern "$NS:join:j:*"); do
    [[ $k == *:lock ]] && continue
    [[ $(rcli HKEYS "$k") == done ]] || stuck=$((stuck + 1))
done
assert_eq 0 "$stuck" "groups still collecting parts"
assert_eq 0 "$(xlen "$NS:dead")" "entries in $NS:dead (reasons: $(xfield "$NS:dead" '' '' dead.reason | sort | uniq -c | tr '\n' ';'))"
pass
