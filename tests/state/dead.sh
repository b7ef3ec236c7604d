#!/usr/bin/env bash
# Dead letters with the real programs: a handler that fails until a file exists dead-letters the
# messages; dead list and dead show describe them; the file is created (the handler is fixed),
# dead retry --all sends them again and they reach the sink module byte-exact, headers included.
# Then: retry by message id with --to, junk that cannot be retried without --to, a message with no
# route left, and purge (all, and --older-than).
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
[[ -x $TOBUS_BIN_DIR/tobus-state ]] || setup_fail "tobus-state not built"

start_bus
# picky fails (exit 3, two lines on stderr) until $T/fixed exists, then passes its input on.
start_module picky -- sh -c "if [ -e '$T/fixed' ]; then cat; else echo 'not fixed yet' >&2; echo 'second line' >&2; exit 3; fi"
# sink keeps each payload it gets, and the lang header, in files named after the message id.
start_module sink -- sh -c "cat > '$T/sink.'\"\$TOBUS_ID\"; printf %s \"\$TOBUS_HEADER_LANG\" > '$T/sink.'\"\$TOBUS_ID\".lang"
wait_for -t 30 instances_at_least picky 1 || fail "picky never registered"
wait_for -t 30 instances_at_least sink 1 || fail "sink never registered"

tobus-send -t picky,sink -H lang=en --id m -m one -m two -m three
printf 'bin\0ary\377\n\r' | tobus-send -t picky,sink --whole --id bin
wait_for -t 30 xlen_ge "$NS:dead" 4 || fail "expected 4 dead letters, $NS:dead has $(xlen "$NS:dead")"

# --- dead list ----------------------------------------------------------------------------------

run list tobus-state dead list
assert_rc 0 "dead list"
assert_empty_file "$RUN_ERR" "dead list: stderr"
assert_eq 4 "$(wc -l <"$RUN_OUT")" "dead list: one line per dead letter"
while read -r entry time id hop rc reason; do
    assert_match '^[0-9]+-[0-9]+$' "$entry" "dead list: entry id"
    assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$' "$time" "dead list: time"
    assert_eq 'picky 3 handler exited with 3' "$hop $rc $reason" "dead list: hop, rc and reason of $id"
done <"$RUN_OUT"
assert_eq 'bin m.1 m.2 m.3' "$(awk '{ print $3 }' "$RUN_OUT" | sort | paste -sd' ')" "dead list: the message ids"
entry2=$(awk '$3 == "m.2" { print $1 }' "$RUN_OUT")
assert_eq "$entry2" "$(rcli XRANGE "$NS:dead" "$entry2" "$entry2" | head -n1)" "the entry id is the one in $NS:dead"

run list-json tobus-state dead list --json
assert_rc 0 "dead list --json"
assert_eq 4 "$(wc -l <"$RUN_OUT")" "dead list --json: one object per line"
assert_match "^\\{\"entry\":\"$entry2\",\"at\":[0-9]+,\"id\":\"m.2\",\"hop\":\"picky\",\"rc\":3,\"attempts\":1,\"reason\":\"handler exited with 3\",\"stream\":\"$NS:bus\",\"source_entry\":\"[0-9]+-[0-9]+\"\\}$" \
    "$(grep '"id":"m.2"' "$RUN_OUT")" "dead list --json: m.2"

# --- dead show ----------------------------------------------------------------------------------

run show tobus-state dead show m.2
assert_rc 0 "dead show by message id"
out=$(cat "$RUN_OUT")
for line in "entry: $entry2" "reason: handler exited with 3" "stream: $NS:bus" "hop: picky" "rc: 3" \
    "attempts: 1" "message:" "  id: m.2" "  h:lang: en" "  payload: two" "stderr:" "  not fixed yet" "  second line"; do
    grep -qxF -- "$line" <<<"$out" || fail "dead show m.2 lacks the line '$line': $out"
