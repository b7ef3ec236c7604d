#!/usr/bin/env bash
# Isolation and limits: --timeout with --kill-after against a handler that ignores SIGTERM,
# --max-memory, --max-output against a flood, and fork bombs contained by the process-group kill.
# svc-driver fails (98) if any child process of its own is left, zombie or alive.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Timeout, handler heeds SIGTERM: ends at the timeout.
start=$(date +%s%N)
run term "$D" once --timeout 500ms --kill-after 10s -m x -- sleep 30
assert_rc 124 "timeout"
assert_eq "would dead-letter: timed out after 500ms" "$(verdict)" "timeout: verdict"
took=$(elapsed_ms "$start")
((took >= 450 && took < 3000)) || fail "timeout took ${took}ms"

# Timeout, handler ignores SIGTERM: SIGKILL --kill-after later.
marker="sleep 3$$"
start=$(date +%s%N)
run noterm "$D" once --timeout 500ms --kill-after 1s -m x -- \
    sh -c "trap '' TERM; $marker & while :; do sleep 0.1; done"
assert_rc 124 "timeout, SIGTERM ignored"
took=$(elapsed_ms "$start")
((took >= 1400 && took < 5000)) || fail "SIGTERM ignored: took ${took}ms, expected about 1500"
none_left "$marker" || fail "SIGTERM ignored: its child survived"

# Memory: an allocation past --max-memory fails; the same without the limit works.
run mem "$D" once --max-memory 67108864 -m x -- "$HOG" alloc 256
assert_rc 3 "--max-memory"
assert_eq "would dead-letter: handler exited with 3: cannot allocate 256 MiB" "$(verdict)" "--max-memory: verdict"
run memok "$D" once --max-memory 67108864 -m x -- "$HOG" alloc 16
assert_rc 0 "under --max-memory"
run nolimit "$D" once -m x -- "$HOG" alloc 256
assert_rc 0 "no --max-memory"

# Output flood: `yes` against 1 MiB fails at once; with a work dir, output holds exactly 1 MiB.
start=$(date +%s%N)
run flood "$D" once --max-output 1048576 -m x -- yes
assert_rc 1 "--max-output"
assert_eq "would dead-letter: output exceeded 1048576 bytes" "$(verdict)" "--max-output: verdict"
assert_empty_file "$RUN_OUT" "--max-output: nothing is sent"
took=$(elapsed_ms "$start")
((took < 3000)) || fail "a flood took ${took}ms to stop"
run floodw "$D" once --workdir "$T/w" --max-output 1048576 -m x -- yes
assert_rc 1 "--max-output with a work dir"
assert_eq 1048576 "$(stat -c %s "$T"/w/*/output)" "--max-output: output is cut at the limit"

# Fork bombs. A handler that forks 50 sleeping children and exits: the group goes with it.
marker="sleep 4$$"
run bomb50 "$D" once -m x -- bash -c "for i in \$(seq 50); do $marker & done; echo forked"
assert_rc 0 "50 children"
assert_bytes "$RUN_OUT" 'forked\n' "50 children: result"
none_left "$marker" || fail "50 children: $(pgrep -fc "$marker") left"

# A binary tree of forks (127 processes, every one asleep) under a handler that ignores SIGTERM
# and never ends: the timeout's group kill takes them all.
marker="sleep 5$$"
run tree "$D" once --timeout 1s --kill-after 300ms -m x -- bash -c '
    trap "" TERM
    bomb() { if (($1 > 0)); then bomb $(($1 - 1)) & bomb $(($1 - 1)) & fi; $0; }
    bomb 6 &
    while :; do sleep 0.1; done' "$marker"
assert_rc 124 "fork tree"
none_left "$marker" || fail "fork tree: $(pgrep -fc "$marker") left"

# A child that closes its output and ignores SIGTERM outlives its parent only until the parent exits.
marker="sleep 6$$"
run orphan "$D" once -m x -- bash -c "(trap '' TERM HUP; exec >/dev/null 2>&1; $marker) & echo bye"
assert_rc 0 "orphan"
none_left "$marker" || fail "orphan: it survived its handler"

pass
