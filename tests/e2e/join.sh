#!/usr/bin/env bash
# Joins: --join waits for all the copies one fan-out made and runs the handler once; --join N
# joins N messages sent with one --correlation id (the seed's A->B->E, C->D->E graph), and every
# waiting sender gets the joined result. Failed branches and timeouts follow --on-branch-fail.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
for m in a b c; do start_module "$m" --type t -- sh -c "printf '$m:%s' \"\$(cat)\""; done
start_module e --join -- sh -c 'printf "%s/%s " "$TOBUS_JOIN_PARTS" "$TOBUS_JOIN_EXPECTED"; cat'
e_pid=$E2E_LAST_PID
members_are() { [[ $(rcli SCARD "$NS:type:$1") == "$2" ]]; }
wait_for -t 30 members_are t 3 || fail "a, b and c did not join type t"

run join tobus-send --to @t,e -m x --wait
assert_rc 0 "fan-out then join"
assert_bytes "$RUN_OUT" '3/3 a:x\nb:x\nc:x\n' "one result for the group, parts newline-joined in copy order"

start_module ej --join --join-format json -- cat
run json tobus-send --to @t,ej -m y --wait
assert_bytes "$RUN_OUT" '["a:y","b:y","c:y"]\n' "--join-format json"

# E killed mid-group: parts are durable; a restarted E finishes the group.
stop_proc "$e_pid" KILL
start_module slow --type s -- sh -c 'sleep 3; printf "slow:%s" "$(cat)"'
start_module fast --type s -- sh -c 'printf "fast:%s" "$(cat)"'
wait_for -t 30 members_are s 2 || fail "slow and fast did not join type s"
tobus-send --to @s,e2 -m g --wait --timeout 60s >"$T/g.out" 2>"$T/g.err" &
g_pid=$!
start_module e2 --join -- sh -c 'cat'
e2_pid=$E2E_LAST_PID
wait_for -t 30 bash -c "[[ \$(redis-cli -s '$T/redis.sock' --scan --pattern '$NS:join:e2:*' | grep -vc lock) -ge 1 ]]" ||
    fail "no half-collected group stored for e2"
stop_proc "$e2_pid" KILL
sleep 3.5
start_module e2 --join --claim-after 1s -- sh -c 'cat'
wait_proc "$g_pid"
assert_eq 0 "$RC" "the group finished after e2 was killed mid-group (stderr: $(cat "$T/g.err"))"
assert_bytes "$T/g.out" 'fast:g\nslow:g\n' "the joined result after a restart"

# The seed's graph: A -> B -> E and C -> D -> E, joined by correlation; both senders get it.
start_module A -- sed -u 's/^/A/'
start_module B -- sed -u 's/$/B/'
start_module C -- sed -u 's/^/C/'
start_module D -- sed -u 's/$/D/'
start_module E --join 2 -- sh -c 'sort | paste -sd+ - | tr -d "\\n"'
tobus-send --to A,B,E --correlation job1 -m 1 --wait >"$T/ab.out" 2>"$T/ab.err" &
ab=$!
run cd tobus-send --to C,D,E --correlation job1 -m 2 --wait --timeout 30s
wait_proc "$ab"
assert_eq 0 "$RC" "the A-B branch's sender"
assert_bytes "$RUN_OUT" 'A1B+C2D\n' "the C-D branch's sender gets the joined result"
assert_bytes "$T/ab.out" 'A1B+C2D\n' "the A-B branch's sender gets the same result"

# A failing branch: fail (default) fails the group for every waiting sender, at once.
start_module bad --type v -- sh -c 'exit 3'
start_module good --type v -- cat
wait_for -t 30 members_are v 2 || fail "bad and good did not join type v"
start_module jf --join -- cat
run bf tobus-send --to @v,jf -m p --wait --timeout 30s
assert_rc 1 "a failed branch with --on-branch-fail fail"
assert_contains "a branch failed" "$(cat "$RUN_ERR")" "the group's failure names the branch"
# ignore: join what arrived and say which branch is missing.
start_module ji --join --on-branch-fail ignore -- sh -c 'printf "[%s] " "$TOBUS_JOIN_MISSING"; cat'
run bi tobus-send --to @v,ji -m p --wait --timeout 30s
assert_rc 1 "the failed branch is still reported"
assert_bytes "$RUN_OUT" '[0] p\n' "what arrived, with the missing branch named"

# A stuck group never waits forever: --join-timeout.
start_module lost --type w -- sleep 60
start_module here --type w -- cat
wait_for -t 30 members_are w 2 || fail "lost and here did not join type w"
start_module jt --join --join-timeout 2s -- cat
run jt tobus-send --to @w,jt -m p --wait --timeout 30s
assert_rc 1 "a group that timed out"
assert_contains "join timed out with 1 of 2 parts" "$(cat "$RUN_ERR")" "the timeout's reason"
for k in $(rcli --scan --pattern "$NS:join:jt:*"); do
    [[ $(rcli HKEYS "$k") == done ]] || fail "the timed-out group is still stored: $k: $(rcli HKEYS "$k" | tr '\n' ' ')"
done
pass
