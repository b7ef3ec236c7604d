#!/usr/bin/env bash
# The service framework through the real programs: tobus-module with --pool (a service added while
# it runs, args as argv, unknown services failing with their reason), --workdir (input, output,
# --result, the keep policy, the listing in the job's state record), the watch callbacks in order,
# the limits (--timeout with --kill-after on a handler ignoring SIGTERM, --max-output, --max-memory,
# a fork tree contained by the group kill), kill -9 of a module while its jobs run (nothing lost, each
# result once), and --init then --once with no bus at all.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus

# --- the pool ------------------------------------------------------------------------------------
pool=$T/pool
mkdir -p "$pool"
start_module tools --pool "$pool"

run unknown tobus-send --to tools -H service=up -m hi --id p1 --wait --timeout 60s
assert_rc 1 "a service that is not in the pool"
assert_eq "tobus-send: error: message p1 failed at hop 'tools' (rc 127): unknown service 'up': no '$pool/up'" \
    "$(cat "$RUN_ERR")" "the sender is told why"
wait_for -t 30 field_eq "$NS:dead" id p1 dead.rc 127 || fail "no dead letter p1 with rc 127"

# Dropped into the pool while the module runs: used by the very next message.
printf '#!/bin/sh\ntr a-z A-Z\n' >"$pool/up.tmp" && chmod +x "$pool/up.tmp" && mv "$pool/up.tmp" "$pool/up"
run up tobus-send --to tools -H service=up -m hi --wait --timeout 60s
assert_rc 0 "a service added while the module runs"
assert_bytes "$RUN_OUT" 'HI\n' "its result"

# args: a JSON array, passed as argv without a shell ($(...) stays one harmless argument).
printf '#!/bin/sh\nfor a in "$@"; do printf "<%%s>" "$a"; done\n' >"$pool/argv" && chmod +x "$pool/argv"
run argv tobus-send --to tools -H service=argv -H 'args=["-d:", "a b", "$(touch '"$T"'/pwned)"]' -m x --wait --timeout 60s
assert_rc 0 "a service with args"
assert_bytes "$RUN_OUT" '<-d:><a b><$(touch '"$T"'/pwned)>\n' "args as argv"
[[ ! -e $T/pwned ]] || fail "an argument went through a shell"

run badargs tobus-send --to tools -H service=argv -H 'args=-x' -m x --id p2 --wait --timeout 60s
assert_rc 1 "args that are not a JSON array"
assert_match "failed at hop 'tools' \(rc 65\): bad 'args' header of service 'argv'" "$(cat "$RUN_ERR")" "the reason"
run dotdot tobus-send --to tools -H service=../up -m x --id p3 --wait --timeout 60s
assert_match "failed at hop 'tools' \(rc 65\): bad service name '../up'" "$(cat "$RUN_ERR")" "a name outside the pool"

# A pool or work dir that is not a directory: one line, exit 2, before anything runs.
run nopool tobus-module tools2 --pool "$T/no-such-dir"
assert_rc 2 "--pool naming no directory"
assert_eq "tobus-module: error: --pool '$T/no-such-dir' is not a directory" "$(head -n 1 "$RUN_ERR")" "it says so"
run filewd tobus-module wdf --workdir "$pool/up" -- cat
assert_rc 2 "--workdir naming a file"
assert_eq "tobus-module: error: --workdir '$pool/up' is not a directory" "$(head -n 1 "$RUN_ERR")" "it says so"

# --- work dirs, the result file, the keep policy, the job record ----------------------------------
work=$T/work
start_module wd --workdir "$work" --result out.txt --keep-workdir always --watch-interval 100ms -- \
    sh -c 'tr a-z A-Z <input >out.txt; echo "to stdout"; echo extra >f2; sleep 0.5'
