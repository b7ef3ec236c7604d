#!/usr/bin/env bash
# tobus-module --lines / --framed: the handler is a co-process, started once. A co-process that
# dies is restarted and the messages it held are retried; a script edited under load is reloaded
# (drained first): every message answered, the old version before the change, the new after.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
handlers=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../examples/handlers" && pwd)

start_bus
start_module c --lines -- cat
seq 10000 >"$T/in"
run lines tobus-send --to c --wait <"$T/in"
assert_rc 0 "10,000 messages through a --lines cat"
assert_same_file "$T/in" "$RUN_OUT" "results in order"

start_module f --framed -- sh "$handlers/upper.sh"
printf 'ab\0c\xffd' | run framed tobus-send --to f --whole --wait
assert_rc 0 "a binary payload through a --framed handler"
assert_bytes "$RUN_OUT" 'AB\0C\377D' "the framed handler's answer, byte-exact"

# A stdio filter that buffers its output on a pipe (tr) answers each line: --lines co-processes
# run line-buffered.
start_module tr --lines -- tr a-z A-Z
printf 'one\ntwo\n' | run tr tobus-send --to tr --wait --timeout "$(secs 30)s"
assert_rc 0 "tobus-module --lines -- tr a-z A-Z"
assert_bytes "$RUN_OUT" 'ONE\nTWO\n' "tr's answers"

# One that holds a message without answering is named on stderr, once, with what to do.
start_module mute --lines -- sh -c 'while read -r line; do :; done'
mute_log=$T/module.mute.1.log
run mute tobus-send --to mute -m a -m b
wait_for -t 30 grep -q "co-process 'mute' holds 2 message(s) and has answered none for 5s: if it buffers its output" "$mute_log" ||
    fail "no warning for a co-process that does not answer: $(cat "$mute_log")"
run mute2 tobus-send --to mute -m c
sleep 6
assert_eq 1 "$(grep -c 'has answered none' "$mute_log")" "warnings for one silent co-process"

# Killed under load: restarted, nothing lost.
start_module k --lines -- sed -u 's/^/k:/'
k=$E2E_LAST_PID
seq 3000 | tobus-send --to k --wait --timeout "$(secs 60)s" >"$T/k.out" 2>"$T/k.err" &
send=$!
# The co-process is the module's child: killed by its parent's pid, never by a pattern that could
# match another test's processes.
for _ in 1 2 3; do
    sleep 0.3
    pkill -KILL -P "$k" -x sed || true
done
wait_proc "$send"
assert_eq 0 "$RC" "sender across co-process deaths (stderr: $(head -c 500 "$T/k.err"))"
assert_eq 3000 "$(sort -u "$T/k.out" | grep -c '^k:')" "every message answered once"

# Hot reload: the script changes on disk while messages flow.
cat >"$T/v.sh" <<'SH'
#!/bin/sh
while IFS= read -r line; do printf 'v1 %s\n' "$line"; done
SH
chmod +x "$T/v.sh"
start_module v --lines -- "$T/v.sh"
v=$E2E_LAST_PID
seq 4000 | awk '{ print; fflush(); if (NR % 100 == 0) system("sleep 0.1") }' |
    tobus-send --to v --wait --timeout "$(secs 60)s" >"$T/v.out" 2>"$T/v.err" &
send=$!
sleep 1
sed -i 's/v1/v2/' "$T/v.sh"
wait_proc "$send"
assert_eq 0 "$RC" "sender across a reload (stderr: $(head -c 500 "$T/v.err"))"
assert_eq 4000 "$(wc -l <"$T/v.out")" "every message answered"
grep -q '^v2 ' "$T/v.out" || fail "the new version never answered"
first_v2=$(grep -n '^v2 ' "$T/v.out" | head -1 | cut -d: -f1)
last_v1=$(grep -n '^v1 ' "$T/v.out" | tail -1 | cut -d: -f1)
((last_v1 < first_v2)) || fail "an old answer ($last_v1) after a new one ($first_v2)"

# SIGHUP reloads too, without failing anything.
seq 1000 | tobus-send --to v --wait --timeout "$(secs 60)s" >"$T/h.out" 2>"$T/h.err" &
send=$!
kill -HUP "$v"
wait_proc "$send"
assert_eq 0 "$RC" "sender across a SIGHUP reload"
assert_eq 1000 "$(wc -l <"$T/h.out")" "every message answered across SIGHUP"
assert_eq 0 "$(rcli XLEN "$NS:dead")" "dead letters"

run usage tobus-module x --lines
assert_rc 2 "--lines without COMMAND"
pass
