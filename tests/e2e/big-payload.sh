#!/usr/bin/env bash
# A payload as large as the default --max-payload (64M) goes through one hop (`cat`) with
# tobus-send --whole --wait and comes back byte for byte; tobus-bus and tobus-module hold it a few
# times at most: their peak resident memory (VmHWM) stays under 4 x payload + 30M. That is one
# copy in hand, one being read or written, one decoded, and the program itself; before the
# copies on the hot path were cut they reached 7x and 6x (issue 11, finding 7). Under sanitizers
# (TOBUS_E2E_SCALE > 1) memory is not what it is in use, and only the bytes are checked.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

payload=$((64 << 20))
bound_kib=$(((4 * payload + (30 << 20)) >> 10))

start_bus
bus_pid=$E2E_LAST_PID
start_module up -- cat
module_pid=$E2E_LAST_PID

head -c "$payload" /dev/urandom | base64 -w0 | head -c "$payload" >"$T/payload"
assert_eq "$payload" "$(stat -c %s "$T/payload")" "size of the payload made"

run big tobus-send --whole --to up --wait --timeout "$(secs 120)s" <"$T/payload"
assert_rc 0 "tobus-send --whole --wait of 64M through cat"
assert_same_file "$T/payload" "$RUN_OUT" "the result"

hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
bus_kib=$(hwm_kib "$bus_pid")
module_kib=$(hwm_kib "$module_pid")
note "VmHWM: tobus-bus $((bus_kib >> 10))M, tobus-module $((module_kib >> 10))M, bound $((bound_kib >> 10))M"
if awk -v s="$E2E_SCALE" 'BEGIN { exit !(s <= 1) }'; then
    ((bus_kib < bound_kib)) || fail "tobus-bus peaked at $((bus_kib >> 10))M, more than $((bound_kib >> 10))M"
    ((module_kib < bound_kib)) || fail "tobus-module peaked at $((module_kib >> 10))M, more than $((bound_kib >> 10))M"
fi
pass
