#!/usr/bin/env bash
# `tobus-watch | head -1` ends at once and quietly: by SIGPIPE (status 141) as soon as head has
# gone, even when no more traffic comes to write, with nothing on stderr; and the pipeline's
# status is head's. The same for --json, --stats and history.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
start_module upper -- tr a-z A-Z
wait_for -t 30 instances_at_least upper 1 || fail "upper did not attach"
run history tobus-send -t upper --wait -m one -m two
assert_rc 0 "history"

# blocked_readers: clients blocked in XREAD (a watch waiting for traffic).
blocked_readers() { rcli CLIENT LIST | grep -c 'cmd=xread'; }
readers_ge() { (($(blocked_readers) >= $1)); }

# pipeline NAME SEND WATCH-ARGS...: `tobus-watch ARGS 2>ERR | head -1` in the background; once the
# watch waits, SEND (yes or no) sends one message; then the pipeline must end within 5 seconds.
pipeline() {
    local name=$1 send=$2 base
    shift 2
    base=$(blocked_readers)
    (
        tobus-watch "$@" 2>"$T/$name.err" | head -1 >"$T/$name.out"
        echo "${PIPESTATUS[*]}" >"$T/$name.status"
    ) &
    local pid=$!
    E2E_PIDS+=("$pid")
    if [[ $send == yes ]]; then
        wait_for -t 20 readers_ge $((base + 1)) || fail "$name: the watch never waited for traffic"
        tobus-send -t upper -m three >/dev/null || fail "$name: tobus-send"
    fi
    local start=$SECONDS
    wait_for -t 5 test -s "$T/$name.status" || fail "$name: 'tobus-watch $* | head -1' still runs after 5s"
    wait "$pid"
    ((SECONDS - start <= $(secs 5))) || fail "$name: took $((SECONDS - start))s"
    assert_eq "141 0" "$(cat "$T/$name.status")" "$name: exit statuses of tobus-watch and head"
    assert_eq 1 "$(count_lines "$T/$name.out")" "$name: lines head printed"
    assert_empty_file "$T/$name.err" "$name: stderr of tobus-watch"
}

pipeline live yes
assert_match '^[0-9:.]{12} sent      - ' "$(cat "$T/live.out")" "live: the first record"
pipeline json yes --json
jq -e '.event == "sent"' "$T/json.out" >/dev/null || fail "json: the first record: $(cat "$T/json.out")"
pipeline since no --since 1m
pipeline stats no --stats --interval 200ms
pipeline stats-json no --stats --interval 200ms --json

# The pipeline as a whole succeeds (its status is head's), at once.
start=$SECONDS
run pipe-status bash -c 'tobus-watch --since 1m | head -1 >/dev/null'
assert_rc 0 "the status of 'tobus-watch --since 1m | head -1'"
assert_empty_file "$RUN_ERR" "stderr of the pipeline"
((SECONDS - start <= $(secs 5))) || fail "the pipeline took $((SECONDS - start))s"

pass
