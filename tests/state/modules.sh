#!/usr/bin/env bash
# tobus-state modules: the registry with live instances (real tobus-module processes), inbox
# length and pending; an inbox nobody reads; stale and hand-written instances; --json; --names
# (fast, and bounded when Redis does not answer). tobus-state jobs: job records written with
# tobus-state set, most recent first, filtered by module, plain and --json.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
[[ -x $TOBUS_BIN_DIR/tobus-state ]] || setup_fail "tobus-state not built"

# Column N of the row of module M in the plain table.
col() { awk -v m="$1" -v n="$2" '$1 == m { print $n }' "$T/modules.out"; }
modules() { tobus-state modules >"$T/modules.out" 2>"$T/modules.err"; }
status_is() { modules && [[ $(col "$1" 2) == "$2" && $(col "$1" 3) == "$3" ]]; }

start_bus
start_module upper -- tr a-z A-Z
start_module two -- cat
two_pids=("$E2E_LAST_PID")
start_module two -- cat
two_pids+=("$E2E_LAST_PID")
wait_for -t 30 instances_at_least upper 1 || fail "upper never registered"
wait_for -t 30 instances_at_least two 2 || fail "two's instances never registered"

# A module that is slow keeps a message pending; one nobody runs keeps its inbox.
start_module slow -- sh -c 'sleep 30; cat'
wait_for -t 30 instances_at_least slow 1 || fail "slow never registered"
tobus-send -t slow -m a
tobus-send -t ghost -m b -m c
wait_for -t 10 xlen_ge "$NS:in:ghost" 2 || fail "the bus did not route to ghost's inbox"

wait_for -t 10 status_is slow up 1 || fail "slow is not up: $(cat "$T/modules.out")"
pending_is() { modules && [[ $(col slow 5) == 1 ]]; }
wait_for -t 10 pending_is || fail "slow's message is not pending: $(cat "$T/modules.out")"
modules || fail "modules: exit status $?: $(cat "$T/modules.err")"
assert_empty_file "$T/modules.err" "modules: stderr"
assert_eq 'MODULE  STATUS  INSTANCES  INBOX  PENDING  LAST_SEEN' "$(head -n1 "$T/modules.out")" "the header"
assert_eq 'ghost slow two upper' "$(tail -n +2 "$T/modules.out" | awk '{ print $1 }' | paste -sd' ')" "the modules, sorted"
assert_eq 'up 1' "$(col upper 2) $(col upper 3)" "upper: status and live instances"
assert_eq 'up 2' "$(col two 2) $(col two 3)" "two: status and live instances"
assert_eq 'down 0 2 0 never' "$(col ghost 2) $(col ghost 3) $(col ghost 4) $(col ghost 5) $(col ghost 6)" \
    "ghost, an inbox nobody reads"
assert_eq '1 1' "$(col slow 4) $(col slow 5)" "slow: inbox and pending"
assert_match '^[0-9]+s$' "$(col upper 6)" "upper's LAST_SEEN"
# The columns are aligned: every row has its STATUS where the header has it.
at=$(head -n1 "$T/modules.out" | grep -bo STATUS | cut -d: -f1)
while IFS= read -r line; do
    [[ ${line:at:2} == up || ${line:at:4} == down ]] || fail "row not aligned under STATUS: '$line'"
done < <(tail -n +2 "$T/modules.out")

# --json: one object per module per line.
run json tobus-state modules --json
assert_rc 0 "modules --json"
assert_eq 4 "$(wc -l <"$RUN_OUT")" "modules --json: one line per module"
two=$(grep '"name":"two"' "$RUN_OUT")
assert_match '^\{"name":"two","status":"up","registered":true,"first_seen":[0-9]+,"last_seen":[0-9]+,"live":2,"instances":\[\{"id":"[^"]+","live":true,"known":true,"host":"[^"]+","pid":[0-9]+,"started":[0-9]+,"heartbeat":[0-9]+,"jobs":1\},\{.*\}\],"inbox":0,"pending":0\}$' \
    "$two" "modules --json: two"
assert_eq '{"name":"ghost","status":"down","registered":false,"first_seen":null,"last_seen":null,"live":0,"instances":[],"inbox":2,"pending":0}' \
    "$(grep '"name":"ghost"' "$RUN_OUT")" "modules --json: ghost"
if command -v jq >/dev/null; then
    jq -e . "$RUN_OUT" >/dev/null || fail "modules --json is not JSON: $(cat "$RUN_OUT")"
    pids=$(jq -r 'select(.name == "two") | .instances[].pid' "$RUN_OUT" | sort | paste -sd' ')
    want=$(printf '%s\n' "${two_pids[@]}" | sort | paste -sd' ')
    assert_eq "$want" "$pids" "the pids of two's instances"
