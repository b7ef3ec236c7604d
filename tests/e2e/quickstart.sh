#!/usr/bin/env bash
# The README's example: two one-process-per-message modules chained by a route, used as a filter.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
start_module upper -- tr a-z A-Z
start_module rev -- rev

printf 'abc\ndef\n' | run send tobus-send --to upper,rev --wait
assert_rc 0 "tobus-send --to upper,rev --wait"
assert_bytes "$RUN_OUT" 'CBA\nFED\n' "stdout of the pipeline"
assert_empty_file "$RUN_ERR" "stderr of a clean run"

# The same through the long and short spellings, with -m instead of stdin.
run send2 tobus-send -t upper,rev -w -m hello -m world
assert_rc 0 "tobus-send -t upper,rev -w -m hello -m world"
assert_bytes "$RUN_OUT" 'OLLEH\nDLROW\n' "stdout of the -m variant"

# A last line without a newline still counts, and its result is framed with one.
printf 'x\nyz' | run send3 tobus-send --to rev --wait
assert_rc 0 "tobus-send with an unterminated last line"
assert_bytes "$RUN_OUT" 'x\nzy\n' "stdout for an unterminated last line"

# Without --wait, --print-id prints each message's id, one per line.
printf 'a\nb\n' | run ids tobus-send --to upper --id q --print-id
assert_rc 0 "tobus-send --print-id"
assert_bytes "$RUN_OUT" 'q.1\nq.2\n' "ids printed by --print-id with --id q"
run ids2 tobus-send --to upper -m one --print-id
assert_rc 0 "tobus-send --print-id without --id"
assert_match '^[[:graph:]]{1,200}$' "$(cat "$RUN_OUT")" "a generated id"
[[ $(wc -l <"$RUN_OUT") == 1 ]] || fail "tobus-send -m one --print-id printed $(wc -l <"$RUN_OUT") lines"
run quiet tobus-send --to upper -m two
assert_rc 0 "tobus-send without --wait or --print-id"
assert_empty_file "$RUN_OUT" "stdout without --wait or --print-id"

# Nothing is left behind: every group has acknowledged what it read.
for sg in "$NS:bus bus" "$NS:in:upper module" "$NS:in:rev module"; do
    # shellcheck disable=SC2086
    wait_for -t 30 backlog_empty $sg || fail "backlog left on '$sg': $(backlog $sg) (pending, undelivered)"
done
[[ $(xlen "$NS:dead") == 0 ]] || fail "dead letters after a clean run: $(xlen "$NS:dead")"

# Every key lives under the namespace (TOBUS_NAMESPACE here).
stray=$(rcli --scan | grep -v "^$NS:")
[[ -z $stray ]] || fail "keys outside the namespace '$NS:': $stray"

# -n/--namespace is honoured: in another namespace no bus runs, so the message waits and times out.
run other tobus-send -n other --to upper -m x --wait --timeout 1s
assert_rc 124 "tobus-send -n other (no bus in that namespace)"
[[ $(rcli EXISTS other:bus) == 1 ]] || fail "tobus-send -n other did not write to other:bus"

pass
