#!/usr/bin/env bash
# A first run with no configuration at all: no TOBUS_REDIS, no flags, nothing on 127.0.0.1:6379.
# tobus-bus starts its own redis-server and tobus-module/tobus-send find it.
E2E_NO_REDIS=1
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/6379' 2>/dev/null; then
    skip "something answers on 127.0.0.1:6379; the no-flags default would use it"
fi

export HOME=$T/home XDG_RUNTIME_DIR=$T/run XDG_STATE_HOME=$T/state
mkdir -p "$HOME" "$XDG_RUNTIME_DIR" "$XDG_STATE_HOME"
chmod 700 "$XDG_RUNTIME_DIR"
unset TOBUS_NAMESPACE
sock=$XDG_RUNTIME_DIR/tobus/redis.sock

start_bus
bus_pid=$E2E_LAST_PID
wait_for -t 60 redis-cli -s "$sock" ping || fail "tobus-bus with no flags started no server on $sock"
start_module upper -- tr a-z A-Z
run send tobus-send --to upper -m 'first run' --wait
assert_rc 0 "tobus-send --to upper --wait with no configuration"
assert_bytes "$RUN_OUT" 'FIRST RUN\n' "round trip with no configuration"
assert_eq 1 "$(redis-cli -s "$sock" EXISTS tobus:bus)" "default namespace 'tobus' on the embedded server"

# A second bus with no flags joins the running embedded server instead of starting another.
start_bus
bus2_pid=$E2E_LAST_PID
run send2 tobus-send --to upper -m again --wait
assert_rc 0 "tobus-send with two buses"
assert_bytes "$RUN_OUT" 'AGAIN\n' "round trip with two buses"
alive "$bus2_pid" || fail "the second tobus-bus exited"
stop_proc "$bus2_pid" TERM
assert_eq 143 "$RC" "second tobus-bus exit code after SIGTERM"
redis-cli -s "$sock" ping >/dev/null || fail "stopping the second bus stopped the first bus's server"

stop_proc "$bus_pid" TERM
assert_eq 143 "$RC" "tobus-bus exit code after SIGTERM"
wait_for -t 30 not redis-cli -s "$sock" ping || fail "the embedded server still answers after the bus stopped"

pass