run wd tobus-send --to wd -m hello --id w1 --wait --timeout 60s
assert_rc 0 "a job in a work dir"
assert_bytes "$RUN_OUT" 'HELLO\n' "the result is --result's file"
dir=$work/w1.1
[[ -d $dir ]] || fail "no work dir '$dir' kept (--keep-workdir always): $(ls -la "$work" 2>&1)"
assert_bytes "$dir/input" 'hello' "input holds the payload"
assert_bytes "$dir/output" 'to stdout\n' "output holds stdout"
wait_for -t 30 eval '[[ $(tobus-state get job:w1 status) == done ]]' || fail "job:w1 is not done"
files=$(tobus-state get job:w1 files)
assert_eq 'f2 input out.txt output' "$(jq -r '[.files[].name] | join(" ")' <<<"$files")" "the job's listing in its record"
assert_eq "$dir" "$(tobus-state get job:w1 workdir)" "the job's work dir in its record"

# No result file: the message fails, and --keep-workdir failed keeps that dir only.
start_module wd2 --workdir "$T/work2" --result out.txt -- sh -c 'p=$(cat); [ "$p" = good ] && echo ok >out.txt; true'
printf 'good\nbad\n' | run wd2 tobus-send --to wd2 --id w2 --wait --timeout 60s
assert_rc 1 "one job without its result file"
assert_bytes "$RUN_OUT" 'ok\n\n' "the good one's result (the file's newline, then the line's)"
assert_match "message w2\.2 failed at hop 'wd2' \(rc 1\): no result file 'out.txt'" "$(cat "$RUN_ERR")" "the bad one's reason"
assert_eq 'w2.2.1' "$(ls "$T/work2")" "only the failed job's dir is kept (--keep-workdir failed)"

# --- the watch callbacks, in order, with the listings ----------------------------------------------
log=$T/callbacks.log
start_module cb --workdir "$T/work3" --keep-workdir never --watch-interval 100ms \
    --before "echo \"before \$TOBUS_ID \$(ls | tr '\n' ' ')\" >>'$log'" \
    --on-change "echo \"change \$(printf '%s' \"\$TOBUS_LISTING\" | jq -r '[.files[].name] | join(\",\")')\" >>'$log'" \
    --after "echo \"after \$TOBUS_RC\" >>'$log'" \
    -- sh -c 'cat >/dev/null; sleep 0.4; echo 1 >a; sleep 0.4; echo 2 >b; sleep 0.4; printf done'
run cb tobus-send --to cb -m x --id c1 --wait --timeout 60s
assert_rc 0 "a job with callbacks"
assert_bytes "$RUN_OUT" 'done\n' "its result"
# The first listing may or may not catch 'output' still empty and before 'a'; what is certain is the order.
got=$(cat "$log")
assert_eq "before c1 input " "$(sed -n 1p "$log")" "--before first, in the work dir with the input"
assert_eq "after 0" "$(tail -n 1 "$log")" "--after last, with the rc"
grep -q '^change a,input,output$' "$log" || fail "no change listing with 'a': $got"
grep -q '^change a,b,input,output$' "$log" || fail "no change listing with 'a' and 'b': $got"
(($(grep -n -m1 '^change a,input,output$' "$log" | cut -d: -f1) < $(grep -n -m1 '^change a,b,input,output$' "$log" | cut -d: -f1))) ||
    fail "the listings are out of order: $got"
[[ ! -e $T/work3/c1.1 ]] || fail "--keep-workdir never kept the dir"

# --- limits ---------------------------------------------------------------------------------------
# A handler that ignores SIGTERM, with a child: killed at --timeout + --kill-after, rc 124.
start_module stubborn --timeout 500ms --kill-after 500ms -- \
    sh -c "trap '' TERM; sleep 60 & echo \$! >'$T/child.pid'; while :; do sleep 0.1; done"
run stubborn tobus-send --to stubborn -m x --id l1 --wait --timeout 60s
assert_rc 1 "a handler that ignores SIGTERM"
assert_match "failed at hop 'stubborn' \(rc 124\): timed out after 500ms" "$(cat "$RUN_ERR")" "its reason"
wait_for -t 10 not alive "$(cat "$T/child.pid")" || fail "the stubborn handler's child still runs"

start_module flood --max-output 64K -- sh -c 'cat /dev/zero'
run flood tobus-send --to flood -m x --id l2 --wait --timeout 60s
assert_rc 1 "a handler that floods stdout"
assert_match "failed at hop 'flood' \(rc 1\): output exceeded 65536 bytes" "$(cat "$RUN_ERR")" "its reason"

