#!/usr/bin/env bash
# tobus benchmark: peak memory with one large payload (docs/performance.md, "Memory with large
# payloads"). Not a test: it prints figures and always exits 0 once it has measured.
#
# Starts a private redis-server on a unix socket in a temp dir, a tobus-bus and a
# `tobus-module up -- cat`, sends one payload of SIZE through them with `tobus-send --whole --wait`,
# checks the result has the payload's bytes, and prints the peak resident memory (VmHWM) of each
# program in MiB and as a multiple of the payload size. The bus and the module are measured after
# the send (from /proc/PID/status), tobus-send with /usr/bin/time when it is installed.

set -u -o pipefail
export LC_ALL=C

prog=big-payload.sh
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

usage() {
  cat <<EOF
Usage: bash bench/big-payload.sh [--size SIZE] [--build DIR] [--keep]

Sends one payload of SIZE (default 200M) through tobus-bus and \`tobus-module up -- cat\` with
tobus-send --whole --wait and prints each program's peak resident memory (VmHWM).

Options:
  --size SIZE   the payload size, as head -c takes it (200M, 64M, 1G ...); the programs get
                --max-payload SIZE + 1M
  --build DIR   build directory holding tools/ (default: $root/build)
  --keep        keep the temp dir (server log, program logs) and print its path
  -h, --help    this help
EOF
}

size=200M keep=0
build=$root/build
while (($#)); do
  case $1 in
    --size | --build)
      (($# >= 2)) || usage_error "option '$1' needs a value"
      [[ $1 == --size ]] && size=$2 || build=$2
      shift
      ;;
    --keep) keep=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done

send=$build/tools/tobus-send bus=$build/tools/tobus-bus module=$build/tools/tobus-module
require_programs "$send" "$bus" "$module" redis-server redis-cli head base64 cmp numfmt timeout
bytes=$(numfmt --from=iec "$size" 2>/dev/null) || bytes=
if [[ -z $bytes ]] || ((bytes < 1)); then
  echo "$prog: bad size '$size'" >&2
  exit 2
fi
max=$(((bytes >> 20) + 1))M

unset "${!TOBUS_@}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tobus-big.XXXXXX") || exit 1
sock=$tmp/redis.sock
export TOBUS_REDIS=unix://$sock TOBUS_NAMESPACE=big
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  if ((keep)); then echo "$prog: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
# KiB as "N MiB (X.X x payload)".
show() {
  awk -v k="$1" -v b="$bytes" 'BEGIN { printf "%6.0f MiB  %4.1f x payload\n", k / 1024, k * 1024 / b }'
}

redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --dir "$tmp" --save '' --appendonly no \
  --logfile "$tmp/redis.log" --daemonize no &
pids+=($!)
if ! wait_for 100 redis-cli -s "$sock" ping; then
  echo "$prog: redis-server did not start (see $tmp/redis.log)" >&2
  exit 1
fi

"$bus" 2>"$tmp/bus.log" &
bus_pid=$!
pids+=("$bus_pid")
"$module" up --max-payload "$max" -- cat 2>"$tmp/module.log" &
module_pid=$!
pids+=("$module_pid")

# Printable bytes (base64 of random data), so the payload looks like what people send.
head -c "$bytes" /dev/urandom | base64 -w0 | head -c "$bytes" >"$tmp/payload"
time_cmd=()
[[ -x /usr/bin/time ]] && time_cmd=(/usr/bin/time -f %M -o "$tmp/send.maxrss")
start=$EPOCHREALTIME
if ! timeout 600 "${time_cmd[@]}" "$send" --whole --to up --wait --timeout 10m --max-payload "$max" \
  <"$tmp/payload" >"$tmp/result" 2>"$tmp/send.log"; then
  echo "$prog: tobus-send failed:" >&2
  tail -n 5 "$tmp/send.log" >&2
  exit 1
fi
end=$EPOCHREALTIME
if ! cmp -s "$tmp/payload" "$tmp/result"; then
  echo "$prog: the result differs from the payload" >&2
  exit 1
fi

echo "payload $size ($bytes bytes), one hop (cat), $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')s end to end"
echo "peak resident memory (VmHWM):"
printf '  %-13s %s\n' tobus-bus "$(show "$(hwm_kib "$bus_pid")")"
printf '  %-13s %s\n' tobus-module "$(show "$(hwm_kib "$module_pid")")"
if [[ -s $tmp/send.maxrss ]]; then
  printf '  %-13s %s\n' tobus-send "$(show "$(tail -n 1 "$tmp/send.maxrss")")"
else
  printf '  %-13s %s\n' tobus-send "n/a (no /usr/bin/time)"
fi
