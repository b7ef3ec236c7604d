#!/usr/bin/env bash
# Record and replay: what `tobus-watch --json --module x` records is valid input for
# `tobus-send --json`, and sending it again gives module x the same messages once more: same ids,
# same headers, byte-exact payloads (text, NUL bytes and invalid UTF-8, empty, 100 KiB of random
# bytes). Traffic to other modules is not recorded.
#   (a) recording only what went into x (--event routed);
#   (b) the recipe as the issue writes it, `--module x` alone, x the last hop: the records of x's
#       results are not messages to send, and tobus-send --json passes over them;
#   (c) the same with a hop after x: x's results still carry a route (the rest of it), but they
#       are results too: replaying must not send them on, or the next hop gets everything twice.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v jq >/dev/null || skip "jq not installed"
tobus-send --_options | grep -q '^--json' || fail "tobus-send has no --json input yet"

# Module x keeps every payload it gets, and the header lang, in $GOT/ID.N (and ID.N.lang).
export GOT=$T/got
mkdir -p "$GOT"
start_bus
start_module x -- sh -c 'n=$(ls "$GOT" | grep -c "^$TOBUS_ID\.[0-9]*$"); f="$GOT/$TOBUS_ID.$((n + 1))"
    printf %s "${TOBUS_HEADER_LANG-}" >"$f.lang"; cat >"$f.tmp"; mv "$f.tmp" "$f"; echo handled-by-x'
start_module upper -- tr a-z A-Z
for m in x upper; do
    wait_for -t 30 instances_at_least "$m" 1 || fail "$m did not attach"
done

printf 'plain text' >"$T/r1.bin"
printf 'nul\0and\377\376bad utf-8\n' >"$T/r2.bin"
: >"$T/r3.bin"
printf 'two\nlines\n' >"$T/r4.bin"
head -c 102400 /dev/urandom >"$T/r5.bin"

# record NAME LINES ARGS...: a live recording with tobus-watch --json --module x ARGS while a message
# to upper and then five along $ROUTE (ids NAME-r1 ... NAME-r5) go by, until it holds LINES records.
ROUTE=x
record() {
    local name=$1 lines=$2 pid i
    shift 2
    watch_bg "rec-$name" --json --module x "$@"
    pid=$E2E_LAST_PID
    # First, so that the recorder has read past it once the records of x are all there.
    run "other-$name" tobus-send -t upper --wait --id "$name-other" -m "not for x"
    assert_rc 0 "a message to upper"
    for i in 1 2 3 4 5; do
        local lang=()
        ((i % 2)) && lang=(-H lang=en)
        run "send-$name-$i" tobus-send -t "$ROUTE" --whole --wait --id "$name-r$i" "${lang[@]}" <"$T/r$i.bin"
        assert_rc 0 "sending $name-r$i"
    done
    wait_for -t 30 lines_ge "$T/rec-$name.stdout" "$lines" ||
        fail "the recording holds $(count_lines "$T/rec-$name.stdout") of $lines records"
    sleep 0.5 # nothing more comes
    stop_proc "$pid"
    cp "$T/rec-$name.stdout" "$T/$name.jsonl"
    assert_eq "$lines" "$(count_lines "$T/$name.jsonl")" "records of tobus-watch --json --module x $*"
}

# replayed NAME: module x got every message of NAME twice, the same bytes and header each time.
replayed() {
    local name=$1 i
    for i in 1 2 3 4 5; do
        local id=$name-r$i
        wait_for -t 30 test -f "$GOT/$id.2" || fail "$id was not delivered to x again"
        assert_same_file "$T/r$i.bin" "$GOT/$id.1" "$id: the first delivery"
        assert_same_file "$T/r$i.bin" "$GOT/$id.2" "$id: the replayed delivery"
        local lang=
        ((i % 2)) && lang=en
        assert_eq "$lang" "$(cat "$GOT/$id.2.lang")" "$id: the header lang, replayed"
    done
    sleep 1
    for i in 1 2 3 4 5; do
        [[ ! -e $GOT/$name-r$i.3 ]] || fail "$name-r$i was delivered to x a third time"
    done
    [[ ! -e $GOT/$name-other.1 ]] || fail "the message to upper went to x"
}

# --- (a) what went into x ----------------------------------------------------------------------
record a 5 --event routed
assert_eq 'a-r1 a-r2 a-r3 a-r4 a-r5' "$(jq -r .id "$T/a.jsonl" | paste -sd' ')" "recorded ids"
assert_eq 'payload payload_base64 payload payload payload_base64' \
    "$(jq -r 'if has("payload_base64") then "payload_base64" else "payload" end' "$T/a.jsonl" | paste -sd' ')" \
    "text payloads as text, binary ones in base64"
run replay-a tobus-send --json <"$T/a.jsonl"
assert_rc 0 "tobus-send --json < the recording"
assert_empty_file "$RUN_ERR" "stderr of the replay"
replayed a

# --- (b) `tobus-watch --json --module x`, as the issue writes it ---------------------------------
record b 10
assert_eq 'routed handled routed handled routed handled routed handled routed handled' \
    "$(jq -r .event "$T/b.jsonl" | paste -sd' ')" "what --module x records"
run replay-b tobus-send --json <"$T/b.jsonl"
assert_rc 0 "tobus-send --json < a recording of --module x (records of results passed over)"
replayed b

# --- (c) the same, with a hop after x ----------------------------------------------------------
ROUTE=x,upper
record c 10
assert_eq '["upper"] ["x","upper"]' "$(jq -c .route "$T/c.jsonl" | sort -u | paste -sd' ')" \
    "routes in the records: x's input, and x's results on their way to upper"
run replay-c tobus-send --json <"$T/c.jsonl"
assert_rc 0 "tobus-send --json < a recording of --module x on route x,upper"
replayed c
# upper got each message twice in all (the original and the replay), not three times.
routed_to_upper() { tobus-watch --since 5m --timeout 300ms --module upper --event routed --id "$1" --format x; }
upper_twice() { [[ $(routed_to_upper "$1") == xx* ]]; }
wait_for -t 30 upper_twice c-r5 || fail "c-r5 was not replayed to upper"
sleep 1
for i in 1 2 3 4 5; do
    run "upper-c$i" tobus-watch --since 5m --timeout 500ms --module upper --event routed --id "c-r$i" --format 'x'
    assert_eq xx "$(cat "$RUN_OUT")" "c-r$i: routed to upper (once, and once replayed)"
done

pass
