#!/usr/bin/env bash
# The public C++ API as a user gets it: install into a temporary prefix, build the example module
# and bus with `pkg-config tobus` only, and run them against a real redis-server.
set -euo pipefail
build=${TOBUS_BUILD_DIR:?} src=${TOBUS_SOURCE_DIR:?}
T=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  redis-cli -s "$T/redis.sock" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT

DESTDIR=$T/root meson install -C "$build" --no-rebuild --quiet >/dev/null
prefix=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
pc=$(find "$T/root" -name tobus.pc | head -1)
[ -n "$pc" ] || { echo "FAIL: tobus.pc not installed"; exit 1; }
[ -f "$T/root$prefix/include/tobus/tobus.hpp" ] || { echo "FAIL: headers not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$T/root
flags=$(pkg-config --cflags --libs tobus)
# A library built with the sanitizers needs their runtimes in whatever links it.
sanitize=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="b_sanitize"][0])')
[ "$sanitize" = none ] || flags="-fsanitize=$sanitize $flags"
# Only the public API is installed, and it stands on its own: every header compiles alone, and
# includes no header that was not installed.
inc=$T/root$prefix/include/tobus
for internal in state/state watch/watch process/coprocess bus/router process/signals util/text redis/redis process/runner process/service; do
  [ ! -e "$inc/$internal.hpp" ] || { echo "FAIL: internal header $internal.hpp installed"; exit 1; }
done
[ -f "$inc/core/message.hpp" ] || { echo "FAIL: tobus/core/message.hpp not installed"; exit 1; }
while IFS= read -r h; do
  rel=${h#"$inc"/}
  for dep in $(sed -n 's|^#include "tobus/\(.*\)"$|\1|p' "$h"); do
    [ -f "$inc/$dep" ] || { echo "FAIL: $rel includes tobus/$dep, which is not installed"; exit 1; }
  done
  # shellcheck disable=SC2086
  echo "#include <tobus/$rel>" | c++ -std=c++20 -Wall -Wextra -Werror -fsyntax-only -x c++ - $(pkg-config --cflags tobus) ||
    { echo "FAIL: tobus/$rel does not compile on its own"; exit 1; }
done < <(find "$inc" -name '*.hpp' | sort)
for ex in shout logging_bus; do
  # shellcheck disable=SC2086
  c++ -Wall -Wextra -Werror -o "$T/$ex" "$src/examples/$ex.cpp" $flags
done

redis-server --port 0 --unixsocket "$T/redis.sock" --save '' --daemonize no --dir "$T" >/dev/null &
pids+=($!)
for _ in $(seq 100); do redis-cli -s "$T/redis.sock" ping >/dev/null 2>&1 && break; sleep 0.05; done
export TOBUS_REDIS=unix://$T/redis.sock PATH=$build/tools:$PATH
"$T/logging_bus" >"$T/bus.out" 2>"$T/bus.err" &
pids+=($!)
"$T/shout" 2>"$T/shout.err" &
pids+=($!)

out=$(printf 'hello\nworld\n' | tobus-send --to shout --wait --timeout 20s)
[ "$out" = $'HELLO\nWORLD' ] || { echo "FAIL: expected HELLO WORLD, got: $out"; exit 1; }
# The receive hook reroutes 'old' to 'new' and refuses messages with a 'block' header.
out=$(tobus-send --to old,shout -m x --wait --timeout 3s 2>&1) && { echo "FAIL: no module 'new', yet: $out"; exit 1; }
echo "$out" | grep -q "hop 'new'" || { echo "FAIL: reroute not visible: $out"; exit 1; }
if tobus-send --to shout -H block=1 -m y --wait --timeout 20s 2>"$T/err"; then
  echo "FAIL: a blocked message passed"; exit 1
fi
grep -q "blocked by header" <(redis-cli -s "$T/redis.sock" --no-raw xrange tobus:dead - +) ||
  { echo "FAIL: no dead letter for the blocked message"; exit 1; }
grep -q '^recv ' "$T/bus.out" && grep -q '^send .* to tobus:in:shout' "$T/bus.out" ||
  { echo "FAIL: hooks did not run:"; cat "$T/bus.out"; exit 1; }
echo "ok: installed API builds with pkg-config and runs"
