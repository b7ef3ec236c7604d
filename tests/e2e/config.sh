#!/usr/bin/env bash
# --config PATH (what tobus-module@NAME.service runs): a module whose command and options come
# from a file handles messages, its command a list of words that no shell sees; the command line
# wins over the file, the file over the environment; a bad file is one line on stderr and exit 2;
# tobus-bus reads one too.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cat >"$T/bus.conf" <<'CONF'
retain = 1m
claim-after = 20s
CONF
start_bus --config "$T/bus.conf"

# A module from a file: the command's words reach it as they are ('$(id) ;x' is not run), an
# array over several lines with comments, repeated values (type), flags, durations.
cat >"$T/echo.conf" <<'CONF'
# the module 'echo': prints its arguments and the payload
command = [
  "sh", "-c",                      # sh, but the words are ours: no shell parses this file
  'printf "%s|%s|" "$1" "$2"; cat',
  "x", "$(id) ;x", "two words",
]
jobs = 2
timeout = 30s
type = ["printers", "echoes"]
pass-redis-password = false
CONF
# As tobus-module@echo.service runs it: --config PATH NAME.
start_bg module.echo tobus-module --config "$T/echo.conf" echo
wait_for -t 20 instances_at_least echo 1 || fail "the module from echo.conf did not attach"
run send tobus-send --to echo -m payload --wait --timeout "$(secs 20)s"
assert_rc 0 "a message to the module read from echo.conf"
assert_bytes "$RUN_OUT" '$(id) ;x|two words|payload\n' "the handler's arguments, as the file wrote them"
assert_eq "echo" "$(rcli SMEMBERS "$NS:type:echoes")" "members of type 'echoes' (type = [...] in the file)"
assert_eq "echo" "$(rcli SMEMBERS "$NS:type:printers")" "members of type 'printers'"

# NAME from the file too; the command line wins over the file (--namespace), the file over the
# environment (TOBUS_NAMESPACE).
cat >"$T/up.conf" <<CONF
name = up
command = ["tr", "a-z", "A-Z"]
namespace = $NS
CONF
TOBUS_NAMESPACE=elsewhere start_bg module.up tobus-module --config "$T/up.conf"
wait_for -t 20 instances_at_least up 1 || fail "the module named in up.conf did not attach under '$NS' (the file's namespace)"
run send tobus-send --to up -m abc --wait --timeout "$(secs 20)s"
assert_rc 0 "a message to the module named by its file"
assert_bytes "$RUN_OUT" 'ABC\n' "the result of the file's command"
run once tobus-module --config "$T/up.conf" --once -m abc up -- rev
assert_rc 0 "--once with a file and a command line that gives COMMAND"
assert_bytes "$RUN_OUT" 'cba' "the command line's COMMAND, not the file's"

# Bad files: one line on stderr naming the file and line, exit 2, nothing started.
bad() {  # bad NAME CONTENT EXPECTED-IN-THE-LINE
    printf '%s\n' "$2" >"$T/$1.conf"
    run "bad-$1" tobus-module --config "$T/$1.conf" m
    assert_rc 2 "tobus-module with $1.conf ($2)"
    assert_eq 1 "$(wc -l <"$RUN_ERR")" "lines on stderr for $1.conf: $(cat "$RUN_ERR")"
    assert_contains "$3" "$(cat "$RUN_ERR")" "the error for $1.conf"
}
bad unknown 'jobz = 2' "$T/unknown.conf:1: unknown key 'jobz'"
bad unclosed $'jobs = 2\ncommand = ["cat"' "$T/unclosed.conf:2: an array opened with [ is not closed"
bad twice $'jobs = 2\n\njobs = 3' "$T/twice.conf:3: 'jobs' is given twice (first on line 1)"
bad range 'jobs = 0' "$T/range.conf:1: --jobs: Value 0 not in range"
bad duration 'timeout = soon' "$T/duration.conf:1: --timeout"
bad flag 'lines = yes' "$T/flag.conf:1: 'lines' is a flag"
bad array 'jobs = ["1", "2"]' "$T/array.conf:1: 'jobs' takes one value"
bad noequals 'command cat' "$T/noequals.conf:1: expected KEY = VALUE"
bad section '[module]' "$T/section.conf:1: sections"
bad quote 'before = "echo' "$T/quote.conf:1: a string opened with \" is not closed"
bad config 'config = /etc/passwd' "$T/config.conf:1: 'config' cannot be set in a config file"
run missing tobus-module --config "$T/none.conf" m
assert_rc 2 "tobus-module with a missing config file"
assert_eq 1 "$(wc -l <"$RUN_ERR")" "lines on stderr for a missing file: $(cat "$RUN_ERR")"
assert_contains "$T/none.conf" "$(cat "$RUN_ERR")" "the error for a missing file"
head -c 2000000 /dev/zero | tr '\0' '#' >"$T/huge.conf"
run huge tobus-module --config "$T/huge.conf" m
assert_rc 2 "tobus-module with a 2 MB config file"
assert_contains "larger than" "$(cat "$RUN_ERR")" "the error for a 2 MB file"
# A bad value the command line overrides is not an error: the file's value is never used.
run override tobus-module --config "$T/range.conf" -j 2 --once -m hi -- cat
assert_rc 0 "a file's bad jobs overridden by -j"
pass
