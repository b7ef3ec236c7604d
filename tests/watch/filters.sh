#!/usr/bin/env bash
# Every filter, alone and combined, on known history (read with --since, so the output is exact):
# --module (repeatable), --id, -H/--header (repeatable: all must match), --grep (ECMAScript, on the
# payload's bytes), --failed, --event (repeatable and comma-separated). And every bad use of them is
# a usage error: one line naming the problem, the hint, exit 2, nothing on stdout.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
start_module upper -- tr a-z A-Z
start_module rev -- rev
start_module picky -- sh -c 'echo "no thanks" >&2; exit 3'
for m in upper rev picky; do
    wait_for -t 30 instances_at_least "$m" 1 || fail "$m did not attach"
done

run m1 tobus-send -t upper,rev --wait --id m1 -H lang=en -m hello
assert_rc 0 "m1"
run m2 tobus-send -t upper,picky --wait --id m2 -H lang=fr -m oops
assert_rc 1 "m2 fails at picky"
printf 'bin\0\377' | run m3 tobus-send -t upper --whole --id m3 -H lang=en -H k=1
assert_rc 0 "m3"
m3_done() { xfield "$NS:bus" id m3 from | grep -qx upper; }
wait_for -t 30 m3_done || fail "m3 was not handled"
sleep 0.3 # the bus has read m3's result too

# watch_ok NAME EXPECTED ARGS...: the history, through ARGS, printed as '%e %m %i' lines.
watch_ok() {
    local name=$1 expected=$2
    shift 2
    run "$name" tobus-watch --since 5m --timeout 1s --format '%e %m %i\n' "$@"
    assert_rc 0 "tobus-watch $*"
    printf '%s' "$expected" >"$T/$name.expected"
    assert_same_file "$T/$name.expected" "$RUN_OUT" "tobus-watch $*"
    assert_empty_file "$RUN_ERR" "stderr of tobus-watch $*"
}
# watch_none NAME ARGS...: nothing matches: exit 124 after --timeout, nothing printed.
watch_none() {
    local name=$1
    shift
    run "$name" tobus-watch --since 5m --timeout 1s --format '%e %m %i\n' "$@"
    assert_rc 124 "tobus-watch $* (nothing matches)"
    assert_empty_file "$RUN_OUT" "stdout of tobus-watch $*"
    assert_empty_file "$RUN_ERR" "stderr of tobus-watch $*"
}

all='sent  m1
routed upper m1
handled upper m1
routed rev m1
handled rev m1
delivered  m1
sent  m2
routed upper m2
handled upper m2
routed picky m2
failed picky m2
dead picky m2
sent  m3
routed upper m3
handled upper m3
done  m3
'
watch_ok all "$all"
watch_ok module-upper 'routed upper m1
handled upper m1
routed upper m2
handled upper m2
routed upper m3
handled upper m3
' --module upper
watch_ok module-two 'routed rev m1
handled rev m1
routed picky m2
failed picky m2
dead picky m2
' --module picky --module rev
watch_ok id "$(grep ' m2$' <<<"$all")
" --id m2
watch_ok header "$(grep -E ' m[13]$' <<<"$all")
" -H lang=en
watch_ok headers "$(grep ' m3$' <<<"$all")
" --header lang=en --header k=1
watch_none header-none -H lang=de
watch_none header-missing -H lang=en -H k=2
watch_ok grep 'handled upper m1
routed rev m1
' --grep '^HEL'
watch_ok grep-bytes 'sent  m3
routed upper m3
handled upper m3
done  m3
' --grep '[nN]\x00\xff$'
watch_ok failed 'failed picky m2
dead picky m2
' --failed
watch_ok events 'sent  m1
sent  m2
sent  m3
done  m3
' --event sent,done
watch_ok events-repeated 'routed upper m1
routed rev m1
delivered  m1
routed upper m2
routed picky m2
routed upper m3
' --event routed --event delivered
watch_ok combined 'handled upper m3
' --module upper --id m3 --event handled
watch_none combined-none --failed --module upper

# Bad uses: exact message, the hint, exit 2, nothing on stdout.
usage() {
    local message=$1
    shift
    run usage tobus-watch "$@"
    assert_rc 2 "tobus-watch $*"
    assert_empty_file "$RUN_OUT" "stdout of tobus-watch $*"
    printf 'tobus-watch: error: %s\nTry '\''tobus-watch --help'\''.\n' "$message" >"$T/usage.expected"
    assert_same_file "$T/usage.expected" "$RUN_ERR" "stderr of tobus-watch $*"
}
usage "bad --grep '(': Mismatched '(' and ')' in regular expression" --grep '('
usage "bad --event 'bogus': one of sent, routed, handled, failed, dead, delivered, done" --event sent,bogus
usage "bad header 'nokey': expected KEY=VALUE, KEY 1-64 of A-Z a-z 0-9 _ . -" -H nokey
usage "bad header 'b@d=1': expected KEY=VALUE, KEY 1-64 of A-Z a-z 0-9 _ . -" --header 'b@d=1'
usage "--module excludes --trace" --trace m1 --module upper
usage "--failed excludes --stats" --stats --failed
usage "--count must be at least 1" -c 0
usage "bad --trace 'a b': 1-200 printable characters, no spaces" --trace 'a b'

pass
