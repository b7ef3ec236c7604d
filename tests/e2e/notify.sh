#!/usr/bin/env bash
# Type=notify readiness without systemd: NOTIFY_SOCKET names a unix datagram socket this test
# listens on. tobus-bus says READY=1 once it routes and tobus-module once it is attached
# (registered, reading its inbox), so a message sent right after READY=1 is handled; neither says
# it when it cannot start; both say STOPPING=1 on SIGTERM, the module while its handler still
# runs (the drain), and handlers do not get NOTIFY_SOCKET.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v python3 >/dev/null || skip "python3 is needed to listen on the notify socket"
"$TOBUS_BIN_DIR/tobus-bus" --help >/dev/null
# Built without libsystemd, the programs tell nothing: nothing to test (meson -Dsystemd=disabled).
if ! ldd "$TOBUS_BIN_DIR/tobus-bus" 2>/dev/null | grep -q libsystemd; then
    skip "built without libsystemd (sd_notify)"
fi

# listen NAME: a datagram socket $T/NAME.sock whose datagrams are appended to $T/NAME.notify, one
# a line, their newlines shown as ';'.
listen() {
    start_bg "listen.$1" python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    out.write("listening\n")
    while True:
        out.write(s.recv(65536).decode().replace("\n", ";") + "\n")
' "$T/$1.sock" "$T/$1.notify"
    wait_for -t 10 grep -qx listening "$T/$1.notify" || fail "the listener on $T/$1.sock did not start"
}
said() { grep -q "$2" "$T/$1.notify"; }  # said NAME REGEX

# not_ready_while_writes_paused NAME: with Redis refusing writes for a while (CLIENT PAUSE WRITE),
# the program just started cannot create its consumer group or register, so it must not say
# READY=1 before the pause ends; then it does.
not_ready_while_writes_paused() {
    sleep "$(secs 1)"
    said "$1" 'READY=1' && fail "$1 said READY=1 while Redis took no writes (no group, no registration yet)"
    wait_for -t 20 said "$1" 'READY=1' || fail "$1 never said READY=1: $(cat "$T/$1.notify")"
}
pause_ms=$(($(secs 2) * 1000))

# The bus: READY=1 with a status, once its consumer group is there.
listen bus
rcli CLIENT PAUSE "$pause_ms" WRITE >/dev/null
NOTIFY_SOCKET=$T/bus.sock start_bus
bus_pid=$E2E_LAST_PID
not_ready_while_writes_paused bus
assert_match '^READY=1;STATUS=routing on ' "$(cat "$T/bus.notify")" "tobus-bus's readiness datagram"
assert_contains "bus" "$(rcli XINFO GROUPS "$NS:bus")" "the bus's consumer group when it said READY=1"

# A module that cannot reach Redis never says READY=1.
listen nope
NOTIFY_SOCKET=$T/nope.sock TOBUS_REDIS=unix://$T/nothing.sock run nope tobus-module nope -- cat
assert_rc 3 "tobus-module without a Redis"
assert_eq "listening" "$(cat "$T/nope.notify")" "what a module that could not attach told the service manager"

# The module: READY=1 once attached; a message sent at once is handled. Its handler does not see
# NOTIFY_SOCKET.
listen up
rcli CLIENT PAUSE "$pause_ms" WRITE >/dev/null
NOTIFY_SOCKET=$T/up.sock start_module up -- sh -c 'tr a-z A-Z; printf " %s" "${NOTIFY_SOCKET-none}"'
up_pid=$E2E_LAST_PID
not_ready_while_writes_paused up
assert_match "^READY=1;STATUS=attached as module 'up'" "$(cat "$T/up.notify")" "tobus-module's readiness datagram"
assert_eq 1 "$(rcli HLEN "$NS:module:up")" "instances of 'up' registered when it said READY=1"
run send tobus-send --to up -m hello --wait --timeout "$(secs 20)s"
assert_rc 0 "a message sent right after READY=1"
assert_bytes "$RUN_OUT" 'HELLO none\n' "its result (and the handler's NOTIFY_SOCKET: none)"
said up STOPPING && fail "tobus-module said STOPPING=1 before it was stopped: $(cat "$T/up.notify")"

# SIGTERM while a handler runs: STOPPING=1 at once, then the handler finishes (the drain).
listen slow
NOTIFY_SOCKET=$T/slow.sock start_module slow -- sh -c 'cat >/dev/null; : >"$0"; sleep 3; printf done' "$T/started"
slow_pid=$E2E_LAST_PID
wait_for -t 20 said slow 'READY=1' || fail "the slow module never said READY=1"
tobus-send --to slow -m x --wait --timeout "$(secs 60)s" >"$T/slow.out" 2>"$T/slow.err" &
send_pid=$!
E2E_PIDS+=("$send_pid")
wait_for -t 30 test -e "$T/started" || fail "the slow handler never started"
kill -TERM "$slow_pid"
wait_for -t 2 said slow 'STOPPING=1' || fail "tobus-module did not say STOPPING=1 on SIGTERM: $(cat "$T/slow.notify")"
alive "$slow_pid" || fail "tobus-module ended before its handler did (no drain)"
wait_proc "$slow_pid"
assert_eq 143 "$RC" "tobus-module's exit status after SIGTERM"
wait_proc "$send_pid"
assert_eq 0 "$RC" "tobus-send --wait for the message in flight at SIGTERM"
assert_bytes "$T/slow.out" 'done\n' "the result of the handler that ran through the stop"

kill -TERM "$bus_pid"
wait_proc "$bus_pid"
assert_eq 143 "$RC" "tobus-bus's exit status after SIGTERM"
said bus 'STOPPING=1' || fail "tobus-bus did not say STOPPING=1 on SIGTERM: $(cat "$T/bus.notify")"

# A bus on its embedded server (the unit's default): READY=1 once it routes there; the
# redis-server it starts does not get NOTIFY_SOCKET (it speaks the protocol too). The server is
# run through a script that writes down its environment (redis-server's own /proc/PID/environ
# is overwritten by its process title).
listen emb
mkdir -m 700 "$T/emb"
printf '#!/bin/sh\nenv >"%s"\nexec redis-server "$@"\n' "$T/server.env" >"$T/redis-wrap"
chmod +x "$T/redis-wrap"
NOTIFY_SOCKET=$T/emb.sock TOBUS_REDIS_SERVER=$T/redis-wrap start_bg bus.emb env -u TOBUS_REDIS \
    tobus-bus --embedded --data-dir "$T/emb" --socket "$T/emb/redis.sock"
emb_pid=$E2E_LAST_PID
wait_for -t 30 said emb 'READY=1' || fail "tobus-bus on its embedded server never said READY=1: $(cat "$T/emb.notify")"
assert_contains "TOBUS_E2E_DIR=$T" "$(cat "$T/server.env")" "the embedded redis-server's environment"
grep -q '^NOTIFY_SOCKET=' "$T/server.env" && fail "the embedded redis-server got NOTIFY_SOCKET"
kill -TERM "$emb_pid"
wait_proc "$emb_pid"
said emb 'STOPPING=1' || fail "tobus-bus on its embedded server did not say STOPPING=1"
pass
