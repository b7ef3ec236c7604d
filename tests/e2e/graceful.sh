#!/usr/bin/env bash
# SIGTERM a module while a slow handler runs: the handler finishes, its result arrives, the module
# acknowledges, deregisters and exits 143. A second SIGTERM kills the handler instead; its message
# stays pending and another instance gets it.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
start_module slow -- sh -c 'p=$(cat); echo "$TOBUS_ATTEMPT" >>"$0"; sleep 2; printf "%s done" "$p"' "$T/started"
mod_pid=$E2E_LAST_PID

tobus-send --to slow -m hi --wait --timeout 120s >"$T/send.out" 2>"$T/send.err" &
send_pid=$!
E2E_PIDS+=("$send_pid")
wait_for -t 60 test -s "$T/started" || fail "the slow handler never started"
kill -TERM "$mod_pid"
wait_proc "$mod_pid"
assert_eq 143 "$RC" "tobus-module exit code after SIGTERM"
wait_proc "$send_pid"
RUN_ERR=$T/send.err
assert_rc 0 "tobus-send --wait whose handler ran through the module's SIGTERM"
assert_bytes "$T/send.out" 'hi done\n' "result of the handler that was allowed to finish"
assert_eq 0 "$(rcli HLEN "$NS:module:slow")" "live instances of 'slow' after it stopped (deregistered)"
wait_for -t 10 backlog_empty "$NS:in:slow" module ||
    fail "the stopped module left a backlog: $(backlog "$NS:in:slow" module) (pending, undelivered)"

# A second signal kills the running handler; the message is redelivered to a new instance.
: >"$T/started"
start_module slow --claim-after 1s -- sh -c 'p=$(cat); echo "$TOBUS_ATTEMPT" >>"$0"; sleep 2; printf "%s done" "$p"' "$T/started"
mod_pid=$E2E_LAST_PID
tobus-send --to slow -m again --wait --timeout 120s >"$T/send2.out" 2>"$T/send2.err" &
send_pid=$!
E2E_PIDS+=("$send_pid")
wait_for -t 60 test -s "$T/started" || fail "the slow handler never started (second round)"
kill -TERM "$mod_pid"
sleep 0.5
kill -TERM "$mod_pid"
wait_proc "$mod_pid"
assert_eq 143 "$RC" "tobus-module exit code after two SIGTERMs"
alive "$send_pid" || fail "tobus-send ended though the handler was killed: $(cat "$T/send2.err")"
start_module slow --claim-after 1s -- sh -c 'p=$(cat); echo "$TOBUS_ATTEMPT" >>"$0"; sleep 2; printf "%s done" "$p"' "$T/started"
wait_proc "$send_pid"
RUN_ERR=$T/send2.err
assert_rc 0 "tobus-send --wait whose handler was killed by a second SIGTERM"
assert_bytes "$T/send2.out" 'again done\n' "result redelivered to the new instance"
note "attempts seen by the handler: $(tr '\n' ' ' <"$T/started")"

# SIGTERM is honoured while Redis is gone and the module is reconnecting: it does not sit out the
# whole reconnect budget first.
start_bg redis2 redis-server --port 0 --unixsocket "$T/r2.sock" --unixsocketperm 700 --save '' \
    --appendonly no --dir "$T"
wait_for -t 20 redis-cli -s "$T/r2.sock" ping || fail "second redis-server did not start"
start_module lonely -r "unix://$T/r2.sock"
mod_pid=$E2E_LAST_PID
registered() { (($(redis-cli -s "$T/r2.sock" HLEN "$NS:module:lonely") >= 1)); }
wait_for -t 30 registered ||
    fail "module 'lonely' did not register on the second server"
redis-cli -s "$T/r2.sock" SHUTDOWN NOSAVE >/dev/null 2>&1
wait_for -t 10 grep -q . "$T/module.lonely.1.log" || true # it notices the lost connection
kill -TERM "$mod_pid"
wait_for -t 10 not alive "$mod_pid" ||
    fail "tobus-module still runs 10s after SIGTERM while reconnecting to a stopped Redis"
wait_proc "$mod_pid"
assert_eq 143 "$RC" "tobus-module exit code after SIGTERM while reconnecting"

pass
