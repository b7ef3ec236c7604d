#!/usr/bin/env bash
# Usage errors: exit 2, one error line plus "Try 'PROG --help'." on stderr, nothing on stdout,
# before any connection is tried (Redis here is unreachable on purpose). --help and --version.
E2E_NO_REDIS=1
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export TOBUS_REDIS=redis://127.0.0.1:1

usage_error() { # usage_error PROG ARGS...: runs PROG ARGS...
    local prog=$1
    run usage "$@"
    assert_rc 2 "$*"
    assert_empty_file "$RUN_OUT" "stdout of: $*"
    local lines
    lines=$(wc -l <"$RUN_ERR")
    [[ $lines == 2 ]] || fail "$*: expected 2 lines on stderr (error + Try ...), got $lines: $(cat "$RUN_ERR")"
    assert_eq "Try '$prog --help'." "$(tail -n 1 "$RUN_ERR")" "last stderr line of: $*"
    [[ -n $(head -n 1 "$RUN_ERR") ]] || fail "$*: empty error line"
}

for prog in tobus-bus tobus-module tobus-send; do
    soft usage_error "$prog" --no-such-option
    soft usage_error "$prog" -Z
    soft usage_error "$prog" --log-level loud
    soft usage_error "$prog" --redis
done
soft usage_error tobus-bus --claim-after 5x
soft usage_error tobus-bus --batch many
soft usage_error tobus-bus extra-positional
soft usage_error tobus-module
soft usage_error tobus-module m --timeout 5x
soft usage_error tobus-module m --backoff soon
soft usage_error tobus-module m --claim-after 5x
soft usage_error tobus-module m -j many
soft usage_error tobus-module m --retries lots
soft usage_error tobus-send -m x
soft usage_error tobus-send --to m -m x --wait --timeout 5x
soft usage_error tobus-send --to 'a,,b' -m x
soft usage_error tobus-send --to 'bad name' -m x
soft usage_error tobus-send --to m -H novalue -m x
soft usage_error tobus-send --to m --id 'has space' -m x
soft usage_error tobus-send --to m --message

# The error line names what was wrong.
error_lines() {
    run usage tobus-send --no-such-option
    assert_contains "--no-such-option" "$(head -n 1 "$RUN_ERR")" "error line for an unknown option"
    run usage tobus-send --to m -m x --wait --timeout 5x
    assert_contains 5x "$(head -n 1 "$RUN_ERR")" "error line for a bad duration"
    run usage tobus-send -m x
    assert_match '--to|-t|ROUTE' "$(head -n 1 "$RUN_ERR")" "error line for a missing --to"
}
soft error_lines

help_and_version() { # help_and_version PROG
    local prog=$1 help
    run help "$prog" --help
    assert_rc 0 "$prog --help"
    assert_empty_file "$RUN_ERR" "stderr of $prog --help"
    help=$(cat "$RUN_OUT")
    assert_contains "$prog" "$help" "$prog --help names the program"
    assert_contains "--redis" "$help" "$prog --help lists --redis"
    assert_contains "--namespace" "$help" "$prog --help lists --namespace"
    run help-short "$prog" -h
    assert_rc 0 "$prog -h"
    cmp -s "$T/help.out" "$T/help-short.out" || fail "$prog -h and $prog --help differ"

    run version "$prog" --version
    assert_rc 0 "$prog --version"
    assert_empty_file "$RUN_ERR" "stderr of $prog --version"
    [[ $(wc -l <"$RUN_OUT") == 1 ]] || fail "$prog --version: expected one line, got: $(cat "$RUN_OUT")"
    assert_match "^$prog [0-9]+\.[0-9]+[^ ]*\$" "$(cat "$RUN_OUT")" "$prog --version output"
}
for prog in tobus-bus tobus-module tobus-send; do
    soft help_and_version "$prog"
done

help_lists() { # help_lists PROG OPTION...
    local prog=$1 help opt
    shift
    help=$("$prog" --help)
    for opt in "$@"; do
        assert_contains "$opt" "$help" "$prog --help lists $opt"
    done
}
soft help_lists tobus-send --to --message --null --whole --header --id --wait --timeout --print-id
soft help_lists tobus-module --jobs --retries --backoff --timeout --claim-after
soft help_lists tobus-bus --embedded --data-dir --socket --batch --claim-after

finish
