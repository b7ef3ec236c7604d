#!/usr/bin/env bash
# Redis killed (SIGKILL) and restarted twice while messages flow over two hops of per-message
# handlers, with its data kept in an append-only file: the waiting sender reconnects and prints
# every result once, in input order, and exits 0; the modules leave no job behind (no job record
# still "running", nothing pending) and stop at once on SIGTERM.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=1000

# The private server keeps every write on disk from now on, and is started again from it.
rcli CONFIG SET appendfsync always >/dev/null
rcli CONFIG SET appendonly yes >/dev/null
aof_ready() { rcli INFO persistence | grep -q '^aof_rewrite_in_progress:0' &&
    rcli INFO persistence | grep -q '^aof_enabled:1'; }
wait_for -t 30 aof_ready || fail "redis-server did not turn on its append-only file"
restart_redis() {
    kill -KILL "$E2E_REDIS_PID"
    wait "$E2E_REDIS_PID" 2>/dev/null
    sleep 0.5
    redis-server --port 0 --unixsocket "$T/redis.sock" --unixsocketperm 700 --save '' \
        --appendonly yes --appendfsync always --daemonize no --dir "$T" >>"$T/redis.log" 2>&1 &
    E2E_REDIS_PID=$!
    E2E_PIDS+=("$E2E_REDIS_PID")
    wait_for -t 30 rcli ping || fail "redis-server did not come back"
}

start_bus --claim-after 2s
start_module p -j 4 --claim-after 2s -- cat
p_pid=$E2E_LAST_PID
start_module q -j 4 --claim-after 2s -- cat
q_pid=$E2E_LAST_PID

seq 1 "$N" >"$T/in"
start_bg sender bash -c 'exec "$@" <"$0"' "$T/in" tobus-send --to p,q --wait --timeout 600s
sender=$E2E_LAST_PID
results() { (($(wc -l <"$T/sender.stdout") >= $1)); }

wait_for -t 120 results 100 || fail "no 100 results before the first restart: $(wc -l <"$T/sender.stdout")"
restart_redis
wait_for -t 120 results 500 || fail "no 500 results before the second restart: $(wc -l <"$T/sender.stdout")"
restart_redis

wait_proc "$sender"
assert_eq 0 "$RC" "exit code of tobus-send --wait across two Redis restarts"
assert_same_file "$T/in" "$T/sender.stdout" "every result, once, in input order"
assert_match "reconnecting" "$(cat "$T/sender.log")" "the sender's log"

# Nothing left behind: no message pending anywhere, no job record saying it still runs.
for s in "$NS:bus bus" "$NS:in:p module" "$NS:in:q module"; do
    # shellcheck disable=SC2086
    wait_for -t 60 backlog_empty $s || fail "left pending on ${s% *}: $(backlog $s)"
done
E2E_LUA_RUNNING='
local n, cursor = 0, "0"
repeat
  local r = redis.call("SCAN", cursor, "MATCH", KEYS[1], "COUNT", 1000)
  cursor = r[1]
  for _, k in ipairs(r[2]) do
    if redis.call("HGET", k, "status") == "running" then n = n + 1 end
  end
until cursor == "0"
return n'
running_jobs() { rcli EVAL "$E2E_LUA_RUNNING" 1 "$NS:state:job:*"; }
no_running_jobs() { [[ $(running_jobs) == 0 ]]; }
wait_for -t 60 no_running_jobs || fail "$(running_jobs) job record(s) still say running"

# A stop is prompt: no job without a process holds it (wait_proc kills it after a while: 137).
for pid in "$p_pid" "$q_pid"; do
    stop_proc "$pid"
    assert_eq 143 "$RC" "exit code of tobus-module after SIGTERM"
done

pass