done
assert_eq "stderr:" "$(tail -n3 "$RUN_OUT" | head -n1)" "dead show ends with the stderr tail"
run show-entry tobus-state dead show "$entry2"
assert_rc 0 "dead show by entry id"
assert_eq "$out" "$(cat "$RUN_OUT")" "dead show: the same by entry id and by message id"
run show-bin tobus-state dead show bin
assert_contains '  payload: bin\x00ary\xff\n\r' "$(cat "$RUN_OUT")" "dead show: a binary payload, escaped"

run show-json tobus-state dead show m.1 --json
assert_rc 0 "dead show --json"
assert_eq 1 "$(wc -l <"$RUN_OUT")" "dead show --json: one line"
j=$(cat "$RUN_OUT")
assert_contains '"stderr":"not fixed yet\nsecond line\n"' "$j" "dead show --json: stderr"
assert_contains '"message":{"id":"m.1","route":["sink"],"from":"picky","created":' "$j" "dead show --json: the envelope"
assert_contains '"headers":{"lang":"en"},"payload":"one"}' "$j" "dead show --json: headers and payload"
run show-bin-json tobus-state dead show bin --json
assert_contains '"payload_base64":"YmluAGFyef8KDQ=="' "$(cat "$RUN_OUT")" "dead show --json: a binary payload in base64"
if command -v jq >/dev/null; then
    jq -e . "$RUN_OUT" >/dev/null || fail "dead show --json is not JSON"
fi

run show-none tobus-state dead show nope
assert_rc 1 "dead show of an unknown id"
assert_empty_file "$RUN_OUT" "dead show of an unknown id: stdout"
assert_eq 1 "$(wc -l <"$RUN_ERR")" "dead show of an unknown id: one line"
run show-none2 tobus-state dead show 1-1
assert_rc 1 "dead show of an unknown entry id"

# --- the handler is fixed: dead retry --all -----------------------------------------------------

: >"$T/fixed"
run retry tobus-state dead retry --all
assert_rc 0 "dead retry --all"
assert_eq 'bin m.1 m.2 m.3' "$(sort "$RUN_OUT" | paste -sd' ')" "dead retry --all prints the ids it sent"
assert_eq 0 "$(xlen "$NS:dead")" "$NS:dead after the retry"
have_sink() { [[ -e $T/sink.$1.lang ]]; }
for id in m.1 m.2 m.3 bin; do
    wait_for -t 30 have_sink "$id" || fail "message $id did not reach the sink after the retry"
done
assert_bytes "$T/sink.m.1" 'one' "m.1 at the sink"
assert_bytes "$T/sink.m.3" 'three' "m.3 at the sink"
assert_bytes "$T/sink.bin" 'bin\000ary\377\n\r' "the binary payload at the sink, byte-exact"
assert_bytes "$T/sink.m.2.lang" 'en' "m.2's header at the sink"
assert_eq 'picky,sink' "$(rcli EVAL 'for _, e in ipairs(redis.call("XRANGE", KEYS[1], "-", "+")) do
    local f = {}
    for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
    if f.id == "m.2" and f.from == "retry" then return f.route end
  end' 1 "$NS:bus")" "the re-sent entry's route: the failed hop and what was left"
sleep 1
assert_eq 0 "$(xlen "$NS:dead")" "nothing dead-lettered again"

# --- one by message id, with --to ---------------------------------------------------------------

rm "$T/fixed"
tobus-send -t picky,sink --id four -m four
wait_for -t 30 xlen_ge "$NS:dead" 1 || fail "four was not dead-lettered"
run retry-to tobus-state dead retry four --to sink
assert_rc 0 "dead retry ID --to"
assert_bytes "$RUN_OUT" 'four\n' "dead retry ID prints the id"
wait_for -t 30 have_sink four || fail "four did not reach the sink"
assert_bytes "$T/sink.four" 'four' "four at the sink, past picky"
run retry-gone tobus-state dead retry four
assert_rc 1 "dead retry of a dead letter that is gone"
run retry-usage tobus-state dead retry
assert_rc 2 "dead retry without ID or --all"
run retry-usage2 tobus-state dead retry four --all
assert_rc 2 "dead retry with ID and --all"
run retry-usage3 tobus-state dead retry --all --to 'a,,b'
assert_rc 2 "dead retry --to with a bad route"

