#!/usr/bin/env bash
# tobus-send --json: JSON envelopes in, one per line; ids, routes, headers and binary payloads
# survive; results come back as JSON lines; a bad line is exit 4 after what preceded it went out.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
start_module upper -- tr a-z A-Z
start_module env -- sh -c 'printf "%s/%s" "$TOBUS_ID" "$TOBUS_HEADER_LANG"'

# The record's own route wins; --to fills in for a record without one; base64 for bytes.
printf '%s\n' '{"id":"j1","route":["env"],"headers":{"lang":"fr"},"payload":"x"}' \
    '{"id":"j2","payload_base64":"AP9h"}' '' '{"id":"j3","route":"upper","payload":"abc"}' |
    run json tobus-send --json --to upper --wait
assert_rc 0 "tobus-send --json --wait"
assert_bytes "$RUN_OUT" '{"id":"j1","status":"done","payload":"j1/fr"}\n{"id":"j2","status":"done","payload_base64":"AP9B"}\n{"id":"j3","status":"done","payload":"ABC"}\n' \
    "JSON results in input order, binary as base64"

# -H adds headers to every record.
printf '%s\n' '{"id":"j4","route":["env"],"payload":""}' | run hdr tobus-send --json -H lang=de --wait
assert_bytes "$RUN_OUT" '{"id":"j4","status":"done","payload":"j4/de"}\n' "-H merged into a JSON record"

# A bad line: exit 4, one line naming the line number, the good ones before it still delivered.
printf '%s\n' '{"id":"g1","route":["upper"],"payload":"ok"}' 'not json' '{"id":"g2","route":["upper"],"payload":"late"}' |
    run bad tobus-send --json --wait
assert_rc 4 "a malformed JSON line"
assert_bytes "$RUN_OUT" '{"id":"g1","status":"done","payload":"OK"}\n' "the record before the bad line"
assert_match '^tobus-send: error: stdin line 2: not JSON' "$(cat "$RUN_ERR")" "the error line"
[[ $(wc -l <"$RUN_ERR") == 1 ]] || fail "expected one stderr line, got: $(cat "$RUN_ERR")"

for line in '{"payload":"no route"}' '{"route":["a b"],"payload":""}' '{"route":["upper"]}' \
    '{"route":["upper"],"payload_base64":"%%%"}' '[1,2]' '{"route":["upper"],"headers":{"x":1},"payload":""}'; do
    printf '%s\n' "$line" | run bad2 tobus-send --json
    assert_rc 4 "bad record $line"
    [[ $(wc -l <"$RUN_ERR") == 1 ]] || fail "bad record $line: expected one stderr line, got: $(cat "$RUN_ERR")"
done

# Hostile nesting (100,000 '['): one line, exit 4, no crash.
{ printf '{"route":["upper"],"payload":"x","headers":'; head -c 100000 /dev/zero | tr '\0' '['; echo; } |
    run deep tobus-send --json
assert_rc 4 "a record nested 100,000 deep"
assert_bytes "$RUN_ERR" 'tobus-send: error: stdin line 1: JSON nested deeper than 32 levels\n' "the error for deep nesting"

# Usage: --json reads stdin, so -m is refused; and --json excludes -0 / -s.
run use tobus-send --json -m x --to upper
assert_rc 2 "--json with -m"
run use2 tobus-send --json -0 --to upper
assert_rc 2 "--json with -0"

# A failure is a JSON record on stdout too (and a line on stderr), exit 1.
start_module boom -- sh -c 'echo kaput >&2; exit 3'
printf '%s\n' '{"id":"f1","route":["boom"],"payload":"x"}' | run fail tobus-send --json --wait
assert_rc 1 "a failed message under --json"
assert_bytes "$RUN_OUT" '{"id":"f1","status":"failed","hop":"boom","rc":3,"error":"handler exited with 3","stderr":"kaput\\n"}\n' \
    "the failure record"
assert_contains "kaput" "$(cat "$RUN_ERR")" "stderr names the handler's last line"
pass
