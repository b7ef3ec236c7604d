#!/usr/bin/env bash
# The wire protocol is usable from plain redis-cli: a message XADDed by hand comes back on the reply
# stream it names, with status done and the handler's payload.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
start_module upper -- tr a-z A-Z

rcli XADD "$NS:bus" '*' v 1 id x1 route upper payload hi reply "$NS:reply:me" >/dev/null ||
    fail "redis-cli XADD failed"
run xread redis-cli -s "$T/redis.sock" XREAD COUNT 1 BLOCK 60000 STREAMS "$NS:reply:me" 0
assert_rc 0 "redis-cli XREAD BLOCK on $NS:reply:me"
# redis-cli prints: stream, entry id, then field and value lines.
fields=$(tail -n +3 "$RUN_OUT" | paste -d ' ' - -)
[[ -n $fields ]] || fail "no result on $NS:reply:me (XREAD printed: $(cat "$RUN_OUT"))"
grep -qx 'id x1' <<<"$fields" || fail "result has no 'id x1': $fields"
grep -qx 'status done' <<<"$fields" || fail "result has no 'status done': $fields"
grep -qx 'payload HI' <<<"$fields" || fail "result has no 'payload HI': $fields"
grep -qx 'v 1' <<<"$fields" || fail "result has no 'v 1': $fields"
assert_eq 1 "$(xlen "$NS:reply:me")" "entries on $NS:reply:me"

# Two hops, and a result entry read with XRANGE: the trail names both hops.
start_module rev -- rev
rcli XADD "$NS:bus" '*' v 1 id x2 route upper,rev payload abc reply "$NS:reply:me" from me >/dev/null
wait_for -t 60 xlen_ge "$NS:reply:me" 2 || fail "no result for x2 on $NS:reply:me"
assert_eq "done" "$(xfield "$NS:reply:me" id x2 status)" "status of x2"
assert_eq CBA "$(xfield "$NS:reply:me" id x2 payload)" "payload of x2"
trail=$(xfield "$NS:reply:me" id x2 trail)
assert_match '^upper:0:[0-9]+:[0-9]+,rev:0:[0-9]+:[0-9]+$' "$trail" "trail of x2 (HOP:RC:MS:DURATION_MS,...)"

# A failed hop is reported on the reply stream too.
start_module failing -- sh -c 'echo boom >&2; exit 3'
rcli XADD "$NS:bus" '*' v 1 id x3 route failing payload z reply "$NS:reply:me" >/dev/null
wait_for -t 60 xlen_ge "$NS:reply:me" 3 || fail "no result for x3 on $NS:reply:me"
assert_eq failed "$(xfield "$NS:reply:me" id x3 status)" "status of x3"
assert_eq failing "$(xfield "$NS:reply:me" id x3 hop)" "hop of x3"
assert_eq 3 "$(xfield "$NS:reply:me" id x3 rc)" "rc of x3"
assert_contains boom "$(xfield "$NS:reply:me" id x3 stderr)" "stderr of x3"

pass
