#!/usr/bin/env bash
# Dead letters Redis refuses: NS:dead is a key of the wrong type. The failed messages (no reply
# stream), a junk entry on the bus and a junk entry in a module's inbox are never acknowledged:
# they stay pending, are tried again after --claim-after (not in a busy loop, and not given up on
# as "delivered too often", even by a bus started later), each program says so in one warning line,
# and once the key is fixed every dead letter arrives exactly once. Results the bus takes in
# between do not count as the dead-letter stream working again (no second warning). Then a reply
# stream and an inbox of the wrong type: one dead letter each, acknowledged, one warning each. And
# a joining module whose record of a group's parts has the wrong type.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=12

# pending STREAM GROUP: prints "COUNT MIN MAX": the group's pending entries and the least and most
# times one of them was delivered ("0 0 0" while the stream or its group does not exist yet).
E2E_LUA_PENDING='
local p = redis.pcall("XPENDING", KEYS[1], ARGV[1], "-", "+", 100000)
if p.err then return {0, 0, 0} end
local min, max = 0, 0
for i, e in ipairs(p) do
  if i == 1 or e[4] < min then min = e[4] end
  if e[4] > max then max = e[4] end
end
return {#p, min, max}'
pending() { rcli EVAL "$E2E_LUA_PENDING" 1 "$1" "$2" | tr '\n' ' ' | sed 's/ $//'; }
# held STREAM GROUP COUNT MIN_DELIVERIES: exactly COUNT pending, each delivered at least that often.
held() {
    local p
    read -r -a p <<<"$(pending "$1" "$2")"
    ((p[0] == $3 && p[1] >= $4))
}
# Delivers every pending entry N more times to a consumer that is not there (as a crashed reader
# would), so their delivery counts pass the limit of 10.
E2E_LUA_BUMP='
local p = redis.call("XPENDING", KEYS[1], ARGV[1], "-", "+", 100000)
for _, e in ipairs(p) do
  for _ = 1, tonumber(ARGV[2]) do redis.call("XCLAIM", KEYS[1], ARGV[1], "ghost", 0, e[1]) end
end
return #p'
warnings() { grep -c "cannot write dead letters to '$NS:dead'" "$1"; }
has_warning() { (($(warnings "$1") >= 1)); }

rcli SET "$NS:dead" x >/dev/null
start_module failing --claim-after 1s -- false
module_pid=$E2E_LAST_PID
t0=$SECONDS
start_bus --claim-after 1s
bus_pid=$E2E_LAST_PID

# All but the last two now; those two once the module refuses the inbox junk's dead letter.
args=()
for i in $(seq 1 $((N - 2))); do args+=(-m "m$i"); done
run send tobus-send --to failing --print-id "${args[@]}"
assert_rc 0 "tobus-send of $((N - 2)) messages"
cp "$RUN_OUT" "$T/sent.ids"
junk=$(rcli XADD "$NS:bus" '*' junk 1)
ijunk=$(rcli XADD "$NS:in:failing" '*' junk 2)
[[ -n $junk && -n $ijunk ]] || fail "redis-cli XADD failed"
wait_for -t 60 grep -q "cannot write .* to '$NS:dead'" "$T/module.failing.1.log" ||
    fail "the module did not warn about $NS:dead"
# Their results reach the bus while the dead letter is still refused: that is no recovery, and
# the module does not warn again when it retries the junk.
read -r -a q <<<"$(pending "$NS:in:failing" module)"
run send2 tobus-send --to failing --print-id -m "m$((N - 1))" -m "m$N"
assert_rc 0 "tobus-send of 2 more messages"
cat "$RUN_OUT" >>"$T/sent.ids"
sort -o "$T/sent.ids" "$T/sent.ids"
assert_eq "$N" "$(sort -u "$T/sent.ids" | wc -l)" "distinct ids printed by tobus-send"

# Every failure and the junk entry stay pending on the bus, tried again and still pending.
wait_for -t 60 held "$NS:bus" bus $((N + 1)) 3 ||
    fail "expected $((N + 1)) entries pending on $NS:bus, each delivered 3 times or more; pending (count min max): $(pending "$NS:bus" bus); $NS:dead has type $(rcli TYPE "$NS:dead")"
assert_eq string "$(rcli TYPE "$NS:dead")" "type of $NS:dead while it is broken"
# Retried once per claim period at most, not in a loop: a delivery a second is the ceiling.
read -r -a p <<<"$(pending "$NS:bus" bus)"
((p[2] <= SECONDS - t0 + 3)) ||
    fail "entries were delivered ${p[2]} times in $((SECONDS - t0))s: the bus retries in a loop"
# The module's own dead letter (the inbox junk) stays pending in its group the same way.
# (Retried twice more after the two results above were written.)
wait_for -t 60 held "$NS:in:failing" module 1 $((q[2] + 2)) ||
    fail "the inbox junk is not held pending by the module: $(pending "$NS:in:failing" module)"

# One warning for the lot, not one per entry or per retry.
wait_for -t 30 has_warning "$T/bus.1.log" || fail "the bus did not warn about $NS:dead"
assert_match "cannot write dead letters to '$NS:dead': WRONGTYPE.*left pending on '$NS:bus', tried again every 1s" \
    "$(cat "$T/bus.1.log")" "the bus's warning"
(($(warnings "$T/bus.1.log") < N)) || fail "the bus warned $(warnings "$T/bus.1.log") times for $N entries"
assert_match "cannot write 1 result\(s\) to '$NS:dead': WRONGTYPE.*1 entry on '$NS:in:failing'; left pending" \
    "$(cat "$T/module.failing.1.log")" "the module's warning"
(($(grep -c "cannot write .* to '$NS:dead'" "$T/module.failing.1.log") == 1)) ||
    fail "the module repeated its warning at every retry"

# Past the limit of 10 deliveries: this bus still holds them (it knows why they are pending) ...
read -r -a p <<<"$(pending "$NS:bus" bus)"
rcli EVAL "$E2E_LUA_BUMP" 1 "$NS:bus" bus 10 >/dev/null
wait_for -t 60 held "$NS:bus" bus $((N + 1)) $((p[2] + 11)) ||
    fail "after the delivery counts passed 10: pending (count min max) $(pending "$NS:bus" bus)"
alive "$bus_pid" || fail "tobus-bus died"
# ... and so does a bus started afresh, which gives up on them as delivered too often, and whose
# dead letter is refused too.
stop_proc "$bus_pid"
read -r -a p <<<"$(pending "$NS:bus" bus)"
start_bus --claim-after 1s -v
bus_pid=$E2E_LAST_PID
wait_for -t 60 held "$NS:bus" bus $((N + 1)) $((p[2] + 2)) ||
    fail "the second bus did not hold the entries: pending (count min max) $(pending "$NS:bus" bus)"
wait_for -t 30 has_warning "$T/bus.2.log" || fail "the second bus did not warn about $NS:dead"
assert_eq string "$(rcli TYPE "$NS:dead")" "type of $NS:dead while it is broken"

# Fixed: every dead letter arrives, once.
rcli DEL "$NS:dead" >/dev/null
wait_for -t 60 backlog_empty "$NS:bus" bus ||
    fail "entries still pending on $NS:bus after $NS:dead was fixed: $(backlog "$NS:bus" bus)"
wait_for -t 60 backlog_empty "$NS:in:failing" module ||
    fail "entries still pending on $NS:in:failing after $NS:dead was fixed: $(backlog "$NS:in:failing" module)"
assert_eq $((N + 2)) "$(xlen "$NS:dead")" "dead letters: $N failures, the bus junk, the inbox junk"
xfield "$NS:dead" dead.stream "$NS:bus" id | sort >"$T/dead.ids"
assert_same_file "$T/sent.ids" "$T/dead.ids" "ids of the dead letters"
assert_eq "$(printf 'handler exited with 1\n%.0s' $(seq 1 "$N"))" \
    "$(xfield "$NS:dead" dead.hop failing dead.reason)" "dead.reason of each failure"
# (Told apart by their own field: the two junk entries may have the same id in their streams.)
assert_eq "$junk" "$(xfield "$NS:dead" junk 1 dead.entry)" "dead.entry of the bus junk"
assert_eq "$NS:bus" "$(xfield "$NS:dead" junk 1 dead.stream)" "dead.stream of the bus junk"
assert_match "missing|version|'v'" "$(xfield "$NS:dead" junk 1 dead.reason)" "dead.reason of the bus junk"
assert_eq "$ijunk" "$(xfield "$NS:dead" junk 2 dead.entry)" "dead.entry of the inbox junk"
assert_eq "$NS:in:failing" "$(xfield "$NS:dead" junk 2 dead.stream)" "dead.stream of the inbox junk"
wait_for -t 30 grep -q "'$NS:dead' takes dead letters again" "$T/bus.2.log" ||
    fail "the bus did not say $NS:dead works again"

# Other refused writes, with NS:dead working. A reply stream of the wrong type: the failure is
# dead-lettered once and acknowledged, the result for the sender dropped with a warning.
rcli SET "$NS:reply:broken" x >/dev/null
rcli XADD "$NS:bus" '*' v 1 id r-fail route failing reply "$NS:reply:broken" payload x >/dev/null
# An inbox of the wrong type: the message is dead-lettered instead, saying why.
rcli SET "$NS:in:blocked" x >/dev/null
run blocked tobus-send --to blocked -m b --print-id
assert_rc 0 "tobus-send --to blocked"
blocked=$(cat "$RUN_OUT")
wait_for -t 60 field_set "$NS:dead" id r-fail dead.reason || fail "no dead letter for r-fail"
wait_for -t 60 field_set "$NS:dead" id "$blocked" dead.reason || fail "no dead letter for $blocked"
wait_for -t 60 backlog_empty "$NS:bus" bus || fail "entries left pending on $NS:bus: $(backlog "$NS:bus" bus)"
wait_for -t 60 backlog_empty "$NS:in:failing" module ||
    fail "entries left pending on $NS:in:failing: $(backlog "$NS:in:failing" module)"
assert_eq "handler exited with 1" "$(xfield "$NS:dead" id r-fail dead.reason)" "the one dead letter of r-fail"
assert_match "cannot write to '$NS:in:blocked': WRONGTYPE" "$(xfield "$NS:dead" id "$blocked" dead.reason)" \
    "the one dead letter of $blocked"
assert_eq $((N + 4)) "$(xlen "$NS:dead")" "dead letters after the broken reply stream and inbox"
assert_match "cannot write 1 result\(s\) to '$NS:reply:broken': WRONGTYPE.*without telling the sender" \
    "$(cat "$T/bus.2.log")" "the bus's warning about the reply stream"
assert_match "cannot write 1 entry to '$NS:in:blocked': WRONGTYPE.*dead-lettering it" \
    "$(cat "$T/bus.2.log")" "the bus's warning about the inbox"

# A join whose record of parts has the wrong type: the parts stay pending in the inbox (the
# module does not exit), and once the key is fixed the group is joined and the sender answered.
rcli SET "$NS:join:j:corr:c1" x >/dev/null
start_module j --join 2 --claim-after 1s -- sh -c 'sort | paste -sd+ - | tr -d "\n"'
join_pid=$E2E_LAST_PID
start_bg waiter tobus-send --to j --correlation c1 -m 1 -m 2 --wait --timeout 120s
waiter_pid=$E2E_LAST_PID
wait_for -t 60 held "$NS:in:j" module 2 3 ||
    fail "the parts are not held pending in $NS:in:j: $(pending "$NS:in:j" module); module alive: $(alive "$join_pid" && echo yes || echo no)"
alive "$join_pid" || fail "tobus-module --join exited on a refused part"
assert_match "cannot store a part of group 'corr:c1': WRONGTYPE.*left pending, tried again after 1s" \
    "$(cat "$T/module.j.1.log")" "the joining module's warning"
(($(grep -c "cannot store a part" "$T/module.j.1.log") == 1)) || fail "the joining module repeated its warning"
rcli DEL "$NS:join:j:corr:c1" >/dev/null
wait_proc "$waiter_pid"
assert_eq 0 "$RC" "exit code of the waiting sender"
assert_bytes "$T/waiter.stdout" '1+2\n1+2\n' "the joined result, for both messages"
wait_for -t 60 backlog_empty "$NS:in:j" module || fail "parts left pending in $NS:in:j: $(backlog "$NS:in:j" module)"

alive "$bus_pid" || fail "tobus-bus died"
alive "$module_pid" || fail "tobus-module died"

pass
