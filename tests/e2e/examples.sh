#!/usr/bin/env bash
# The programs in examples/, written against the public C++ API: `shout` (a module with a handler
# callback) and `logging-bus` (a bus with receive and send hooks) do the job of tobus-module and
# tobus-bus with the real tobus-send.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ex=${TOBUS_EXAMPLES_DIR:-$E2E_SRC_DIR/../../build/examples}
[[ -x $ex/shout && -x $ex/logging-bus ]] || fail "examples not built in '$ex' (shout, logging-bus)"

start_bg logging-bus "$ex/logging-bus"
bus_pid=$E2E_LAST_PID
start_bg shout "$ex/shout"
start_module new -- tr a-z A-Z

# The example module upper-cases, through the example bus.
printf 'hello\nworld\n' | run send tobus-send --to shout --id ex --wait
assert_rc 0 "tobus-send --to shout --wait through logging-bus"
assert_bytes "$RUN_OUT" 'HELLO\nWORLD\n' "results from the example module"

# Binary payloads are safe through the API too.
printf 'a\0b\xff' >"$T/bin.in"
run bin tobus-send --to shout --whole --wait <"$T/bin.in"
assert_rc 0 "tobus-send --whole --to shout"
assert_bytes "$RUN_OUT" 'A\0B\377' "binary payload through the example module"

# The receive hook reroutes 'old' to 'new' and refuses messages with a 'block' header.
run old tobus-send --to old -m rerouted --wait
assert_rc 0 "tobus-send --to old (rerouted to 'new' by the hook)"
assert_bytes "$RUN_OUT" 'REROUTED\n' "result of the rerouted message"

run block tobus-send --to shout -m no -H block=1 --id blk --wait --timeout 30s
assert_rc 1 "tobus-send -H block=1 (refused by the receive hook)"
assert_empty_file "$RUN_OUT" "stdout for the refused message"
assert_contains blk "$(cat "$RUN_ERR")" "stderr names the refused message"
wait_for -t 30 field_set "$NS:dead" id blk dead.reason || fail "the refused message was not dead-lettered"
assert_contains "blocked by header" "$(xfield "$NS:dead" id blk dead.reason)" "dead.reason of the refused message"

# The hooks' own output: what the bus received and where it sent it.
log=$(cat "$T/logging-bus.stdout")
assert_contains "recv ex.1 from send" "$log" "logging-bus receive hook output"
assert_contains "send ex.1 to $NS:in:shout" "$log" "logging-bus send hook output"
assert_contains "recv ex.1 from shout" "$log" "logging-bus saw the module's result"

stop_proc "$bus_pid" TERM
assert_eq 143 "$RC" "logging-bus exit code after SIGTERM"

pass