fi

# A stale instance (its heartbeat is old) and one whose value is junk: not live, never a crash.
rcli HSET "$NS:module:upper" old:1:x '{"host":"h","pid":1,"started":1,"heartbeat":1000,"jobs":1}' \
    junk:2:y 'not json' >/dev/null
modules || fail "modules with stale and junk instances: exit status $?"
assert_eq 'up 1' "$(col upper 2) $(col upper 3)" "upper with a stale and a junk instance"
run json2 tobus-state modules --json
up=$(grep '"name":"upper"' "$RUN_OUT")
assert_contains '{"id":"old:1:x","live":false,"known":true,"host":"h","pid":1,"started":1,"heartbeat":1000,"jobs":1}' "$up" "the stale instance"
assert_contains '{"id":"junk:2:y","live":false,"known":false}' "$up" "the junk instance"

# Stopping the modules: they remove their instance (graceful), status down.
for pid in "${two_pids[@]}"; do stop_proc "$pid"; done
wait_for -t 10 status_is two down 0 || fail "two is not down after its instances stopped: $(cat "$T/modules.out")"

# --names: the registered names only, one per line.
run names tobus-state modules --names
assert_rc 0 "modules --names"
assert_bytes "$RUN_OUT" 'slow\ntwo\nupper\n' "modules --names"
run names-json tobus-state modules --names --json
assert_rc 2 "--names with --json"
# Bounded: a Redis that does not answer (paused) gives up within about a second.
rcli CLIENT PAUSE 3000 ALL >/dev/null
t0=$(date +%s%3N)
run names-paused tobus-state modules --names
took=$(($(date +%s%3N) - t0))
assert_rc 124 "modules --names when Redis does not answer"
assert_empty_file "$RUN_OUT" "modules --names when Redis does not answer: stdout"
((took < 2500)) || fail "modules --names took ${took}ms when Redis did not answer"
rcli PING >/dev/null  # answered once the pause is over
run names-down env TOBUS_REDIS="unix://$T/nothing.sock" tobus-state modules --names
assert_rc 3 "modules --names when Redis is unreachable"

# --- jobs ---------------------------------------------------------------------------------------

# Job records written by hand, in a namespace of their own (the running modules write theirs here).
export TOBUS_NAMESPACE=jobs$NS

tobus-state set job:a status=done module=upper attempt=1 rc=0 started=1700000000000 finished=1700000001500 host=h1 pid=12
tobus-state set job:b status=running module=two attempt=2 started=1700000005000 host=h2 pid=13
tobus-state set job:c status=failed module=upper attempt=3 rc=2 started=1700000009000 finished=1700000009100 host=h1 pid=14
tobus-state set job:d status=queued module=upper
tobus-state set notajob status=done module=upper
run jobs tobus-state jobs
assert_rc 0 "jobs"
assert_bytes "$RUN_OUT" 'JOB  STATUS   MODULE  ATTEMPT  RC  STARTED               FINISHED              HOST  PID\nc    failed   upper   3        2   2023-11-14T22:13:29Z  2023-11-14T22:13:29Z  h1    14\nb    running  two     2        -   2023-11-14T22:13:25Z  -                     h2    13\na    done     upper   1        0   2023-11-14T22:13:20Z  2023-11-14T22:13:21Z  h1    12\nd    queued   upper   -        -   -                     -                     -     -\n' \
    "jobs: most recent first"
run jobs-upper tobus-state jobs upper
assert_eq 'c a d' "$(tail -n +2 "$RUN_OUT" | awk '{ print $1 }' | paste -sd' ')" "jobs upper"
run jobs-json tobus-state jobs two --json
assert_bytes "$RUN_OUT" '{"job":"b","status":"running","module":"two","attempt":2,"rc":null,"started":1700000005000,"finished":null,"host":"h2","pid":13}\n' \
    "jobs two --json"
run jobs-none tobus-state jobs nobody
assert_rc 0 "jobs of a module without jobs"
assert_bytes "$RUN_OUT" 'JOB  STATUS  MODULE  ATTEMPT  RC  STARTED  FINISHED  HOST  PID\n' "jobs nobody: the header only"
run jobs-none-json tobus-state jobs nobody --json
assert_empty_file "$RUN_OUT" "jobs nobody --json"

export TOBUS_NAMESPACE=$NS
run jobs-live tobus-state jobs slow
assert_rc 0 "jobs of a running module"

pass
