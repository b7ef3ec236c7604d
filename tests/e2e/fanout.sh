#!/usr/bin/env bash
# Fan-out: an @TYPE hop (or --publish TYPE) copies each message durably into the inbox of every
# module of the type. A module that is down at publish time gets its copy when it comes back; a
# module that joins the type later does not get old copies. A waiting sender gets every copy.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
start_module a --type t -- sh -c 'printf "a:%s" "$(cat)"'
start_module b --type t -- sh -c 'printf "b:%s" "$(cat)"'
start_module c --type t -- sh -c 'printf "c:%s" "$(cat)"'
c_pid=$E2E_LAST_PID
members_are() { [[ $(rcli SCARD "$NS:type:$1") == "$2" ]]; }
wait_for -t 30 members_are t 3 || fail "a, b and c did not join type t"

# All three answer; the copies print in the order of the type's members (sorted by name).
printf 'x\ny\n' | run pub tobus-send --publish t --wait
assert_rc 0 "tobus-send --publish t --wait"
assert_bytes "$RUN_OUT" 'a:x\nb:x\nc:x\na:y\nb:y\nc:y\n' "every copy's result, per message in member order"

# The same through a route hop, with hops after it: each copy goes on on its own.
start_module up -- tr a-z A-Z
run hop tobus-send --to @t,up -m q --wait
assert_rc 0 "a route with an @t hop"
assert_bytes "$RUN_OUT" 'A:Q\nB:Q\nC:Q\n' "copies continue along the rest of the route"

# c is down during the publish: its copy waits in its inbox and is handled when it is back.
stop_proc "$c_pid"
run down tobus-send --publish t -m z --print-id
assert_rc 0 "publish while c is down"
wait_for -t 30 xlen_ge "$NS:in:c" 1 || fail "no copy in c's inbox while it is down"
tobus-send --publish t -m late --wait --timeout 60s >"$T/late.out" 2>"$T/late.err" &
late_pid=$!
sleep 1
alive "$late_pid" || fail "the sender did not wait for c's copy: $(cat "$T/late.err")"
start_module c --type t -- sh -c 'printf "c:%s" "$(cat)"'
wait_proc "$late_pid"
assert_eq 0 "$RC" "sender waiting for a copy held by a module that was down (stderr: $(cat "$T/late.err"))"
assert_bytes "$T/late.out" 'a:late\nb:late\nc:late\n' "c's copy after it came back"

# A module that joins the type later gets only new copies.
start_module d --type t -- sh -c 'printf "d:%s" "$(cat)"'
wait_for -t 30 instances_at_least d 1 || fail "module d did not attach"
run new tobus-send --publish t -m new --wait
assert_bytes "$RUN_OUT" 'a:new\nb:new\nc:new\nd:new\n' "d gets copies published after it joined"
[[ $(rcli XLEN "$NS:in:d") -le 1 ]] || fail "d got old copies: $(rcli XLEN "$NS:in:d") entries"

# A failing member: the sender gets the others and an error for it; the copy is dead-lettered.
start_module e --type u -- sh -c 'echo nope >&2; exit 2'
start_module f --type u -- cat
wait_for -t 30 members_are u 2 || fail "e and f did not join type u"
run partial tobus-send --publish u -m m --wait
assert_rc 1 "a fan-out with one failing member"
assert_bytes "$RUN_OUT" 'm\n' "the surviving copy's result"
assert_contains "nope" "$(cat "$RUN_ERR")" "the failing copy's stderr"

# No module of the type: the message is dead-lettered and the sender told, exit 1.
run none tobus-send --publish nobody -m m --wait --timeout 10s
assert_rc 1 "a type without modules"
assert_contains "no module of type 'nobody'" "$(cat "$RUN_ERR")" "the reason"

# Members written by hand that no module could be get no copies (no inbox nobody serves), and the
# bus says so once; a type of such members only is a type without modules.
rcli SADD "$NS:type:u" 'a b' '../x' "$(printf 'c\td')" >/dev/null
run handmade tobus-send --publish u -m h --wait --timeout 60s
assert_rc 1 "a fan-out to e, f and three members that are not module names"
assert_bytes "$RUN_OUT" 'h\n' "the surviving copy's result"
for bad in 'a b' '../x'; do
    assert_eq 0 "$(rcli EXISTS "$NS:in:$bad")" "an inbox for the member '$bad'"
done
run handmade2 tobus-send --publish u -m h2 --wait --timeout 60s
assert_eq 1 "$(grep -c "type 'u' has a member that is not a module name, '../x'" "$T/bus.1.log")" \
    "warnings about '../x' after two messages"
assert_contains "'c\\td'" "$(cat "$T/bus.1.log")" "the tab in a member, escaped"
rcli SADD "$NS:type:junk" 'no good' >/dev/null
run junk tobus-send --publish junk -m m --wait --timeout 60s
assert_rc 1 "a type whose only member is not a module name"
assert_contains "no module of type 'junk'" "$(cat "$RUN_ERR")" "the reason"
pass
