#!/usr/bin/env bash
# --trace of fan-outs: the copies an @TYPE hop made, each a line of its own under the fan-out,
# ending apart (one failing, its stderr shown); a live trace waits for the slowest copy, not the
# first; and copies joined again (tobus-module --join) go on as one line.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
start_module a --type t -- sh -c 'printf "a:%s" "$(cat)"'
start_module b --type t -- sh -c 'sleep 1; printf "b:%s" "$(cat)"'
start_module up -- tr a-z A-Z
start_module bad --type u -- sh -c 'echo nope >&2; exit 2'
start_module good --type u -- cat
start_module j --join -- cat
members_are() { [[ $(rcli SCARD "$NS:type:$1") == "$2" ]]; }
wait_for -t 30 members_are t 2 || fail "a and b did not join type t"
wait_for -t 30 members_are u 2 || fail "bad and good did not join type u"
for m in up j; do
    wait_for -t 30 instances_at_least "$m" 1 || fail "$m did not attach"
done

expect() {
    untrace <"$T/$1.out" >"$T/$1.norm"
    cat >"$T/$1.expected"
    assert_same_file "$T/$1.expected" "$T/$1.norm" "the trace '$1'"
}

# Copies going on along the rest of the route, each to its own end.
run p1 tobus-send --to @t,up -m y --wait --id p1
assert_rc 0 "p1"
run p1-trace tobus-watch --trace p1
assert_rc 0 "--trace p1"
mv "$T/p1-trace.out" "$T/p1.out"
expect p1 <<'END'
p1: delivered after Nms (2 delivered)
  sent +Nms route=@t,up "y"
  fan-out: 2 copies
    copy 0 of 2
      hop a
        routed +Nms "y"
        handled +Nms rc=0 Nms "a:y"
      hop up
        routed +Nms "a:y"
        handled +Nms rc=0 Nms "A:Y"
      delivered +Nms rc=0 "A:Y"
    copy 1 of 2
      hop b
        routed +Nms "y"
        handled +Nms rc=0 Nms "b:y"
      hop up
        routed +Nms "b:y"
        handled +Nms rc=0 Nms "B:Y"
      delivered +Nms rc=0 "B:Y"
END

# One copy fails: the journey is dead, the other copy delivered.
run p2 tobus-send --publish u -m z --wait --id p2
assert_rc 1 "p2"
run p2-trace tobus-watch --trace p2
assert_rc 0 "--trace p2"
mv "$T/p2-trace.out" "$T/p2.out"
expect p2 <<'END'
p2: dead after Nms (1 dead, 1 delivered)
  sent +Nms route=@u "z"
  fan-out: 2 copies
    copy 0 of 2
      hop bad
        routed +Nms "z"
        failed +Nms rc=2 Nms attempts=1 error="handler exited with 2" "z"
          | nope
      dead +Nms rc=2 reason="handler exited with 2" "z"
    copy 1 of 2
      hop good
        routed +Nms "z"
        handled +Nms rc=0 Nms "z"
      delivered +Nms rc=0 "z"
END
run p2-json tobus-watch --trace p2 --json
assert_eq '"dead" {"dead":1,"delivered":1} 2' \
    "$(jq -r '[.end, .ends, .nodes[1].copies] | map(tojson) | join(" ")' "$RUN_OUT")" "--trace p2 --json"

# Live: a's copy ends a second before b's; the trace waits for both.
watch_bg live --trace p3 --timeout 60s
live_pid=$E2E_LAST_PID
wait_for -t 20 grep -q 'waiting for the rest of its journey' "$T/live.log" || fail "the live trace did not wait"
run p3 tobus-send --to @t --id p3 -m w
wait_proc "$live_pid"
assert_eq 0 "$RC" "the live trace of a fan-out"
mv "$T/live.stdout" "$T/p3.out"
expect p3 <<'END'
p3: done after Nms (2 done)
  sent +Nms route=@t "w"
  fan-out: 2 copies
    copy 0 of 2
      hop a
        routed +Nms "w"
        handled +Nms rc=0 Nms "a:w"
      done +Nms rc=0 "a:w"
    copy 1 of 2
      hop b
        routed +Nms "w"
        handled +Nms rc=0 Nms "b:w"
      done +Nms rc=0 "b:w"
END

# Joined again: one line after the join.
run p4 tobus-send --to @t,j,up -m v --wait --timeout 60s --id p4
assert_rc 0 "p4 (a fan-out joined by j)"
run p4-trace tobus-watch --trace p4
assert_rc 0 "--trace p4"
mv "$T/p4-trace.out" "$T/p4.out"
expect p4 <<'END'
p4: delivered after Nms
  sent +Nms route=@t,j,up "v"
  fan-out: 2 copies
    copy 0 of 2
      hop a
        routed +Nms "v"
        handled +Nms rc=0 Nms "a:v"
      hop j
        routed +Nms "a:v"
    copy 1 of 2
      hop b
        routed +Nms "v"
        handled +Nms rc=0 Nms "b:v"
      hop j
        routed +Nms "b:v"
  hop j
    handled +Nms rc=0 Nms "a:v\nb:v"
  hop up
    routed +Nms "a:v\nb:v"
    handled +Nms rc=0 Nms "A:V\nB:V"
  delivered +Nms rc=0 "A:V\nB:V"
END

pass
