#!/usr/bin/env bash
# The live tap: every hop event of every message, in causal order, read without taking anything.
# Two watches run while 300 messages go through two modules: every result comes back (the modules
# got them all), both watches print every event, neither joins a consumer group, an idle watch
# uses no CPU, an inbox that appears later is found, and SIGTERM and SIGINT end a watch with 128+N.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
start_module upper -- tr a-z A-Z
start_module rev -- rev
wait_for -t 30 instances_at_least upper 1 || fail "upper did not attach"
wait_for -t 30 instances_at_least rev 1 || fail "rev did not attach"

watch_bg lines
lines_pid=$E2E_LAST_PID
watch_bg json --json
json_pid=$E2E_LAST_PID

seq 1 300 | sed 's/^/msg /' >"$T/in.txt"
tr a-z A-Z <"$T/in.txt" | rev >"$T/expected.txt"
run send tobus-send -t upper,rev --wait --timeout 60s <"$T/in.txt"
assert_rc 0 "tobus-send --wait while two watches run"
assert_same_file "$T/expected.txt" "$RUN_OUT" "every result came back while the watches ran"

# 300 x (sent, routed, handled, routed, handled, delivered).
wait_for -t 30 lines_ge "$T/lines.stdout" 1800 || fail "the line watch printed $(count_lines "$T/lines.stdout") of 1800 records"
wait_for -t 30 lines_ge "$T/json.stdout" 1800 || fail "the JSON watch printed $(count_lines "$T/json.stdout") of 1800 records"
sleep 1
assert_eq 1800 "$(count_lines "$T/lines.stdout")" "records of the line watch"
assert_eq 1800 "$(count_lines "$T/json.stdout")" "records of the JSON watch"

printf '%s\n' '300 delivered -' '300 handled rev' '300 handled upper' '300 routed rev' '300 routed upper' \
    '300 sent -' >"$T/expected-counts.txt"
untime <"$T/lines.stdout" | awk '{ print $2, $3 }' | sort | uniq -c | awk '{ print $1, $2, $3 }' >"$T/counts.txt"
assert_same_file "$T/expected-counts.txt" "$T/counts.txt" "events per kind and module (lines)"
jq -r '"\(.event) \(if .module == "" then "-" else .module end)"' "$T/json.stdout" | sort | uniq -c |
    awk '{ print $1, $2, $3 }' >"$T/json-counts.txt" || fail "the JSON watch printed invalid JSON"
assert_same_file "$T/expected-counts.txt" "$T/json-counts.txt" "events per kind and module (JSON)"

# One message's journey, in causal order, in both outputs.
id=$(jq -r 'select(.event == "sent" and .payload == "msg 1") | .id' "$T/json.stdout")
[[ -n $id ]] || fail "no sent event for 'msg 1'"
grep -F " $id " "$T/lines.stdout" | untime | sed -E 's/ [0-9]+ms / Nms /' >"$T/journey.txt"
cat >"$T/expected-journey.txt" <<END
TIME sent      - $id route=upper,rev "msg 1"
TIME routed    upper $id "msg 1"
TIME handled   upper $id rc=0 Nms "MSG 1"
TIME routed    rev $id "MSG 1"
TIME handled   rev $id rc=0 Nms "1 GSM"
TIME delivered - $id rc=0 "1 GSM"
END
assert_same_file "$T/expected-journey.txt" "$T/journey.txt" "the journey of 'msg 1' in the line watch"
jq -r --arg id "$id" 'select(.id == $id) | "\(.event) \(.module) \(.route | join(",")) \(.payload)"' \
    "$T/json.stdout" >"$T/journey-json.txt"
cat >"$T/expected-journey-json.txt" <<END
sent  upper,rev msg 1
routed upper upper,rev msg 1
handled upper rev MSG 1
routed rev rev MSG 1
handled rev  1 GSM
delivered   1 GSM
END
assert_same_file "$T/expected-journey-json.txt" "$T/journey-json.txt" "the journey of 'msg 1' in the JSON watch"

# Nothing was taken: the only consumer groups are the bus's and the modules', with their own
# consumers only.
groups_of() { rcli XINFO GROUPS "$1" | awk 'prev == "name" { print } { prev = $0 }' | paste -sd,; }
assert_eq bus "$(groups_of "$NS:bus")" "consumer groups of $NS:bus"
assert_eq module "$(groups_of "$NS:in:upper")" "consumer groups of $NS:in:upper"
assert_eq 1 "$(rcli XINFO CONSUMERS "$NS:in:upper" module | grep -cx name)" "consumers of upper's inbox"
assert_eq "0 0" "$(backlog "$NS:in:upper" module)" "upper's backlog"

# Idle: a watch waiting for traffic uses (next to) no CPU: at most one clock tick in 3 seconds.
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
c0=$(cpu "$lines_pid")
sleep 3
c1=$(cpu "$lines_pid")
((c1 - c0 <= 1)) || fail "an idle watch used $((c1 - c0)) clock ticks in 3s"

# An inbox that did not exist when the watch started is found from the route.
run late tobus-send -t late --id late-1 -m hi
assert_rc 0 "tobus-send to a module that is not running"
wait_for -t 20 grep -q "routed    late late-1 \"hi\"" "$T/lines.stdout" || fail "the new inbox 'late' was not watched"

assert_eq "" "$(unexpected_log lines)" "the line watch's log"
assert_eq "" "$(unexpected_log json)" "the JSON watch's log"
stop_proc "$lines_pid"
assert_eq 143 "$RC" "exit status of a watch stopped by SIGTERM"
stop_proc "$json_pid"
# SIGINT, as Ctrl-C sends it (a background job of a script ignores SIGINT, so in the foreground).
run sigint timeout --preserve-status -s INT 1 tobus-watch
assert_rc 130 "exit status of a watch stopped by SIGINT"
assert_empty_file "$RUN_ERR" "stderr of a watch stopped by SIGINT"

pass
