#!/usr/bin/env bash
# dead retry --all interrupted: killed with -9 (and stopped with SIGINT) in the middle of many
# dead letters, every message is either still in NS:dead or back on NS:bus, exactly once: nothing
# lost, nothing sent twice. A second retry finishes the job. (No bus runs: NS:bus keeps what the
# retry wrote, to be counted.)
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
[[ -x $TOBUS_BIN_DIR/tobus-state ]] || setup_fail "tobus-state not built"

n=100000
# n dead letters of a failed hop: messages d1..dn, payload pI, each with a header.
rcli EVAL '
for i = 1, tonumber(ARGV[1]) do
  redis.call("XADD", KEYS[1], "*", "v", "1", "id", "d" .. i, "route", "", "from", "mod",
    "h:n", tostring(i), "status", "failed", "hop", "mod", "rc", "3", "attempts", "1",
    "error", "handler exited with 3", "stderr", "", "payload", "p" .. i,
    "dead.reason", "handler exited with 3", "dead.stream", "x", "dead.entry", "0-1", "dead.at", "1",
    "dead.hop", "mod", "dead.rc", "3", "dead.attempts", "1", "dead.stderr", "")
end' 1 "$NS:dead" "$n" >/dev/null
assert_eq "$n" "$(xlen "$NS:dead")" "dead letters made"

# Every message d1..dn is in exactly one place, and what is on the bus is a correct retry.
E2E_LUA_CHECK='
local n = tonumber(ARGV[1])
local seen = {}
local problems = {}
local function note(p) if #problems < 5 then table.insert(problems, p) end end
local function scan(key, on_bus)
  local start = "-"
  while true do
    local batch = redis.call("XRANGE", key, start, "+", "COUNT", 10000)
    if #batch == 0 then break end
    for _, e in ipairs(batch) do
      local f = {}
      for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
      local id = f.id
      if seen[id] then note("twice: " .. tostring(id)) end
      seen[id] = true
      if on_bus then
        local i = string.sub(id, 2)
        if f.from ~= "retry" or f.route ~= "mod" or f.payload ~= "p" .. i or f["h:n"] ~= i
          or f.status or f["dead.reason"] then
          note("bad retry entry for " .. id)
        end
      end
    end
    start = "(" .. batch[#batch][1]
  end
end
scan(KEYS[1], false)
scan(KEYS[2], true)
for i = 1, n do if not seen["d" .. i] then note("lost: d" .. i) end end
return problems'
check_nothing_lost() {
    local problems
    problems=$(rcli EVAL "$E2E_LUA_CHECK" 2 "$NS:dead" "$NS:bus" "$n")
    [[ -z $problems ]] || fail "$1: $problems"
    assert_eq "$n" "$(($(xlen "$NS:dead") + $(xlen "$NS:bus")))" "$1: dead + bus"
}

# Three kills at different points of the run.
for at in 1000 20000 50000; do
    start_bg "retry-$at" tobus-state dead retry --all
    pid=$E2E_LAST_PID
    wait_for -t 60 xlen_ge "$NS:bus" "$at" || fail "the retry did not reach $at messages"
    kill -KILL "$pid"
    wait_proc "$pid"
    assert_rc 137 "dead retry --all killed with -9"
    dead=$(xlen "$NS:dead")
    ((dead > 0)) || fail "the retry finished before it was killed at $at; the test proves nothing"
    note "killed at $(xlen "$NS:bus") of $n"
    check_nothing_lost "after kill -9 at about $at"
done

# SIGINT: stops between batches, by the signal.
start_bg retry-int tobus-state dead retry --all
pid=$E2E_LAST_PID
wait_for -t 60 xlen_ge "$NS:bus" 60000 || fail "the retry did not reach 60000 messages"
kill -INT "$pid"
wait_proc "$pid"
assert_rc 130 "dead retry --all stopped by SIGINT"
check_nothing_lost "after SIGINT"

# The rest, to the end; it prints the id of each message it sent.
left=$(xlen "$NS:dead")
run finish tobus-state dead retry --all
assert_rc 0 "the last dead retry --all"
assert_eq 0 "$(xlen "$NS:dead")" "$NS:dead after the last retry"
check_nothing_lost "after the last retry"
assert_eq "$left" "$(wc -l <"$RUN_OUT")" "ids printed by the last retry"

pass
