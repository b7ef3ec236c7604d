#!/usr/bin/env bash
# The embedded default: tobus-bus --embedded starts its own redis-server (socket under
# $XDG_RUNTIME_DIR, data under $XDG_STATE_HOME, or TOBUS_SOCKET/TOBUS_DATA_DIR), the other programs
# find it with no -r, SIGTERM stops the bus and its server, and the data survives a restart (AOF).
E2E_NO_REDIS=1
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export HOME=$T/home XDG_RUNTIME_DIR=$T/run XDG_STATE_HOME=$T/state
mkdir -p "$HOME" "$XDG_RUNTIME_DIR" "$XDG_STATE_HOME"
chmod 700 "$XDG_RUNTIME_DIR"

# redis-server processes of this test still running (the bus's own servers): found by this test's
# environment marker, or by $T in their command line when the bus gave them a clean environment.
our_servers() {
    local f pid
    for f in /proc/[0-9]*/comm; do
        [[ $(cat "$f" 2>/dev/null) == redis-server ]] || continue
        pid=${f#/proc/}
        pid=${pid%/comm}
        alive "$pid" || continue
        if grep -qzxF "TOBUS_E2E_DIR=$T" "/proc/$pid/environ" 2>/dev/null ||
            tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$T/"; then
            echo "$pid"
        fi
    done
}

# round_trip SOCKET DATADIR LABEL: bus --embedded, a module and a sender without -r, persistence.
servers_gone() { [[ -z $(our_servers) ]]; }

round_trip() {
    local sock=$1 data=$2 label=$3 bus_pid mod_pid
    start_bus --embedded
    bus_pid=$E2E_LAST_PID
    wait_for -t 60 redis-cli -s "$sock" ping ||
        fail "$label: no embedded redis-server answers on $sock"
    alive "$bus_pid" || fail "$label: tobus-bus --embedded exited"
    [[ -n $(our_servers) ]] || fail "$label: no redis-server process started by the bus"

    start_module upper -- tr a-z A-Z
    mod_pid=$E2E_LAST_PID
    run send tobus-send --to upper -m hello --wait
    assert_rc 0 "$label: tobus-send --wait with no -r"
    assert_bytes "$RUN_OUT" 'HELLO\n' "$label: round trip through the embedded server"
    assert_eq 1 "$(redis-cli -s "$sock" EXISTS "$NS:bus")" "$label: $NS:bus lives on the embedded server"

    redis-cli -s "$sock" SET e2e:persist "kept $label" >/dev/null
    stop_proc "$mod_pid" TERM
    assert_eq 143 "$RC" "$label: tobus-module exit code after SIGTERM"

    stop_proc "$bus_pid" TERM
    assert_eq 143 "$RC" "$label: tobus-bus exit code after SIGTERM"
    wait_for -t 30 not redis-cli -s "$sock" ping || fail "$label: the embedded server still answers after the bus stopped"
    wait_for -t 30 not test -e "$sock" || fail "$label: socket $sock still there after the bus stopped"
    wait_for -t 30 servers_gone ||
        fail "$label: redis-server still running after the bus stopped: pids $(our_servers)"
    [[ -n $(find "$data" -type f 2>/dev/null) ]] || fail "$label: nothing written in the data dir $data"

    # Again: the data is there.
    start_bus --embedded
    bus_pid=$E2E_LAST_PID
    wait_for -t 60 redis-cli -s "$sock" ping || fail "$label: restarted bus: no server on $sock"
    assert_eq "kept $label" "$(redis-cli -s "$sock" GET e2e:persist)" "$label: a key set before the restart"
    stop_proc "$bus_pid" TERM
    assert_eq 143 "$RC" "$label: restarted tobus-bus exit code after SIGTERM"
    wait_for -t 30 servers_gone || fail "$label: redis-server left running after the second stop"
}

export TOBUS_NAMESPACE=emb
NS=emb
round_trip "$XDG_RUNTIME_DIR/tobus/redis.sock" "$XDG_STATE_HOME/tobus" "XDG dirs"

export TOBUS_SOCKET=$T/sock/s.sock TOBUS_DATA_DIR=$T/data
mkdir -p "$T/sock"
round_trip "$TOBUS_SOCKET" "$TOBUS_DATA_DIR" "TOBUS_SOCKET/TOBUS_DATA_DIR"
unset TOBUS_SOCKET TOBUS_DATA_DIR

# --socket/--data-dir options: a sender finds it with -r unix://.
start_bus --embedded --socket "$T/sock/o.sock" --data-dir "$T/odata"
bus_pid=$E2E_LAST_PID
wait_for -t 60 redis-cli -s "$T/sock/o.sock" ping || fail "--socket: no server on $T/sock/o.sock"
start_module p -r "unix://$T/sock/o.sock"
run send tobus-send -r "unix://$T/sock/o.sock" --to p -m opt --wait
assert_rc 0 "tobus-send -r unix://… to a bus started with --socket"
assert_bytes "$RUN_OUT" 'opt\n' "round trip with --socket/--data-dir"
stop_proc "$bus_pid" TERM
assert_eq 143 "$RC" "tobus-bus --socket exit code after SIGTERM"
[[ -n $(find "$T/odata" -type f 2>/dev/null) ]] || fail "--data-dir: nothing written in $T/odata"

pass