if command -v python3 >/dev/null; then
    start_module hog --max-memory 64M -- python3 -c 'import sys; b = bytearray(512 * 1024 * 1024); print(len(b))'
    run hog tobus-send --to hog -m x --id l3 --wait --timeout 60s
    assert_rc 1 "a handler past --max-memory"
    assert_match "failed at hop 'hog' \(rc 1\).*MemoryError" "$(cat "$RUN_ERR")" "it fails on its allocation"
fi

# A fork tree left behind by a handler that exits: the group kill takes all of it.
start_module bomb -- sh -c "for i in 1 2 3 4 5 6 7 8; do (while :; do sleep 0.2; done) & echo \$! >>'$T/bomb.pids'; done; printf spawned"
run bomb tobus-send --to bomb -m x --wait --timeout 60s
assert_rc 0 "a handler that leaves children behind"
assert_bytes "$RUN_OUT" 'spawned\n' "its result"
assert_eq 8 "$(grep -c . "$T/bomb.pids")" "children started"
left() {
    local pid n=0
    while read -r pid; do alive "$pid" && n=$((n + 1)); done <"$T/bomb.pids"
    echo "$n"
}
wait_for -t 10 eval '[[ $(left) == 0 ]]' || fail "$(left) of the handler's children still run"

# The module served everything and is still up.
alive "$E2E_LAST_PID" || fail "tobus-module bomb died"

# --- kill -9 mid-flight: a pool service in work dirs, its module killed while jobs run ------------
# Nothing is lost: the messages the dead instance held are taken over by the next one, and run
# again in work dirs of their own (attempt 2); every one of the 30 results reaches the sender once.
printf '#!/bin/sh\nsleep 0.2; tr a-z A-Z\n' >"$pool/slow" && chmod +x "$pool/slow"
start_module slowpool --pool "$pool" --workdir "$T/work4" --keep-workdir always -j 3 --claim-after 1s
victim=$E2E_LAST_PID
seq 30 | sed 's/^/m/' >"$T/k.in"
# (A background job's stdin is /dev/null unless the job itself redirects it.)
start_bg ksend bash -c 'exec "$@" <"$0"' "$T/k.in" tobus-send --to slowpool -H service=slow --id k --wait --timeout 120s
sender=$E2E_LAST_PID
wait_for -t 30 eval '(($(ls "$T/work4" 2>/dev/null | wc -l) >= 6))' || fail "the jobs did not start"
kill -KILL "$victim"
start_module slowpool --pool "$pool" --workdir "$T/work4" --keep-workdir always -j 3 --claim-after 1s
wait_proc "$sender"
assert_eq 0 "$RC" "tobus-send --wait across the kill -9"
assert_bytes "$T/ksend.stdout" "$(seq 30 | sed 's/^/M/' | sed 's/$/\\n/' | tr -d '\n')" "all 30 results, in order, once each"
ls "$T/work4" | grep -q '\.2$' || fail "no job ran again after the kill (no attempt-2 work dir): $(ls "$T/work4" | paste -sd' ')"

# --- --init, then --once: a handler developed without a bus ----------------------------------------
cd "$T" || fail "cd $T"
run init tobus-module --init shout
assert_rc 0 "--init shout"
assert_bytes "$RUN_OUT" './shout\n' "--init prints the template's path"
[[ -x $T/shout ]] || fail "the template is not executable"
run again tobus-module --init shout
assert_rc 1 "--init over an existing file"
assert_eq "tobus-module: error: './shout' exists, not overwriting it" "$(head -n 1 "$RUN_ERR")" "it says so"
printf 'hello' | run once tobus-module shout --once -t next -- ./shout
assert_rc 0 "--once with the template, payload on stdin"
assert_bytes "$RUN_OUT" 'hello' "the template passes its payload through"
assert_eq "would send to the bus: route next, rc 0" "$(tail -n 1 "$RUN_ERR")" "the verdict"
run oncedry tobus-module shout --once --dry-run -m 'a b' -H lang=en -- ./shout
assert_rc 0 "--once --dry-run"
assert_contains 'header lang: en' "$(cat "$RUN_OUT")" "the description names the header"
assert_contains 'payload: 3 bytes: a b' "$(cat "$RUN_OUT")" "and the payload"

pass
