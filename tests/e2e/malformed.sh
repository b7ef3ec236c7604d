#!/usr/bin/env bash
# Entries written by hand with redis-cli: junk, an unknown protocol version, a bad route, a missing
# payload. Each goes to NS:dead with a reason naming the problem and its fields kept; the bus keeps
# running and the messages behind them flow. The same for junk written into a module's inbox.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
bus_pid=$E2E_LAST_PID
start_module upper -- tr a-z A-Z
module_pid=$E2E_LAST_PID

junk=$(rcli XADD "$NS:bus" '*' junk 1)
v9=$(rcli XADD "$NS:bus" '*' v 9 id bad-v9 route upper payload x)
route=$(rcli XADD "$NS:bus" '*' v 1 id bad-route route 'a,,b' payload x)
nopayload=$(rcli XADD "$NS:bus" '*' v 1 id bad-nopayload route upper)
[[ -n $junk && -n $v9 && -n $route && -n $nopayload ]] || fail "redis-cli XADD failed"

run good tobus-send --to upper -m good --wait
assert_rc 0 "tobus-send --wait after the bad entries"
assert_bytes "$RUN_OUT" 'GOOD\n' "the good message behind the bad ones"

wait_for -t 30 xlen_ge "$NS:dead" 4 ||
    fail "expected 4 dead letters, $NS:dead has $(xlen "$NS:dead")"
sleep 1 # a fifth dead letter (the good message, a duplicate) would show up now
assert_eq 4 "$(xlen "$NS:dead")" "entries in $NS:dead"

reason_of() { xfield "$NS:dead" dead.entry "$1" dead.reason; }
r=$(reason_of "$junk")
[[ -n $r ]] || fail "no dead letter with dead.entry $junk (the junk entry)"
assert_match "missing|version|'v'" "$r" "dead.reason of the junk entry"
assert_eq 1 "$(xfield "$NS:dead" dead.entry "$junk" junk)" "the junk entry's own field is kept"
assert_eq "$NS:bus" "$(xfield "$NS:dead" dead.entry "$junk" dead.stream)" "dead.stream of the junk entry"
[[ -n $(xfield "$NS:dead" dead.entry "$junk" dead.at) ]] || fail "dead letter of the junk entry has no dead.at"

r=$(reason_of "$v9")
[[ -n $r ]] || fail "no dead letter for the v 9 entry"
assert_match "version|'v'|9" "$r" "dead.reason of the v 9 entry"
assert_eq bad-v9 "$(xfield "$NS:dead" dead.entry "$v9" id)" "the v 9 entry's id is kept"

r=$(reason_of "$route")
[[ -n $r ]] || fail "no dead letter for the bad-route entry"
assert_match "route" "$r" "dead.reason of the 'a,,b' route"
assert_eq 'a,,b' "$(xfield "$NS:dead" dead.entry "$route" route)" "the bad route is kept as it was"

r=$(reason_of "$nopayload")
[[ -n $r ]] || fail "no dead letter for the entry without payload"
assert_match "payload" "$r" "dead.reason of the entry without payload"

alive "$bus_pid" || fail "tobus-bus died on the bad entries"
wait_for -t 30 backlog_empty "$NS:bus" bus || fail "bus group left a backlog: $(backlog "$NS:bus" bus)"

# Junk straight into the module's inbox: the module dead-letters it and goes on.
ijunk=$(rcli XADD "$NS:in:upper" '*' junk 2)
inopayload=$(rcli XADD "$NS:in:upper" '*' v 1 id in-nopayload route upper)
run good2 tobus-send --to upper -m good2 --wait
assert_rc 0 "tobus-send --wait after junk in the inbox"
assert_bytes "$RUN_OUT" 'GOOD2\n' "the good message behind the inbox junk"
wait_for -t 30 xlen_ge "$NS:dead" 6 ||
    fail "expected 6 dead letters, $NS:dead has $(xlen "$NS:dead")"
assert_eq "$NS:in:upper" "$(xfield "$NS:dead" dead.entry "$ijunk" dead.stream)" "dead.stream of the inbox junk"
assert_eq 2 "$(xfield "$NS:dead" dead.entry "$ijunk" junk)" "the inbox junk's own field is kept"
[[ -n $(xfield "$NS:dead" dead.entry "$ijunk" dead.reason) ]] || fail "inbox junk has no dead.reason"
assert_match "payload" "$(xfield "$NS:dead" dead.entry "$inopayload" dead.reason)" \
    "dead.reason of the inbox entry without payload"
alive "$module_pid" || fail "tobus-module died on the inbox junk"
wait_for -t 30 backlog_empty "$NS:in:upper" module ||
    fail "module group left a backlog: $(backlog "$NS:in:upper" module)"

# A binary-junk field name and value do not upset anything either.
bin=$(printf '\xff\x00junk' | rcli -x XADD "$NS:bus" '*' v 1 id bad-nul route upper payload-missing)
run good3 tobus-send --to upper -m good3 --wait
assert_rc 0 "tobus-send --wait after a binary junk entry"
assert_bytes "$RUN_OUT" 'GOOD3\n' "the good message behind the binary junk"
wait_for -t 30 field_set "$NS:dead" dead.entry "$bin" dead.reason || fail "no dead letter for the binary junk entry $bin"
alive "$bus_pid" || fail "tobus-bus died on the binary junk"

# A poison entry: delivered 10 times without being acknowledged (a ghost consumer read and claimed
# it), it is dead-lettered by the module that reclaims it instead of being tried forever.
rcli XGROUP CREATE "$NS:in:poison" module 0 MKSTREAM >/dev/null
poison=$(rcli XADD "$NS:in:poison" '*' v 1 id poison1 route poison payload x)
rcli XREADGROUP GROUP module ghost COUNT 1 STREAMS "$NS:in:poison" '>' >/dev/null
for _ in 1 2 3 4 5 6 7 8 9; do
    rcli XCLAIM "$NS:in:poison" module ghost 0 "$poison" >/dev/null
done
[[ $(rcli XPENDING "$NS:in:poison" module - + 1 | sed -n 4p) == 10 ]] ||
    fail "set-up: the poison entry was not delivered 10 times: $(rcli XPENDING "$NS:in:poison" module - + 1 | tr '\n' ' ')"
start_module poison --claim-after 1s -- cat
wait_for -t 60 field_set "$NS:dead" id poison1 dead.reason ||
    fail "the entry delivered 10 times was not dead-lettered"
assert_match "10|times|deliver" "$(xfield "$NS:dead" id poison1 dead.reason)" "dead.reason of the poison entry"
wait_for -t 30 backlog_empty "$NS:in:poison" module ||
    fail "the poison entry is still pending: $(backlog "$NS:in:poison" module)"
run good4 tobus-send --to poison -m after-poison --wait
assert_rc 0 "tobus-send --to poison after the poison entry"
assert_bytes "$RUN_OUT" 'after-poison\n' "the good message behind the poison entry"

pass
