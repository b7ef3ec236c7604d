#!/usr/bin/env bash
# cas races between two writers, many rounds: exactly one wins each time (exit 0 for it, 1 for the
# other), the field holds the winner's value, and the change stream has exactly one event per
# round. Concurrent incr loses no increment.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
[[ -x $TOBUS_BIN_DIR/tobus-state ]] || setup_fail "tobus-state not built"

rounds=150
for ((i = 1; i <= rounds; i++)); do
    # Both start at the same moment: each waits for the go file, then races.
    rm -f "$T/go"
    (until [[ -e $T/go ]]; do :; done; exec tobus-state cas "race$i" owner '' A) &
    a=$!
    (until [[ -e $T/go ]]; do :; done; exec tobus-state cas "race$i" owner '' B) &
    b=$!
    : >"$T/go"
    wait "$a"
    ra=$?
    wait "$b"
    rb=$?
    case "$ra$rb" in
    01) want=A ;;
    10) want=B ;;
    *) fail "round $i: exit codes A=$ra B=$rb, expected exactly one 0 and one 1" ;;
    esac
    got=$(rcli HGET "$NS:state:race$i" owner)
    [[ $got == "$want" ]] || fail "round $i: $want won (exit 0) but the field holds '$got'"
done

# One change event per round, naming the winner's value.
bad=$(rcli EVAL '
local count = {}
for _, e in ipairs(redis.call("XRANGE", KEYS[1], "-", "+")) do
  local f = e[2]
  local name
  for i = 1, #f, 2 do if f[i] == "name" then name = f[i + 1] end end
  count[name] = (count[name] or 0) + 1
end
local bad = {}
for i = 1, tonumber(ARGV[1]) do
  if count["race" .. i] ~= 1 then table.insert(bad, "race" .. i .. ":" .. tostring(count["race" .. i])) end
end
return bad' 1 "$NS:state-changes" "$rounds")
[[ -z $bad ]] || fail "rounds without exactly one change event: $bad"

# A lock handed around by cas: four workers, each takes it 10 times; never two holders at once.
worker() {
    local me=$1 n
    for ((n = 0; n < 10; n++)); do
        until tobus-state cas lock owner '' "$me"; do :; done
        tobus-state incr lock holders >/dev/null
        [[ $(tobus-state get lock holders) == 1 ]] || echo "$me saw two holders" >>"$T/lock.errors"
        tobus-state incr lock holders -1 >/dev/null
        tobus-state incr lock total >/dev/null
        tobus-state cas lock owner "$me" '' || echo "$me lost a lock it held" >>"$T/lock.errors"
    done
}
# (Waited for by pid: a bare `wait` would wait for the private redis-server too.)
pids=()
for w in w1 w2 w3 w4; do
    worker "$w" &
    pids+=($!)
done
wait "${pids[@]}"
[[ ! -s $T/lock.errors ]] || fail "lock: $(head -5 "$T/lock.errors")"
assert_eq 40 "$(rcli HGET "$NS:state:lock" total)" "increments made under the lock"

# incr from two writers at once: no increment lost.
pids=()
for w in 1 2; do
    (for ((n = 0; n < 100; n++)); do tobus-state incr counter n >/dev/null; done) &
    pids+=($!)
done
wait "${pids[@]}"
assert_eq 200 "$(rcli HGET "$NS:state:counter" n)" "200 concurrent increments"

pass
