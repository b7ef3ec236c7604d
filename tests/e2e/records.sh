#!/usr/bin/env bash
# The state the framework writes: a job record per handler run (job:ID: status, module, attempt,
# rc, host, pid, times; the handler may add fields through $TOBUS_JOB) and a module record
# (module:NAME: status, done, failed, last failure). A record spoilt by hand never stops the work.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
start_module up -- sh -c 'tobus-state set "$TOBUS_JOB" progress=40 >/dev/null; tr a-z A-Z'
start_module bad -- sh -c 'exit 3'
run ok tobus-send --to up -m hi --id j1 --wait
assert_rc 0 "a job"
assert_eq done "$(tobus-state get job:j1 status)" "job status"
assert_eq up "$(tobus-state get job:j1 module)" "job module"
assert_eq 0 "$(tobus-state get job:j1 rc)" "job rc"
assert_eq 40 "$(tobus-state get job:j1 progress)" "a field the handler set through \$TOBUS_JOB"
[[ $(rcli PTTL "$NS:state:job:j1") -gt 0 ]] || fail "the job record does not expire"

# Every id tobus-send accepts names a job record tobus-state can read and list (issue 11, #11).
long_id=$(printf 'L%.0s' {1..200})
for id in 'order#42' "$long_id"; do
  run odd tobus-send --to up -m hi --id "$id" --wait
  assert_rc 0 "a job with id '$id'"
  assert_eq 40 "$(tobus-state get "job:$id" progress)" "\$TOBUS_JOB of id '$id'"
  assert_eq done "$(tobus-state get "job:$id" status)" "the status of job '$id'"
done
run jobs tobus-state jobs up
assert_rc 0 "tobus-state jobs"
assert_contains 'order#42 ' "$(cat "$RUN_OUT")" "tobus-state jobs lists order#42"
assert_contains "$long_id " "$(cat "$RUN_OUT")" "tobus-state jobs lists the id of 200 characters"
assert_eq '' "$(cat "$RUN_ERR")" "tobus-state jobs skips none of them"

run fail tobus-send --to bad -m x --id j2 --wait
assert_rc 1 "a failing job"
assert_eq failed "$(tobus-state get job:j2 status)" "failed job status"
assert_eq 3 "$(tobus-state get job:j2 rc)" "failed job rc"

# Counts reach the module record with the heartbeat (every 5s).
wait_for -t 30 bash -c '[[ $(tobus-state get module:up done 2>/dev/null) == 3 ]]' || fail "module:up done is not 3"
wait_for -t 30 bash -c '[[ $(tobus-state get module:bad failed 2>/dev/null) == 1 ]]' || fail "module:bad failed is not 1"
assert_contains "j2" "$(tobus-state get module:bad last_failure)" "the last failure names the message"
assert_eq running "$(tobus-state get module:up status)" "a running module's status"

# A job record spoilt by hand (a string where a hash belongs): the message still flows.
rcli SET "$NS:state:job:j3" junk >/dev/null
run spoilt tobus-send --to up -m yo --id j3 --wait
assert_rc 0 "a message whose job record was spoilt"
assert_bytes "$RUN_OUT" 'YO\n' "its result"
pass
