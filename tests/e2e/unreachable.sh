#!/usr/bin/env bash
# Redis unreachable: every program says so in exactly one stderr line, prints nothing on stdout,
# and exits 3, whether the URL comes from -r, --redis or TOBUS_REDIS, TCP or unix socket.
E2E_NO_REDIS=1
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check() { # check LABEL CMD...
    local label=$1
    shift
    run unreach "$@"
    assert_rc 3 "$label"
    assert_empty_file "$RUN_OUT" "stdout of: $label"
    local lines
    lines=$(wc -l <"$RUN_ERR")
    [[ $lines == 1 ]] || fail "$label: expected exactly one line on stderr, got $lines: $(cat "$RUN_ERR")"
}

for url in redis://127.0.0.1:1 "unix://$T/no-such.sock"; do
    check "tobus-bus -r $url" tobus-bus -r "$url"
    check "tobus-module m -r $url" tobus-module m -r "$url"
    check "tobus-module m --redis $url -- cat" tobus-module m --redis "$url" -- cat
    check "tobus-send -r $url --to m -m x" tobus-send -r "$url" --to m -m x
    check "tobus-send --redis $url --to m --wait" tobus-send --redis "$url" --to m --wait -m x
    echo x | check "TOBUS_REDIS=$url tobus-send --to m" env TOBUS_REDIS="$url" tobus-send --to m
done

# The line says what could not be reached.
run unreach tobus-send -r redis://127.0.0.1:1 --to m -m x
assert_match '127\.0\.0\.1:1|127\.0\.0\.1' "$(cat "$RUN_ERR")" "stderr names the address"
assert_match '^tobus-send: ' "$(cat "$RUN_ERR")" "stderr line starts with the program name"

pass
