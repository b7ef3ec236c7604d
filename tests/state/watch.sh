#!/usr/bin/env bash
# tobus-state watch: one line per change as it happens (plain and --json), filtered by a glob,
# junk events skipped with a warning, SIGINT ends it with 130, `watch | head -n 1` ends quietly.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
[[ -x $TOBUS_BIN_DIR/tobus-state ]] || setup_fail "tobus-state not built"

readers() { rcli CLIENT LIST | grep -c 'cmd=xread'; }
readers_at_least() { (($(readers) >= $1)); }
lines_at_least() { [[ -f $1 ]] && (($(wc -l <"$1") >= $2)); }

tobus-state set before x=1 # before the watchers start: not shown

start_bg all tobus-state watch
all=$E2E_LAST_PID
start_bg jobs tobus-state watch 'job:*' --json
jobs=$E2E_LAST_PID
wait_for -t 10 readers_at_least 2 || fail "the watchers never blocked in XREAD"

tobus-state set job:1 status=running 'note=two words'
tobus-state set other a=b
tobus-state incr job:1 attempt 2 >/dev/null
tobus-state cas job:1 status running done
tobus-state cas job:1 status running lost || true # lost: no event, no line
tobus-state del job:1 note
tobus-state del other
rcli HSET "$NS:state:job:1" byhand 1 >/dev/null # no event: not shown
tobus-state -n "other$NS" set job:1 status=elsewhere # another namespace: not shown
tobus-state set job:2 'v=tab	and
newline'
rcli XADD "$NS:state-changes" '*' junk 1 >/dev/null # skipped with a warning
tobus-state set job:3 last=1

wait_for -t 10 lines_at_least "$T/all.stdout" 8 || fail "watch printed: $(cat "$T/all.stdout")"
wait_for -t 10 lines_at_least "$T/jobs.stdout" 6 || fail "watch --json printed: $(cat "$T/jobs.stdout")"
sleep 0.3
assert_bytes "$T/all.stdout" 'job:1 set status=running note=two words\nother set a=b\njob:1 incr attempt=2\njob:1 cas status=done\njob:1 del note\nother del\njob:2 set v=tab\\tand\\nnewline\njob:3 set last=1\n' \
    "watch output"
sed -E 's/"entry":"[0-9]+-[0-9]+","at":[0-9]+,//' "$T/jobs.stdout" >"$T/jobs.norm"
assert_bytes "$T/jobs.norm" '{"name":"job:1","op":"set","fields":{"status":"running","note":"two words"}}\n{"name":"job:1","op":"incr","fields":{"attempt":"2"}}\n{"name":"job:1","op":"cas","fields":{"status":"done"}}\n{"name":"job:1","op":"del","deleted":["note"]}\n{"name":"job:2","op":"set","fields":{"v":"tab\\tand\\nnewline"}}\n{"name":"job:3","op":"set","fields":{"last":"1"}}\n' \
    "watch 'job:*' --json output (entry and at removed)"
first=$(head -n1 "$T/jobs.stdout")
[[ $first =~ ^\{\"entry\":\"([0-9]+)-[0-9]+\",\"at\":([0-9]+), ]] || fail "watch --json: no entry and at in: $first"
assert_eq "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "at is the entry id's time"
assert_contains "ignoring change event" "$(cat "$T/all.log")" "a junk event is reported"
assert_eq 1 "$(grep -c . "$T/all.log")" "watch's stderr: only the junk warning"

kill -INT "$all"
wait_proc "$all"
assert_rc 130 "watch stopped by SIGINT"
kill -TERM "$jobs"
wait_proc "$jobs"
assert_rc 143 "watch stopped by SIGTERM"

# | head -n 1: ends at the next write after head is gone, by SIGPIPE, without a word.
(
    tobus-state watch 2>"$T/head.err" | head -n 1 >"$T/head.out"
    echo "${PIPESTATUS[*]}" >"$T/head.rc"
) &
sub=$!
wait_for -t 10 readers_at_least 1 || fail "the piped watcher never blocked"
tobus-state set h a=1
tobus-state set h a=2
wait_for -t 10 not alive "$sub" || fail "watch | head -n 1 did not end"
wait "$sub"
assert_bytes "$T/head.out" 'h set a=1\n' "watch | head -n 1"
assert_eq "141 0" "$(cat "$T/head.rc")" "exit statuses of watch | head -n 1 (141: SIGPIPE)"
assert_empty_file "$T/head.err" "watch's stderr when its reader went away"

pass
