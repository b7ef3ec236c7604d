#!/usr/bin/env bash
# Every output mode, with the exact bytes (times, entry ids and durations normalised): the readable
# line and its escaping, --payload none|preview|full, JSON Lines (text and binary payloads, the
# failure fields), every --format token and escape, and colour only on a terminal without NO_COLOR.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v jq >/dev/null || skip "jq not installed"

start_bus
start_module upper -- tr a-z A-Z
start_module picky -- sh -c 'echo "no thanks" >&2; echo second >&2; exit 3'
for m in upper picky; do
    wait_for -t 30 instances_at_least "$m" 1 || fail "$m did not attach"
done

run f1 tobus-send -t upper --wait --id f1 -H lang=en -m hello
assert_rc 0 "f1"
printf 'tab\there\nnl\001\377"q"\\' >"$T/f2.bin"
run f2 tobus-send -t upper --whole --wait --id f2 <"$T/f2.bin"
assert_rc 0 "f2"
run f3 tobus-send -t upper --wait --id f3 -m "$(printf 'x%.0s' {1..100})"
assert_rc 0 "f3"
run f4 tobus-send -t picky --wait --id f4 -m 'will fail'
assert_rc 1 "f4"
sleep 0.3

# history ID NAME ARGS...: the events of message ID, through ARGS.
history() {
    local id=$1 name=$2
    shift 2
    run "$name" tobus-watch --since 5m --timeout 1s --id "$id" "$@"
    assert_rc 0 "tobus-watch --id $id $*"
    assert_empty_file "$RUN_ERR" "stderr of tobus-watch --id $id $*"
}
# expect NAME: stdin is what $T/NAME.out should hold once normalised by the filter in $NORM.
expect() {
    cat >"$T/$1.expected"
    eval "$NORM" <"$T/$1.out" >"$T/$1.norm"
    assert_same_file "$T/$1.expected" "$T/$1.norm" "output of '$1'"
}

# --- the readable line ------------------------------------------------------------------------
NORM="untime | sed -E 's/ [0-9]+ms( |$)/ Nms\\1/'"
history f1 line
expect line <<'END'
TIME sent      - f1 route=upper "hello"
TIME routed    upper f1 "hello"
TIME handled   upper f1 rc=0 Nms "HELLO"
TIME delivered - f1 rc=0 "HELLO"
END
history f2 escaped
expect escaped <<'END'
TIME sent      - f2 route=upper "tab\there\nnl\x01\xff\"q\"\\"
TIME routed    upper f2 "tab\there\nnl\x01\xff\"q\"\\"
TIME handled   upper f2 rc=0 Nms "TAB\tHERE\nNL\x01\xff\"Q\"\\"
TIME delivered - f2 rc=0 "TAB\tHERE\nNL\x01\xff\"Q\"\\"
END
X100=$(printf 'X%.0s' {1..100})
history f3 preview --event handled
expect preview <<END
TIME handled   upper f3 rc=0 Nms "${X100:0:64}"... (100 bytes)
END
history f3 full --event handled --payload full
expect full <<END
TIME handled   upper f3 rc=0 Nms "$X100"
END
history f3 none --event sent,handled --payload none
expect none <<END
TIME sent      - f3 route=upper
TIME handled   upper f3 rc=0 Nms
END
history f4 failure
expect failure <<'END'
TIME sent      - f4 route=picky "will fail"
TIME routed    picky f4 "will fail"
TIME failed    picky f4 rc=3 Nms attempts=1 error="handler exited with 3" "will fail"
TIME dead      picky f4 rc=3 reason="handler exited with 3" "will fail"
END

# The time is the entry's, in local time (TZ).
run clock env TZ=UTC tobus-watch --since 5m --timeout 1s --id f1 --event sent --format '%T %t'
assert_rc 0 "--format '%T %t'"
read -r clock ms <"$RUN_OUT"
assert_eq "$(TZ=UTC date -d "@$((ms / 1000))" +%H:%M:%S).$(printf '%03d' $((ms % 1000)))" "$clock" "%T of $ms in UTC"
run clock-line env TZ=UTC tobus-watch --since 5m --timeout 1s --id f1 --event sent
assert_eq "$clock sent      - f1 route=upper \"hello\"" "$(cat "$RUN_OUT")" "the line's time"

