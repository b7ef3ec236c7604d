#!/usr/bin/env bash
# Payloads are bytes: NUL, invalid UTF-8, CR, 16 MiB, and the three input framings round-trip
# unchanged through a pass-through module (no COMMAND) and through a handler process (cat).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
start_module pass
start_module catm -- cat

# -s/--whole: all of stdin is one payload, printed back with nothing added.
printf 'a\0b\xff\xfe\n\0\xc3\x28 \r\nlast line without newline\x80' >"$T/mixed.bin"
for route in pass catm pass,catm,pass; do
    run whole tobus-send --to "$route" --whole --wait <"$T/mixed.bin"
    assert_rc 0 "tobus-send --whole --to $route"
    assert_same_file "$T/mixed.bin" "$RUN_OUT" "--whole payload through $route"
done
run whole-short tobus-send -t catm -s -w <"$T/mixed.bin"
assert_rc 0 "tobus-send -t catm -s -w"
assert_same_file "$T/mixed.bin" "$RUN_OUT" "-s payload through catm"

# A payload that is only NUL bytes, and one byte.
head -c 1000 /dev/zero >"$T/zeros.bin"
run zeros tobus-send --to pass,catm --whole --wait <"$T/zeros.bin"
assert_rc 0 "tobus-send --whole with 1000 NUL bytes"
assert_same_file "$T/zeros.bin" "$RUN_OUT" "NUL-only payload"
printf '\377' >"$T/one.bin"
run one tobus-send --to catm --whole --wait <"$T/one.bin"
assert_rc 0 "tobus-send --whole with one byte"
assert_same_file "$T/one.bin" "$RUN_OUT" "one-byte payload"

# 16 MiB of random bytes, through both kinds of hop.
head -c 16777216 /dev/urandom >"$T/big.bin"
run big tobus-send --to pass,catm --whole --wait --timeout 150s <"$T/big.bin"
assert_rc 0 "tobus-send --whole with 16 MiB"
assert_same_file "$T/big.bin" "$RUN_OUT" "16 MiB payload through pass,catm"

# -0/--null: NUL-delimited payloads, each result followed by a NUL.
printf 'one\0two words\0line\nbreak\0\xff\xfe\0' >"$T/null.bin"
run null tobus-send --to pass,catm --null --wait <"$T/null.bin"
assert_rc 0 "tobus-send --null"
assert_same_file "$T/null.bin" "$RUN_OUT" "--null round trip"
printf 'a\0b' | run null-short tobus-send -0 -t catm -w
assert_rc 0 "tobus-send -0 with an unterminated last payload"
assert_bytes "$RUN_OUT" 'a\0b\0' "-0 output for an unterminated last payload"

# Default line framing keeps everything but the newline: CR, invalid UTF-8, tabs.
printf 'crlf\r\n\xff\xfe\xfd\ntab\there\n' >"$T/lines.bin"
run lines tobus-send --to pass,catm --wait <"$T/lines.bin"
assert_rc 0 "tobus-send with binary lines"
assert_same_file "$T/lines.bin" "$RUN_OUT" "line framing round trip"

# A payload is what reaches Redis, byte for byte: sent without --wait, read back from the inbox of a
# module that is not running.
printf 'raw\0bytes\xff' | run nowait tobus-send --to nobody --whole --id bin1
assert_rc 0 "tobus-send --whole without --wait"
wait_for -t 30 xlen_ge "$NS:in:nobody" 1 || fail "message never reached $NS:in:nobody"
xfield "$NS:in:nobody" id bin1 payload | head -c 10 >"$T/inbox-payload.bin"
assert_bytes "$T/inbox-payload.bin" 'raw\0bytes\377' "payload field in $NS:in:nobody"

pass
