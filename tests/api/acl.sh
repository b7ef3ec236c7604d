#!/usr/bin/env bash
# AUTH with an ACL user confined to the namespace's keys: the three programs work through
# redis://user:password@host:port/db, and a wrong password is "Redis unavailable" (exit 3).
set -euo pipefail
export PATH=${TOBUS_BIN_DIR:?}:$PATH
T=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# A free loopback port: let redis-server try a few.
for _ in $(seq 20); do
  port=$((20000 + RANDOM % 20000))
  redis-server --port "$port" --bind 127.0.0.1 --save '' --dir "$T" --daemonize no >"$T/redis.log" 2>&1 &
  rpid=$!
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  if redis-cli -p "$port" ping >/dev/null 2>&1; then break; fi
  kill "$rpid" 2>/dev/null || true
  rpid=
done
[ -n "${rpid:-}" ] || fail "could not start redis-server on a free port"
pids+=("$rpid")
redis-cli -p "$port" ACL SETUSER alice on '>s3cret' '~acl:*' '+@all' >/dev/null
# bob may not CLIENT UNBLOCK (used below).
redis-cli -p "$port" ACL SETUSER bob on '>s3cret' '~acl2:*' '+@all' '-client|unblock' >/dev/null
# carol may not touch the namespace's keys; dave may, but not HSET (refused inside a script).
redis-cli -p "$port" ACL SETUSER carol on '>s3cret' '~other:*' '+@all' >/dev/null
redis-cli -p "$port" ACL SETUSER dave on '>s3cret' '~acl3:*' '+@all' '-hset' >/dev/null
redis-cli -p "$port" ACL SETUSER default off >/dev/null

export TOBUS_REDIS="redis://alice:s3cret@127.0.0.1:$port/0" TOBUS_NAMESPACE=acl
tobus-bus 2>"$T/bus.err" &
pids+=($!)
tobus-module up -- tr a-z A-Z 2>"$T/up.err" &
pids+=($!)
out=$(printf 'abc\n' | tobus-send --to up --wait --timeout 20s)
[ "$out" = ABC ] || fail "expected ABC through an ACL user, got '$out'; bus: $(cat "$T/bus.err")"

set +e
TOBUS_REDIS="redis://alice:wrong@127.0.0.1:$port/0" tobus-send --to up -m x >"$T/out" 2>"$T/err"
rc=$?
set -e
[ "$rc" = 3 ] || fail "wrong password: exit $rc, expected 3"
[ "$(wc -l <"$T/err")" = 1 ] || fail "wrong password: expected one line on stderr, got: $(cat "$T/err")"
grep -q "cannot authenticate" "$T/err" || fail "wrong password: stderr does not say so: $(cat "$T/err")"
[ ! -s "$T/out" ] || fail "wrong password: something on stdout"
# A user without CLIENT UNBLOCK: the bus and two modules still stop at once on SIGTERM (exit 143),
# not after their blocking reads time out (5s), and a message sent before is not lost.
export TOBUS_REDIS="redis://bob:s3cret@127.0.0.1:$port/0" TOBUS_NAMESPACE=acl2
tobus-bus 2>"$T/bus2.err" &
bus2=$!
pids+=("$bus2")
tobus-module up -- tr a-z A-Z 2>"$T/up2.err" &
up2=$!
pids+=("$up2")
tobus-module lo -- tr A-Z a-z 2>"$T/lo2.err" &
lo2=$!
pids+=("$lo2")
out=$(printf 'def\n' | tobus-send --to up --wait --timeout 20s)
[ "$out" = DEF ] || fail "expected DEF through a user without CLIENT UNBLOCK, got '$out'"
out=$(printf 'GHI\n' | tobus-send --to lo --wait --timeout 20s)
[ "$out" = ghi ] || fail "expected ghi through a user without CLIENT UNBLOCK, got '$out'"
sleep 0.5  # all are in their blocking reads again (of 2s and 5s: a stop waiting them out shows)
limit_ms=$(awk -v k="${TOBUS_E2E_SCALE:-1}" 'BEGIN { printf "%d", 1000 * k }')
for who in bus2 up2 lo2; do
  pid=${!who}
  t0=$(date +%s%3N)
  kill -TERM "$pid"
  set +e
  wait "$pid"
  rc=$?
  set -e
  took=$(($(date +%s%3N) - t0))
  [ "$rc" = 143 ] || fail "$who: exit $rc after SIGTERM, expected 143"
  ((took < limit_ms)) || fail "$who took ${took}ms to stop without CLIENT UNBLOCK (limit ${limit_ms}ms)"
done

# Permission errors are exit 5 with one line naming the refusal, never "no" (1): a lock loop
# waiting on exit 1 stops, and tobus-bus and tobus-module do not report a data-dir failure.
denied() {  # denied LABEL CMD...: exit 5 and one line on stderr that says NOPERM or the script's refusal
  local label=$1 rc
  shift
  set +e
  timeout 20 "$@" </dev/null >"$T/out" 2>"$T/err"
  rc=$?
  set -e
  [ "$rc" = 5 ] || fail "$label: exit $rc, expected 5 (permission denied); stderr: $(cat "$T/err")"
  [ "$(wc -l <"$T/err")" = 1 ] || fail "$label: expected one line on stderr, got: $(cat "$T/err")"
  grep -Eq "NOPERM|can't run this command" "$T/err" || fail "$label: stderr does not name the refusal: $(cat "$T/err")"
  [ ! -s "$T/out" ] || fail "$label: something on stdout: $(cat "$T/out")"
}
export TOBUS_REDIS="redis://carol:s3cret@127.0.0.1:$port/0" TOBUS_NAMESPACE=acl3
denied "state get" tobus-state get lock owner
denied "state cas" tobus-state cas lock owner '' me
denied "state dead list" tobus-state dead list
denied "send" tobus-send --to up -m x
denied "bus" tobus-bus
denied "module" tobus-module up -- cat
denied "watch" tobus-watch --count 1
# The lock loop of tobus-state(1) ends at once instead of spinning.
set +e
timeout 20 bash -c 'until tobus-state cas lock owner "" me 2>/dev/null; do [ $? = 1 ] || exit 1; sleep 1; done'
rc=$?
set -e
[ "$rc" = 1 ] || fail "the lock loop of tobus-state(1) under a refused user: exit $rc, expected 1"
export TOBUS_REDIS="redis://dave:s3cret@127.0.0.1:$port/0"
denied "state set (HSET refused inside the script)" tobus-state set lock owner=me
echo "ok: ACL user"