# --- JSON Lines --------------------------------------------------------------------------------
NORM="sed -E 's/\"(time|created|at|duration_ms)\":[0-9]+/\"\\1\":N/g; s/\"entry\":\"[0-9]+-[0-9]+\"/\"entry\":\"E\"/; s/\"reply\":\"[^\"]*\"/\"reply\":\"R\"/'"
history f1 json --json
expect json <<END
{"event":"sent","time":N,"module":"","stream":"$NS:bus","entry":"E","id":"f1","route":["upper"],"from":"send","created":N,"reply":"R","rc":0,"headers":{"lang":"en"},"payload":"hello"}
{"event":"routed","time":N,"module":"upper","stream":"$NS:in:upper","entry":"E","id":"f1","route":["upper"],"from":"send","created":N,"reply":"R","rc":0,"headers":{"lang":"en"},"payload":"hello"}
{"event":"handled","time":N,"module":"upper","stream":"$NS:bus","entry":"E","duration_ms":N,"id":"f1","route":[],"from":"upper","created":N,"reply":"R","rc":0,"trail":[{"hop":"upper","rc":0,"at":N,"duration_ms":N}],"headers":{"lang":"en"},"payload":"HELLO"}
{"event":"delivered","time":N,"module":"","stream":"$NS:bus","entry":"E","id":"f1","route":[],"from":"upper","created":N,"reply":"R","rc":0,"trail":[{"hop":"upper","rc":0,"at":N,"duration_ms":N}],"headers":{"lang":"en"},"payload":"HELLO"}
END
# Binary payloads in base64, exactly.
history f2 json-binary --json --event sent
b64=$(base64 -w0 <"$T/f2.bin")
expect json-binary <<END
{"event":"sent","time":N,"module":"","stream":"$NS:bus","entry":"E","id":"f2","route":["upper"],"from":"send","created":N,"reply":"R","rc":0,"payload_base64":"$b64"}
END
jq -r .payload_base64 "$T/json-binary.out" | base64 -d >"$T/f2.back"
assert_same_file "$T/f2.bin" "$T/f2.back" "the payload of a JSON record, decoded"
history f2 json-preview --json --event sent --payload preview
expect json-preview <<END
{"event":"sent","time":N,"module":"","stream":"$NS:bus","entry":"E","id":"f2","route":["upper"],"from":"send","created":N,"reply":"R","rc":0,"payload_size":17,"preview":"tab\\\\there\\\\nnl\\\\x01\\\\xff\\\\\\"q\\\\\\"\\\\\\\\"}
END
history f2 json-none --json --event sent --payload none
expect json-none <<END
{"event":"sent","time":N,"module":"","stream":"$NS:bus","entry":"E","id":"f2","route":["upper"],"from":"send","created":N,"reply":"R","rc":0,"payload_size":17}
END
history f4 json-failure --json --failed
expect json-failure <<END
{"event":"failed","time":N,"module":"picky","stream":"$NS:bus","entry":"E","duration_ms":N,"attempts":1,"error":"handler exited with 3","stderr":"no thanks\\nsecond\\n","id":"f4","route":[],"from":"picky","created":N,"reply":"R","rc":3,"trail":[{"hop":"picky","rc":3,"at":N,"duration_ms":N}],"payload":"will fail"}
{"event":"dead","time":N,"module":"picky","stream":"$NS:dead","entry":"E","duration_ms":N,"attempts":1,"error":"handler exited with 3","stderr":"no thanks\\nsecond\\n","id":"f4","route":[],"from":"picky","created":N,"reply":"R","rc":3,"trail":[{"hop":"picky","rc":3,"at":N,"duration_ms":N}],"payload":"will fail"}
END

# --- --format: every token ---------------------------------------------------------------------
NORM=cat
history f1 tokens --event handled --format '%e|%m|%i|%r|%a|%h|%R|%f|%E|%X|%S|%%|%P\t%p\n'
expect tokens <<END
handled|upper|f1|0||lang=en||upper|||$NS:bus|%|"HELLO"	HELLO
END
history f1 numbers --event handled --format '%t %s %d'
read -r t s d <"$RUN_OUT"
[[ $s == "$t-"* ]] || fail "%s '$s' is not an entry id of time %t '$t'"
assert_eq "$s" "$(rcli XRANGE "$NS:bus" "$s" "$s" | head -1)" "%s names the entry on $NS:bus"
[[ $d =~ ^[0-9]+$ ]] || fail "%d '$d' is not a number of milliseconds"
history f4 failure-tokens --event failed --format '%m %r %d %a %E|%X|%R'
sed -E 's/^picky 3 [0-9]+ 1 /picky 3 N 1 /' "$RUN_OUT" >"$T/failure-tokens.norm"
assert_bytes "$T/failure-tokens.norm" 'picky 3 N 1 handler exited with 3|no thanks\nsecond\n|' "failure tokens"
history f2 raw --format '%p\0'
{ cat "$T/f2.bin"; printf '\0'; cat "$T/f2.bin"; printf '\0'; tr a-z A-Z <"$T/f2.bin"; printf '\0'
  tr a-z A-Z <"$T/f2.bin"; printf '\0'; } >"$T/raw.expected"
assert_same_file "$T/raw.expected" "$T/raw.out" "%p is the raw payload, with \\0 between records"
history f1 escapes --event sent --format 'a\tb\\c\rd\n'
assert_bytes "$T/escapes.out" 'a\tb\\c\rd\n' "--format escapes"

# --- colour: on a terminal only, and not with NO_COLOR -----------------------------------------
if command -v script >/dev/null; then
    script -qec "tobus-watch --since 5m -c 2 --id f1" /dev/null >"$T/tty.out" 2>&1 </dev/null
    grep -q $'\e\\[34msent\e\\[0m      - f1' "$T/tty.out" || fail "no colour on a terminal: $(show_file "$T/tty.out")"
    grep -q $'\e\\[36mrouted\e\\[0m    upper f1' "$T/tty.out" || fail "no colour for routed: $(show_file "$T/tty.out")"
    NO_COLOR=1 script -qec "tobus-watch --since 5m -c 2 --id f1" /dev/null >"$T/tty-nocolor.out" 2>&1 </dev/null
    grep -q $'\e' "$T/tty-nocolor.out" && fail "colour despite NO_COLOR: $(show_file "$T/tty-nocolor.out")"
    grep -q 'sent      - f1 route=upper "hello"' "$T/tty-nocolor.out" || fail "NO_COLOR output: $(show_file "$T/tty-nocolor.out")"
    script -qec "tobus-watch --since 5m -c 2 --id f1 --json" /dev/null >"$T/tty-json.out" 2>&1 </dev/null
    grep -q $'\e' "$T/tty-json.out" && fail "colour in JSON on a terminal"
fi
run pipe tobus-watch --since 5m -c 2 --id f1
grep -q $'\e' "$RUN_OUT" && fail "colour on a pipe"

pass
