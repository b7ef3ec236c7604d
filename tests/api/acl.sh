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
echo "ok: ACL user"