# --- junk and messages with no route left -------------------------------------------------------

junk=$(rcli XADD "$NS:dead" '*' junk 1 dead.reason "made by hand")
junkp=$(rcli XADD "$NS:dead" '*' id j1 payload 'junk payload' h:lang fr dead.reason "missing field 'v'")
noroute=$(rcli XADD "$NS:dead" '*' v 1 id e1 route '' payload x dead.reason "done already")
run retry-junk tobus-state dead retry "$junk"
assert_rc 4 "dead retry of junk without --to"
assert_contains "could not be decoded" "$(cat "$RUN_ERR")" "dead retry of junk: the reason"
run retry-junk-to tobus-state dead retry "$junk" --to sink
assert_rc 4 "dead retry --to of junk without a payload"
run retry-noroute tobus-state dead retry e1
assert_rc 1 "dead retry of a message with no route left"
assert_contains "no route left" "$(cat "$RUN_ERR")" "dead retry with no route: the reason"
assert_eq 3 "$(xlen "$NS:dead")" "what could not be retried stays"
run retry-all-junk tobus-state dead retry --all
assert_rc 4 "dead retry --all with junk left"
assert_empty_file "$RUN_OUT" "dead retry --all that retried nothing"
assert_eq 3 "$(grep -c 'not retrying' "$RUN_ERR")" "one line per dead letter not retried"
run retry-junk-payload tobus-state dead retry j1 --to sink
assert_rc 0 "dead retry --to of junk with a payload"
assert_bytes "$RUN_OUT" 'j1\n' "the junk's id is kept"
wait_for -t 30 have_sink j1 || fail "the junk's payload did not reach the sink"
assert_bytes "$T/sink.j1" 'junk payload' "the junk's payload at the sink"
assert_bytes "$T/sink.j1.lang" 'fr' "the junk's header at the sink"
run retry-all-to tobus-state dead retry --all --to sink
assert_rc 4 "dead retry --all --to with junk without a payload"
assert_bytes "$RUN_OUT" 'e1\n' "dead retry --all --to sends what it can"
assert_eq "$junk" "$(rcli XRANGE "$NS:dead" - + | head -n1)" "only the junk without a payload is left"

# --- purge --------------------------------------------------------------------------------------

run purge tobus-state dead purge
assert_rc 0 "dead purge"
assert_bytes "$RUN_OUT" '1\n' "dead purge: how many"
assert_eq 0 "$(xlen "$NS:dead")" "dead letters after purge"
rcli DEL "$NS:dead" >/dev/null # (XTRIM keeps the stream's last id; an old id needs a new stream)
rcli XADD "$NS:dead" 1000-0 old 1 dead.reason "from 1970" >/dev/null
rcli XADD "$NS:dead" '*' new 1 dead.reason recent >/dev/null
run list2 tobus-state dead list
assert_eq '1000-0 1970-01-01T00:00:01.000Z - - - from 1970' "$(head -n1 "$RUN_OUT")" "dead list of a hand-written entry"
run purge-old tobus-state dead purge --older-than 1h
assert_rc 0 "dead purge --older-than 1h"
assert_bytes "$RUN_OUT" '1\n' "dead purge --older-than 1h: how many"
assert_eq 1 "$(xlen "$NS:dead")" "dead letters after purging the old one"
run purge-old2 tobus-state dead purge --older-than 1h
assert_bytes "$RUN_OUT" '0\n' "dead purge --older-than 1h again"
run purge2 tobus-state dead purge
assert_bytes "$RUN_OUT" '1\n' "dead purge of the recent one"
run purge-empty tobus-state dead purge
assert_bytes "$RUN_OUT" '0\n' "dead purge of nothing"
run list-empty tobus-state dead list
assert_rc 0 "dead list of nothing"
assert_empty_file "$RUN_OUT" "dead list of nothing"

pass
