#!/usr/bin/env bash
# Several buses and several instances of one module share the work: 2 buses, 2 instances,
# 2000 messages; every result comes back once, in order, and both instances did some of the work.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
start_bus
# Each instance tells its handlers who it is through an environment variable they inherit.
handler=(sh -c 'cat; echo "$E2E_INSTANCE" >>"$E2E_WHO"')
export E2E_WHO=$T/who.txt
E2E_INSTANCE=a start_module work -j 2 -- "${handler[@]}"
E2E_INSTANCE=b start_module work -j 2 -- "${handler[@]}"
wait_for -t 60 instances_at_least work 2 ||
    fail "the two instances of 'work' did not both attach (registry $NS:module:work: $(rcli HKEYS "$NS:module:work" | tr '\n' ' '))"

seq -f 'msg-%g' 2000 >"$T/input.txt"
run send tobus-send --to work --wait --timeout 150s <"$T/input.txt"
assert_rc 0 "tobus-send --to work --wait with 2 buses and 2 instances"
assert_same_file "$T/input.txt" "$RUN_OUT" "results of 2000 messages"

a=$(grep -cx a "$E2E_WHO")
b=$(grep -cx b "$E2E_WHO")
note "instance a ran $a handlers, instance b ran $b"
((a > 0)) || fail "instance a did none of the work (a=$a b=$b)"
((b > 0)) || fail "instance b did none of the work (a=$a b=$b)"
((a + b >= 2000)) || fail "only $((a + b)) handler runs for 2000 messages"

# The registry lists both live instances with their pids.
reg=$(rcli HVALS "$NS:module:work")
assert_eq 2 "$(rcli HLEN "$NS:module:work")" "instances in $NS:module:work"
assert_match '"pid"' "$reg" "registry entries carry the pid"
assert_contains '"work"' "$(rcli HKEYS "$NS:modules" | sed 's/.*/"&"/')" "$NS:modules lists 'work'"

# Both buses are consumers of the bus group.
consumers=$(rcli XINFO CONSUMERS "$NS:bus" bus | grep -cx name)
((consumers >= 2)) || fail "expected 2 consumers in the bus group of $NS:bus, got $consumers"

pass
