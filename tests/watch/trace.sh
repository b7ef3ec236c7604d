#!/usr/bin/env bash
# --trace ID: the journey of one message as a tree (and as JSON): a 2-hop message after the fact,
# a failure with the tail of the handler's stderr, a message still in flight (124 at --timeout,
# what was seen printed), an unknown id (1, or 124 with --timeout), a journey traced live from
# before it was sent and from the middle of it, and an id tobus-send made up.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v jq >/dev/null || skip "jq not installed"

start_bus
start_module upper -- tr a-z A-Z
start_module rev -- rev
start_module picky -- sh -c 'echo "no thanks" >&2; echo second >&2; exit 3'
start_module slow -- sh -c 'sleep 2; cat'
for m in upper rev picky slow; do
    wait_for -t 30 instances_at_least "$m" 1 || fail "$m did not attach"
done

# trace NAME EXPECTED-RC ARGS...: tobus-watch --trace ARGS, its output normalised to NAME.norm.
trace() {
    local name=$1 rc=$2
    shift 2
    run "$name" tobus-watch --trace "$@"
    assert_rc "$rc" "tobus-watch --trace $*"
    untrace <"$RUN_OUT" >"$T/$name.norm"
}
expect() {
    cat >"$T/$1.expected"
    assert_same_file "$T/$1.expected" "$T/$1.norm" "the trace '$1'"
}

# --- after the fact ----------------------------------------------------------------------------
run t1 tobus-send -t upper,rev --wait --id t1 -m hello
assert_rc 0 "t1"
run t2 tobus-send -t upper,picky --wait --id t2 -m oops
assert_rc 1 "t2"
sleep 0.3

trace two-hops 0 t1
assert_empty_file "$RUN_ERR" "stderr of --trace t1"
grep -q '^  sent +0ms ' "$T/two-hops.out" || fail "the first event is not at +0ms: $(cat "$T/two-hops.out")"
expect two-hops <<'END'
t1: delivered after Nms
  sent +Nms route=upper,rev "hello"
  hop upper
    routed +Nms "hello"
    handled +Nms rc=0 Nms "HELLO"
  hop rev
    routed +Nms "HELLO"
    handled +Nms rc=0 Nms "OLLEH"
  delivered +Nms rc=0 "OLLEH"
END

trace failure 0 t2
expect failure <<'END'
t2: dead after Nms
  sent +Nms route=upper,picky "oops"
  hop upper
    routed +Nms "oops"
    handled +Nms rc=0 Nms "OOPS"
  hop picky
    routed +Nms "OOPS"
    failed +Nms rc=3 Nms attempts=1 error="handler exited with 3" "OOPS"
      | no thanks
      | second
  dead +Nms rc=3 reason="handler exited with 3" "OOPS"
END

trace none 0 t1 --payload none
expect none <<'END'
t1: delivered after Nms
  sent +Nms route=upper,rev
  hop upper
    routed +Nms
    handled +Nms rc=0 Nms
  hop rev
    routed +Nms
    handled +Nms rc=0 Nms
  delivered +Nms rc=0
END

run json tobus-watch --trace t1 --json
assert_rc 0 "--trace t1 --json"
assert_eq 1 "$(count_lines "$RUN_OUT")" "lines of --trace --json"
assert_eq '"delivered" "t1" ["sent","upper","rev","delivered"] ["routed","handled"] "OLLEH"' \
    "$(jq -c '[.end, .id, [.nodes[] | .hop // .event], [.nodes[1].events[].event], .nodes[3].payload] | map(tojson) | join(" ")' -r "$RUN_OUT")" \
    "--trace t1 --json"
jq -e '.duration_ms >= 0 and .time > 0' "$RUN_OUT" >/dev/null || fail "time and duration_ms in --trace --json"
run json-failure tobus-watch --trace t2 --json
assert_eq '"dead" "no thanks\nsecond\n" 3' \
    "$(jq -r '[.end, (.nodes[2].events[1].stderr), .nodes[3].rc] | map(tojson) | join(" ")' "$RUN_OUT")" \
    "--trace t2 --json: the end, the failure's stderr, the dead letter's rc"

