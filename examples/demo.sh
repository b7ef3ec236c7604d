#!/usr/bin/env bash
# The quick start's live demo: the bus on the embedded default, two modules, a pipeline through
# them. Usage: examples/demo.sh [DIR-WITH-THE-PROGRAMS]   (default: build/tools, then PATH)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build/tools}
[ -x "$bin/tobus-bus" ] && PATH=$bin:$PATH
unset TOBUS_REDIS

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

say() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }

say "tobus-bus -v &"
tobus-bus -v &
pids+=($!)
# Wait until the bus's Redis answers: its embedded socket, or a Redis on the default port.
sock=${TOBUS_SOCKET:-${XDG_RUNTIME_DIR:-/tmp/tobus-$(id -u)}/tobus/redis.sock}
[ -n "${XDG_RUNTIME_DIR:-}" ] || sock=${TOBUS_SOCKET:-/tmp/tobus-$(id -u)/redis.sock}
for _ in $(seq 100); do
  { [ -S "$sock" ] && redis-cli -s "$sock" ping; } >/dev/null 2>&1 && break
  redis-cli -p 6379 ping >/dev/null 2>&1 && break
  sleep 0.1
done

say "tobus-module upper -- tr a-z A-Z &"
tobus-module upper -- tr a-z A-Z &
pids+=($!)
say "tobus-module rev -j 4 -- rev &"
tobus-module rev -j 4 -- rev &
pids+=($!)

say "printf 'abc\\ndef\\n' | tobus-send --to upper,rev --wait"
printf 'abc\ndef\n' | tobus-send --to upper,rev --wait

say "seq 5 | tobus-send --to upper,rev --wait | paste -sd' '"
seq 5 | tobus-send --to upper,rev --wait | paste -sd' '

say "time (seq 2000 | tobus-send --to rev --wait | wc -l)    # a process per message"
time (seq 2000 | tobus-send --to rev --wait | wc -l)

if [ -t 0 ]; then
  printf '\nThe bus runs on the embedded default. In another terminal, try:\n' >&2
  printf "  echo hello | %s/tobus-send --to upper,rev --wait\n" "$bin" >&2
  printf 'Press Ctrl-C to stop the bus (its redis-server stops with it).\n' >&2
  wait "${pids[0]}" || true
fi
