#!/usr/bin/env bash
# --max-payload: tobus-send refuses a payload over the limit before sending it (exit 4, one line on
# stderr, without reading it whole), and sends what came before it; a module fails a message
# whose result is over its limit (a command's output, a co-process's answer, a pass-through),
# with the reason in the dead letter and for the waiting sender.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

one_line() { assert_eq 1 "$(wc -l <"$1")" "lines on stderr: $(cat "$1")"; }

# The whole of stdin, over the limit: nothing sent.
run whole bash -c 'head -c 3000000 /dev/zero | tobus-send --to sink --whole --max-payload 1M'
assert_rc 4 "tobus-send --whole of 3MB with --max-payload 1M"
assert_match "payload 1 is larger than 1M \(--max-payload\)" "$(cat "$RUN_ERR")" "stderr"
one_line "$RUN_ERR"
assert_eq 0 "$(xlen "$NS:bus")" "entries on the bus"

# The third line is over the limit: the first two are sent, the rest is not.
run lines bash -c '{ echo a; echo b; head -c 5000 /dev/zero | tr "\0" x; echo; echo d; } |
    tobus-send --to sink --max-payload 4K --print-id'
assert_rc 4 "tobus-send of a 5000-byte line with --max-payload 4K"
assert_match "payload 3 is larger than 4K \(--max-payload\)" "$(cat "$RUN_ERR")" "stderr"
one_line "$RUN_ERR"
assert_eq 2 "$(xlen "$NS:bus")" "entries on the bus"

# A line with no end, bigger than the limit: refused long before the input ends.
run endless bash -c 'tr "\0" x </dev/zero | tobus-send --to sink --max-payload 64K'
assert_rc 4 "tobus-send of an endless line with --max-payload 64K"
assert_match "payload 1 is larger than 64K" "$(cat "$RUN_ERR")" "stderr"

run m tobus-send --to sink --max-payload 2 -m ab -m abc
assert_rc 4 "tobus-send -m abc with --max-payload 2"
assert_match "message 2 \(-m\) is larger than 2 \(--max-payload\)" "$(cat "$RUN_ERR")" "stderr"
one_line "$RUN_ERR"

run json bash -c 'echo "{\"route\":[\"sink\"],\"payload\":\"abcdef\"}" | tobus-send --json --max-payload 4'
assert_rc 4 "tobus-send --json of a 6-byte payload with --max-payload 4"
assert_match "stdin line 1: its payload is larger than 4 \(--max-payload\)" "$(cat "$RUN_ERR")" "stderr"

run bad tobus-send --to sink --max-payload 1Q -m x
assert_rc 2 "tobus-send --max-payload 1Q"

# Modules: results over their limit fail the message.
start_bus
start_module big --max-payload 1K -- sh -c 'head -c 5000 /dev/zero | tr "\0" x'
start_module pass --max-payload 1K
start_module co --lines --max-payload 1K --retries 0 -- sh -c 'while read -r l; do printf "%s%02000d\n" "$l" 0; done'
start_module small --max-payload 1K -- cat

run big tobus-send --to big -m x --wait --timeout 60s
assert_rc 1 "tobus-send --wait through a command writing 5000 bytes, --max-payload 1K"
assert_match "output exceeded 1024 bytes" "$(cat "$RUN_ERR")" "stderr"

run pass bash -c 'head -c 2000 /dev/zero | tr "\0" x | tobus-send --to pass --whole --wait --timeout 60s'
assert_rc 1 "tobus-send --wait of 2000 bytes through a pass-through module with --max-payload 1K"
assert_match "its result of 2000 bytes is larger than 1K \(--max-payload\)" "$(cat "$RUN_ERR")" "stderr"

run co tobus-send --to co -m x --wait --timeout 60s
assert_rc 1 "tobus-send --wait through a co-process answering 2001 bytes, --max-payload 1K"
assert_match "answer of 2001 bytes, more than 1K \(--max-payload\)" "$(cat "$T/module.co.1.log")" "the module's log"

# Under the limit, all is as before.
run small tobus-send --to small -m hello --wait --timeout 60s
assert_rc 0 "tobus-send --wait of a small message"
assert_bytes "$RUN_OUT" 'hello\n' "its result"

wait_for -t 30 xlen_ge "$NS:dead" 3 || fail "expected 3 dead letters, got $(xlen "$NS:dead")"
assert_match "larger than 1K" "$(xfield "$NS:dead" dead.hop pass dead.reason)" "the pass-through's dead letter"

pass