# --- not there ---------------------------------------------------------------------------------
trace unknown 1 nope
assert_empty_file "$RUN_OUT" "stdout of --trace of an unknown id"
assert_eq "tobus-watch: error: no message 'nope' in the retained history (give --timeout to wait for it)" \
    "$(cat "$RUN_ERR")" "stderr of --trace of an unknown id"
trace unknown-wait 124 nope --timeout 1s
assert_empty_file "$RUN_OUT" "stdout of --trace of an unknown id with --timeout"
assert_eq "tobus-watch: error: the journey of message 'nope' did not end within 1s" "$(cat "$RUN_ERR")" \
    "stderr of --trace of an unknown id with --timeout"
trace too-old 1 t1 --since 100ms

# --- in flight ---------------------------------------------------------------------------------
run stuck tobus-send -t nobody --id stuck -m x
wait_for -t 30 xlen_ge "$NS:in:nobody" 1 || fail "'stuck' was not routed"
trace stuck 124 stuck --timeout 1s
expect stuck <<'END'
stuck: in flight
  sent +Nms route=nobody "x"
  hop nobody
    routed +Nms "x"
END
assert_eq "tobus-watch: error: the journey of message 'stuck' did not end within 1s" "$(cat "$RUN_ERR")" \
    "stderr of a trace that timed out"

# --- live: from before the message was sent ----------------------------------------------------
watch_bg live --trace live1 --timeout 60s
live_pid=$E2E_LAST_PID
wait_for -t 20 grep -q 'waiting for the rest of its journey' "$T/live.log" || fail "the live trace did not wait"
run live-send tobus-send -t upper,rev --wait --id live1 -m abc
assert_rc 0 "live1"
wait_proc "$live_pid"
assert_eq 0 "$RC" "the live trace"
untrace <"$T/live.stdout" >"$T/live.norm"
expect live <<'END'
live1: delivered after Nms
  sent +Nms route=upper,rev "abc"
  hop upper
    routed +Nms "abc"
    handled +Nms rc=0 Nms "ABC"
  hop rev
    routed +Nms "ABC"
    handled +Nms rc=0 Nms "CBA"
  delivered +Nms rc=0 "CBA"
END

# --- live: from the middle of the journey (no --timeout: it waits for the end) -----------------
run slow-send tobus-send -t upper,slow --id slow1 -m zz
assert_rc 0 "slow1"
wait_for -t 30 xlen_ge "$NS:in:slow" 1 || fail "slow1 did not reach slow"
start=$SECONDS
trace slow 0 slow1
((SECONDS - start <= $(secs 20))) || fail "the trace of slow1 took $((SECONDS - start))s"
expect slow <<'END'
slow1: done after Nms
  sent +Nms route=upper,slow "zz"
  hop upper
    routed +Nms "zz"
    handled +Nms rc=0 Nms "ZZ"
  hop slow
    routed +Nms "ZZ"
    handled +Nms rc=0 Nms "ZZ"
  done +Nms rc=0 "ZZ"
END
slow_ms=$(sed -n 's/^    handled +[0-9]*ms rc=0 \([0-9]*\)ms "ZZ"$/\1/p' "$T/slow.out" | tail -1)
((slow_ms >= 1900)) || fail "slow's run time is ${slow_ms}ms, not about 2s"

# --- an id tobus-send made up --------------------------------------------------------------------
run gen tobus-send -t upper --print-id -m generated
assert_rc 0 "a message with a generated id"
gen_id=$(cat "$RUN_OUT")
run gen-trace tobus-watch --trace "$gen_id" --timeout 30s --payload none
assert_rc 0 "--trace of a generated id"
assert_eq "$gen_id: done after" "$(head -1 "$RUN_OUT" | sed -E 's/ [0-9]+ms$//')" "the trace of a generated id"

pass
