#!/usr/bin/env bash
# tobus-bus --on-receive: a hook (Python, then a shell loop) sees every message the bus takes as a
# JSON line and answers pass, drop (dead letter with its reason) or reroute.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
command -v python3 >/dev/null || skip "python3 not installed"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

export HOOK_LOG=$T/hook.jsonl
# (A hook that starts slowly on a busy machine is given time: the tests of the timeout are elsewhere.)
start_bus --on-receive "python3 '$here/hook.py'" --hook-timeout "$(secs 5)s"
bus=$E2E_LAST_PID
start_module a -- sh -c 'cat; printf " via a"'
start_module b -- sh -c 'cat; printf " via b"'

# pass
run pass tobus-send --to a -m hello --id p --wait
assert_rc 0 "a message the hook passes"
assert_bytes "$RUN_OUT" 'hello via a\n' "result of a passed message"

# The hook saw the envelope: event, id, route, payload; and the environment the bus gave it.
first=$(head -n1 "$HOOK_LOG")
assert_contains '"event":"receive"' "$first" "the hook's line"
assert_contains '"id":"p"' "$first" "the hook's line"
assert_contains '"route":["a"]' "$first" "the hook's line"
assert_contains '"payload":"hello"' "$first" "the hook's line"
# It also saw the result on its way back (route done, from a).
assert_match '"from":"a".*"payload":"hello via a"' "$(cat "$HOOK_LOG")" "the hook sees results too"

# drop: the sender is told, the dead letter has the hook's reason
run drop tobus-send --to a -m 'drop me' --id d --wait
assert_rc 1 "a message the hook drops"
assert_empty_file "$RUN_OUT" "stdout for a dropped message"
assert_contains "no thanks" "$(cat "$RUN_ERR")" "the sender hears the hook's reason"
wait_for -t 10 field_set "$NS:dead" id d dead.reason || fail "no dead letter for d"
assert_match "dropped by the receive hook: no thanks" "$(xfield "$NS:dead" id d dead.reason)" "dead.reason"

# reroute: to b instead of a
run reroute tobus-send --to a -m reroute --wait
assert_rc 0 "a message the hook reroutes"
assert_bytes "$RUN_OUT" 'reroute via b\n' "a rerouted message went to b"

# Many messages, binary payloads: all pass, in a pipeline.
seq 1 300 | run many tobus-send --to a --wait
assert_rc 0 "300 messages through the hook"
assert_eq 300 "$(grep -c ' via a$' "$RUN_OUT")" "results of 300 messages"
printf 'a\0b\xff' | run binary tobus-send --to a --whole --wait
assert_rc 0 "a binary payload through the hook"
assert_bytes "$RUN_OUT" 'a\0b\xff via a' "a binary payload passed unchanged"
assert_contains '"payload_base64":"YQBi/w=="' "$(cat "$HOOK_LOG")" "the hook got the binary payload as base64"

stop_proc "$bus"
assert_eq 130 "$((RC == 143 ? 130 : RC))" "the bus stops on SIGTERM"

# A shell loop as the hook: drops what is routed to 'nowhere', passes the rest; TOBUS_* is set.
start_bus --hook-timeout "$(secs 5)s" --on-receive "env | grep '^TOBUS_' >'$T/hook.env'; while read -r line; do
    case \$line in *'\"route\":[\"nowhere\"]'*) echo '{\"action\":\"drop\",\"reason\":\"nowhere to go\"}' ;;
    *) echo '{\"action\":\"pass\"}' ;; esac; done"
run shell tobus-send --to a -m 'from the shell' --wait
assert_rc 0 "a message through a shell hook"
assert_bytes "$RUN_OUT" 'from the shell via a\n' "result through the shell hook"
run nowhere tobus-send --to nowhere -m x --id n --wait --timeout 20s
assert_rc 1 "a message the shell hook drops"
assert_contains "nowhere to go" "$(cat "$RUN_ERR")" "the reason of the shell hook"
assert_contains "TOBUS_HOOK=receive" "$(cat "$T/hook.env")" "TOBUS_HOOK in the hook's environment"
assert_contains "TOBUS_REDIS=unix://$T/redis.sock" "$(cat "$T/hook.env")" "TOBUS_REDIS in the hook's environment"
assert_contains "TOBUS_NAMESPACE=$NS" "$(cat "$T/hook.env")" "TOBUS_NAMESPACE in the hook's environment"
pass
