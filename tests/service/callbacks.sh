#!/usr/bin/env bash
# Watch callbacks: --before, then --on-change whenever the work dir's listing changes (checked
# every --watch-interval), then --after, in that order, each with the job's environment, the
# listing in TOBUS_LISTING and the final rc in TOBUS_RC (--after).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

events=$T/events
cb() { echo "echo \"$1 \$TOBUS_EVENT rc=\${TOBUS_RC:--} id=\${TOBUS_ID:+set} h=\$TOBUS_HEADER_X cwd=\$(pwd) \$TOBUS_LISTING\" >>$events"; }

# A handler that makes a file every 0.5s for 3s, watched every 200ms.
run watch "$D" once --workdir "$T/w" --keep-workdir always --watch-interval 200ms -H x=42 -m payload \
    --before "$(cb B)" --on-change "$(cb C)" --after "$(cb A)" -- \
    sh -c 'for i in 1 2 3 4 5 6; do sleep 0.5; printf "%${i}s" >f$i; done; exit 3'
assert_rc 3 "watched job"
dir=$(echo "$T"/w/*)

# listing K: the expected listing once f1..fK exist (output stays empty: nothing on stdout).
listing() {
    local k=$1 i files='' n=$(($1 + 2))
    for ((i = 1; i <= k; i++)); do files+="{\"name\":\"f$i\",\"size\":$i},"; done
    files+='{"name":"input","size":7},{"name":"output","size":0}'
    echo "{\"count\":$n,\"truncated\":false,\"files\":[$files]}"
}

mapfile -t lines <"$events"
((${#lines[@]} >= 3)) || fail "too few events: $(cat "$events")"
common="id=set h=42 cwd=$dir"
assert_eq "B before rc=- $common {\"count\":1,\"truncated\":false,\"files\":[{\"name\":\"input\",\"size\":7}]}" \
    "${lines[0]}" "--before: first, with the listing before the handler"
assert_eq "A after rc=3 $common $(listing 6)" "${lines[-1]}" "--after: last, with the final listing and rc"

# Every change in between: f1..fK in increasing K, ending with all six. Files come every 500ms and
# the watcher looks every 200ms, so each is seen on its own; a slow machine may merge two.
last=0
for ((j = 1; j < ${#lines[@]} - 1; j++)); do
    line=${lines[j]}
    found=
    for ((k = last + 1; k <= 6; k++)); do
        if [[ $line == "C change rc=- $common $(listing $k)" ]]; then
            found=$k
            break
        fi
    done
    [[ -n $found ]] || fail "change event $j is not a next listing: $line"
    last=$found
done
assert_eq 6 "$last" "the last change shows all six files"
changes=$((${#lines[@]} - 2))
((changes >= 4)) || fail "only $changes change events for 6 files made 500ms apart with a 200ms watcher"
note "$changes change events"

# --before failing: the handler does not run, the job fails with its code, --after still runs.
: >"$events"
run before "$D" once --workdir "$T/w2" -m x --before 'echo not today >&2; exit 75' --after "$(cb A)" -- \
    sh -c 'touch ran'
assert_rc 75 "--before failing"
assert_eq "would retry: --before exited with 75" "$(verdict)" "--before failing: verdict"
assert_contains "--before: not today" "$(cat "$RUN_ERR")" "--before's stderr is logged"
[[ ! -e $(echo "$T"/w2/*)/ran ]] || fail "the handler ran after --before failed"
assert_match '^A after rc=75 ' "$(cat "$events")" "--after after a failed --before"

# Callbacks are bounded: a hanging --on-change is stopped, the job goes on; its failure is logged.
start=$(date +%s%N)
run bounded "$D" once --workdir "$T/w3" --watch-interval 100ms --callback-timeout 500ms --kill-after 200ms -m x \
    --on-change "trap '' TERM; sleep 30" --after 'exit 7' -- sh -c 'sleep 0.3; touch f; sleep 0.3'
assert_rc 0 "hanging --on-change"
took=$(elapsed_ms "$start")
((took < 5000)) || fail "a hanging --on-change held the job ${took}ms"
assert_contains "--on-change timed out after 500ms, ignoring" "$(cat "$RUN_ERR")" "hanging --on-change: logged"
assert_contains "--after exited with 7, ignoring" "$(cat "$RUN_ERR")" "failing --after: logged"

pass
