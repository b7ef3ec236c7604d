#!/usr/bin/env bash
# run_once (tobus-module --once): runs a handler on one message here, with no Redis, and reports
# what the module would do: the result on stdout and a verdict on stderr, or a description on
# stdout with --dry-run; the exit code is the handler's.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Success: the result's bytes on stdout, the verdict on stderr.
run ok "$D" once -n upper -m 'hello world' -- tr a-z A-Z
assert_rc 0 "once ok"
assert_bytes "$RUN_OUT" 'HELLO WORLD' "once ok: stdout"
assert_eq "would send to the bus: route ends here, rc 0" "$(verdict)" "once ok: verdict"

run route "$D" once -n upper -t b,c -m x -- tr a-z A-Z
assert_rc 0 "once with a route"
assert_eq "would send to the bus: route b,c, rc 0" "$(verdict)" "once with a route: verdict"

# 75: would retry; other: would dead-letter, with the last line of stderr. Exit code: the handler's.
run retry "$D" once -m x -- sh -c 'echo busy >&2; exit 75'
assert_rc 75 "once retry"
assert_empty_file "$RUN_OUT" "once retry: stdout"
assert_eq "would retry: the handler asked for a retry (75): busy" "$(verdict)" "once retry: verdict"

run fail "$D" once -m x -- sh -c 'echo first >&2; echo boom >&2; exit 3'
assert_rc 3 "once fail"
assert_empty_file "$RUN_OUT" "once fail: stdout"
assert_eq "would dead-letter: handler exited with 3: boom" "$(verdict)" "once fail: verdict"
assert_eq "first" "$(head -n 1 "$RUN_ERR")" "once fail: the handler's stderr is passed on"

run killed "$D" once -m x -- sh -c 'kill -9 $$'
assert_rc 137 "once killed"
assert_eq "would dead-letter: handler killed by signal 9" "$(verdict)" "once killed: verdict"

# --dry-run: a description on stdout.
run dry "$D" once --dry-run -n upper -t b,c -H lang=en -m 'a
b' -- tr a-z A-Z
assert_rc 0 "dry-run"
assert_eq "would send to the bus: route b,c, rc 0
id: ID
route: b,c
from: upper
rc: 0
header lang: en
payload: 3 bytes: A\nB" "$(sed 's/^id: .*/id: ID/' "$RUN_OUT")" "dry-run: description"
assert_empty_file "$RUN_ERR" "dry-run: stderr"

run dryfail "$D" once --dry-run -n upper -m x -- sh -c 'echo bad input >&2; exit 65'
assert_rc 65 "dry-run failure"
assert_eq "would dead-letter: handler exited with 65: bad input
id: ID
hop: upper
rc: 65
error: handler exited with 65
stderr: bad input\n" "$(sed 's/^id: .*/id: ID/' "$RUN_OUT")" "dry-run failure: description"

# No bus at all: TOBUS_REDIS and TOBUS_JOB are empty, TOBUS_ONCE is set, the rest as in the module.
TOBUS_REDIS=unix:///nonexistent TOBUS_JOB=stale run env "$D" once -n mod -t next -H x-y=1 -m x -- \
    sh -c 'env | grep "^TOBUS_" | grep -v "^TOBUS_\(ID\|E2E_DIR\|BIN_DIR\)=" | sort'
assert_rc 0 "environment"
assert_eq "TOBUS_ATTEMPT=1
TOBUS_FROM=
TOBUS_HEADER_X_Y=1
TOBUS_JOB=
TOBUS_MODULE=mod
TOBUS_NAMESPACE=
TOBUS_ONCE=1
TOBUS_REDIS=
TOBUS_ROUTE=next" "$(cat "$RUN_OUT")" "environment"

# No COMMAND: pass-through, as the module.
run pass "$D" once -m 'as is'
assert_rc 0 "pass-through"
assert_bytes "$RUN_OUT" 'as is' "pass-through: stdout"

run notfound "$D" once -m x -- no-such-command-here
assert_rc 2 "command not found"
assert_eq "svc-driver: error: cannot run 'no-such-command-here': command not found" "$(cat "$RUN_ERR")" \
    "command not found: message"

# The limits apply as in the module (same JobRun and Process).
run limit "$D" once --max-output 10 -m x -- yes
assert_rc 1 "once --max-output"
assert_eq "would dead-letter: output exceeded 10 bytes" "$(verdict)" "once --max-output: verdict"

# Ctrl-C: the handler (in its own process group, so the terminal's SIGINT misses it) is killed
# with it; the driver ends by the signal. The marker is built by the handler's shell, so only the
# handler's sleep carries it, not the driver's command line.
marker="sleep 7$$"
"$D" once -m x -- sh -c 'sleep $0' "7$$" >"$T/int.out" 2>"$T/int.err" &
pid=$!
wait_for -t 10 not none_left "$marker" || fail "the handler did not start"
kill -INT "$pid"
wait_proc "$pid"
assert_eq 130 "$RC" "once stopped by SIGINT: exit code"
wait_for -t 5 none_left "$marker" || fail "the handler outlived the stopped once"

pass
