#!/usr/bin/env bash
# The handler contract: exit 0 forwards, 75 retries with backoff, anything else fails the message
# at once (dead letter + the waiting sender is told), --timeout kills the handler's process group;
# the environment a handler sees.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus

# --- a failing handler: exit 2 with 'boom' as its last stderr line --------------------------------
start_module failing -- sh -c 'p=$(cat); if [ "$p" = bad ]; then echo "first line" >&2; echo boom >&2; exit 2; fi; printf "%s!" "$p"'
printf 'ok1\nbad\nok2\n' | run fail tobus-send --to failing --id f --wait
assert_rc 1 "tobus-send --wait with one failing message"
assert_bytes "$RUN_OUT" 'ok1!\nok2!\n' "the other messages of the send still print"
err=$(cat "$RUN_ERR")
# The contract's line; the hop may be quoted ('failing'), as STYLE.md quotes names the user gave.
assert_match "^tobus-send: error: message f\.2 failed at hop '?failing'? \(rc 2\): boom\$" "$err" \
    "stderr line for the failed message"
[[ $(grep -c . "$RUN_ERR") == 1 ]] || fail "expected exactly one stderr line, got: $err"
wait_for -t 30 field_eq "$NS:dead" id f.2 dead.rc 2 ||
    fail "no dead letter for f.2 with dead.rc 2; $NS:dead has $(xlen "$NS:dead") entries"
[[ $(xfield "$NS:dead" id f.2 id | wc -l) == 1 ]] || fail "f.2 dead-lettered more than once"
[[ -n $(xfield "$NS:dead" id f.2 dead.reason) ]] || fail "dead letter f.2 has no dead.reason"
assert_eq failing "$(xfield "$NS:dead" id f.2 dead.hop)" "dead.hop of f.2"
assert_eq 1 "$(xfield "$NS:dead" id f.2 dead.attempts)" "dead.attempts of f.2 (exit 2 is not retried)"
assert_contains boom "$(xfield "$NS:dead" id f.2 dead.stderr)" "dead.stderr of f.2"
assert_eq bad "$(xfield "$NS:dead" id f.2 payload)" "payload kept in the dead letter of f.2"
[[ -z $(xfield "$NS:dead" id f.1 id) && -z $(xfield "$NS:dead" id f.3 id) ]] ||
    fail "a message that succeeded was dead-lettered"

# --- a retrying handler: 75 on the first attempt, 0 on the second --------------------------------
start_module retry --backoff 100ms -- sh -c 'p=$(cat); if [ "$TOBUS_ATTEMPT" = 1 ]; then echo "busy, later" >&2; exit 75; fi; printf "%s attempt=%s" "$p" "$TOBUS_ATTEMPT"'
run retry tobus-send --to retry -m hi --wait
assert_rc 0 "tobus-send --wait through a handler that exits 75 once"
assert_bytes "$RUN_OUT" 'hi attempt=2\n' "result of the retried message"

# --- always 75 with --retries 2: fails after 3 attempts ------------------------------------------
start_module busy --retries 2 --backoff 100ms -- sh -c 'echo "still busy $TOBUS_ATTEMPT" >&2; exit 75'
run busy tobus-send --to busy -m x --id b1 --wait
assert_rc 1 "tobus-send --wait through a handler that always exits 75 (--retries 2)"
assert_empty_file "$RUN_OUT" "stdout for a message that failed"
assert_match "^tobus-send: error: message b1 failed at hop '?busy'? \(rc 75\): still busy 3\$" "$(cat "$RUN_ERR")" \
    "stderr line after the retries ran out"
wait_for -t 30 field_eq "$NS:dead" id b1 dead.attempts 3 ||
    fail "dead letter b1: dead.attempts '$(xfield "$NS:dead" id b1 dead.attempts)', expected 3"
assert_eq 75 "$(xfield "$NS:dead" id b1 dead.rc)" "dead.rc of b1"

# --- a hanging handler with --timeout 1s: rc 124, its whole process group is killed --------------
start_module hang --timeout 1s -- sh -c "sleep 100 & echo \$! >'$T/sleep.pid'; wait"
run hang tobus-send --to hang -m x --id h1 --wait --timeout 60s
assert_rc 1 "tobus-send --wait through a handler that hangs (--timeout 1s)"
assert_match "^tobus-send: error: message h1 failed at hop '?hang'? \(rc 124\)" "$(cat "$RUN_ERR")" \
    "stderr line for the timed-out handler"
[[ -s $T/sleep.pid ]] || fail "the hanging handler never ran"
sleep_pid=$(cat "$T/sleep.pid")
wait_for -t 10 not alive "$sleep_pid" ||
    fail "the handler's child 'sleep 100' (pid $sleep_pid) still runs: the process group was not killed"
wait_for -t 30 field_eq "$NS:dead" id h1 dead.rc 124 ||
    fail "dead letter h1: dead.rc '$(xfield "$NS:dead" id h1 dead.rc)', expected 124"

# --- the handler's environment ------------------------------------------------------------------
start_module envm -- sh -c 'cat >/dev/null; printf "%s|" "$TOBUS_ID" "$TOBUS_MODULE" "$TOBUS_FROM" "$TOBUS_ROUTE" "$TOBUS_ATTEMPT" "$TOBUS_HEADER_X" "$TOBUS_HEADER_CONTENT_TYPE" "$TOBUS_NAMESPACE" "${TOBUS_REDIS:+set}"'
start_module envm2 -- sh -c 'cat; printf "#%s|%s|%s|%s" "$TOBUS_MODULE" "$TOBUS_FROM" "$TOBUS_ROUTE" "$TOBUS_HEADER_X"'
run env tobus-send --to envm,envm2 -m hi --id e1 -H x=1 -H content-type=text/plain --wait
assert_rc 0 "tobus-send -H x=1 -H content-type=text/plain --to envm,envm2 --wait"
assert_bytes "$RUN_OUT" "e1|envm|send|envm2|1|1|text/plain|$NS|set|#envm2|envm||1\\n" \
    "handler environment (ID|MODULE|FROM|ROUTE|ATTEMPT|HEADER_X|HEADER_CONTENT_TYPE|NAMESPACE|REDIS#second hop)"

# Headers that are one variable (a.b, a-b, A_B): tobus-send refuses them; written by another
# client, the first in the message is set and the module says which it left out.
run clash tobus-send --to envm -m x -H a.b=1 -H A_B=2
assert_rc 2 "tobus-send -H a.b=1 -H A_B=2"
assert_match "headers 'a.b' and 'A_B' are both TOBUS_HEADER_A_B" "$(cat "$RUN_ERR")" "stderr"
start_module hdr -- sh -c 'cat >/dev/null; printf "%s" "$TOBUS_HEADER_A_B"'
rcli XADD "$NS:bus" '*' v 1 id clash1 route hdr from send reply "$NS:reply:clash" \
    h:a.b first h:a-b second h:A_B third payload x >/dev/null
wait_for -t 30 field_set "$NS:reply:clash" id clash1 status || fail "no result for clash1"
assert_eq first "$(xfield "$NS:reply:clash" id clash1 payload)" "TOBUS_HEADER_A_B of a.b, a-b and A_B"
for key in a-b A_B; do
    assert_match "clash1: header '$key' is TOBUS_HEADER_A_B too" "$(cat "$T/module.hdr.1.log")" "the module's log"
done

# Failures did not stop the module: it still serves.
run after tobus-send --to failing -m again --wait
assert_rc 0 "tobus-send --to failing after a failure"
assert_bytes "$RUN_OUT" 'again!\n' "result after a failure"

pass
