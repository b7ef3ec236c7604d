#!/usr/bin/env bash
# The service pool: the header `service` picks DIR/NAME, looked up for every message (a service
# added while running is used at once), `args` (a JSON array) is passed as argv, never through a
# shell; unknown (127), not executable (127), a bad name such as ../x (65), bad args (65).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pool=$T/pool
mkdir -p "$pool"

# One process serves every message, so nothing may be cached between them.
coproc SERVE { "$D" serve -n pooled --pool "$pool" 2>"$T/serve.err"; }
serve_pid=$SERVE_PID  # bash unsets SERVE_PID once the coprocess has ended
# send LINE: one message ("SERVICE [ARGS-JSON]", the line is also the payload); sets OUT to the
# description and RC to the exit code.
send() {
    local line
    printf '%s\n' "$1" >&"${SERVE[1]}"
    OUT=
    while IFS= read -r -t "$(secs 20)" line <&"${SERVE[0]}"; do
        if [[ $line == "rc "* ]]; then
            RC=${line#rc }
            return 0
        fi
        [[ $line == id:* ]] && continue
        OUT+=$line$'\n'
    done
    fail "no answer to '$1'; stderr: $(cat "$T/serve.err")"
}

send "up"
assert_eq 127 "$RC" "unknown service: rc"
assert_contains "would dead-letter: unknown service 'up': no '$pool/up'" "$OUT" "unknown service"

# Dropped into the pool while running, not executable yet, then executable: used at once.
printf '#!/bin/sh\ntr a-z A-Z\n' >"$pool/up"
send "up"
assert_eq 127 "$RC" "not executable: rc"
assert_contains "would dead-letter: service 'up' is not executable: '$pool/up'" "$OUT" "not executable"
chmod +x "$pool/up"
send "up"
assert_eq 0 "$RC" "added service: rc"
assert_contains "payload: 2 bytes: UP" "$OUT" "added service: result"

# Replaced while running: the next message runs the new file.
printf '#!/bin/sh\nrev\n' >"$pool/up.new" && chmod +x "$pool/up.new" && mv "$pool/up.new" "$pool/up"
send "up"
assert_eq 0 "$RC" "replaced service: rc"
assert_contains "payload: 2 bytes: pu" "$OUT" "replaced service: result"

# args: argv, never a shell.
printf '#!/bin/sh\nprintf "[%%s]" "$@"\n' >"$pool/args" && chmod +x "$pool/args"
send "args [\"a b\", \"\$(touch $T/pwned)\", \";id\", \"\"]"
assert_eq 0 "$RC" "args: rc"
assert_contains "[a b][\$(touch $T/pwned)][;id][]" "$OUT" "args: argv as given"
[[ ! -e $T/pwned ]] || fail "an argument went through a shell"

send "args -x"
assert_eq 65 "$RC" "args not JSON: rc"
assert_contains "would dead-letter: bad 'args' header of service 'args': not JSON" "$OUT" "args not JSON"
send 'args {"a":"b"}'
assert_eq 65 "$RC" "args not an array: rc"
assert_contains "not a JSON array of strings" "$OUT" "args not an array"
send 'args ["a", 1]'
assert_eq 65 "$RC" "args not strings: rc"
assert_contains "element 1 is not a string" "$OUT" "args not strings"

# Path traversal and other names that are no service.
printf '#!/bin/sh\ntouch %s/escaped\n' "$T" >"$T/x" && chmod +x "$T/x"
for bad in ../x ../../bin/sh /bin/sh .. . .hidden 'a;b'; do
    send "$bad"
    assert_eq 65 "$RC" "service name '$bad': rc"
    assert_contains "would dead-letter: bad service name" "$OUT" "service name '$bad'"
done
[[ ! -e $T/escaped ]] || fail "a service outside the pool ran"

# A directory is no service; a removed service is unknown again.
mkdir "$pool/adir"
send "adir"
assert_eq 127 "$RC" "directory: rc"
assert_contains "service 'adir' is not a file" "$OUT" "directory"
rm "$pool/up"
send "up"
assert_eq 127 "$RC" "removed service: rc"

exec {SERVE[1]}>&-
wait_proc "$serve_pid"
pass
