#!/usr/bin/env bash
# tobus benchmark: what tobus reaches beside redis-benchmark, on the same server, in one run.
#
# Starts a private redis-server (on a unix socket, or loopback TCP, or TLS) in a temp dir, measures,
# prints one table, and
# stops everything it started. It reports: a missed target is a line in the table, not a failure.
# Every stage is bounded by a timeout, so the script always ends. See docs/performance.md.

# shellcheck disable=SC2317  # functions called from traps and wait_for look unreachable to it
set -u -o pipefail
export LC_ALL=C  # EPOCHREALTIME and awk must agree on the decimal point

prog=run.sh
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

usage() {
  cat <<EOF
Usage: bash bench/run.sh [--quick] [--aof] [--transport unix|tcp|tls] [--build DIR] [--keep]

Measures, beside redis-benchmark on one private redis-server:
  R     redis-benchmark -c 1 -P 64 XADD (the reference rate) and -c 1 -P 1 PING p50/p99
  1     tobus-send ingest rate (no bus running: only the send is timed)
  2, 3  end to end through 1 and 2 pass-through modules (tobus-send --wait)
  4     request/reply latency through 1 hop, one message at a time (p50, p99)
  5     one process per message (tobus-module -j 2 -- cat) beside raw fork+exec (xargs -P 2)
  6     CPU used by the idle bus and modules
  7, 8  co-processes through 1 hop: --lines with cat, --framed with examples/handlers/upper.py
  9     fan-out: tobus-send --publish to a type of 3 pass-through modules, in deliveries/s

Options:
  --quick       smaller message counts (about a third of the run time)
  --aof         run redis-server with appendonly yes, appendfsync everysec (the durable figure)
  --transport T how everything (redis-benchmark too) reaches the server: unix (a unix socket, the
                default), tcp (loopback), tls (loopback TLS, rediss://, a certificate made with
                openssl for this run): compare tcp and tls runs for the cost of TLS
  --build DIR   build directory holding tools/ (default: $root/build)
  --keep        keep the temp dir (server log, program logs) and print its path
  -h, --help    this help
EOF
}

quick=0 aof=0 keep=0 transport=unix
build=$root/build
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --aof) aof=1 ;;
    --keep) keep=1 ;;
    --build)
      (($# >= 2)) || usage_error "option '--build' needs a directory"
      build=$2
      shift
      ;;
    --build=*) build=${1#--build=} ;;
    --transport)
      (($# >= 2)) || usage_error "option '--transport' needs unix, tcp or tls"
      transport=$2
      shift
      ;;
    --transport=*) transport=${1#--transport=} ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done
case $transport in unix | tcp | tls) ;; *) usage_error "--transport is unix, tcp or tls, not '$transport'" ;; esac

# Message counts. --quick keeps every stage but shrinks it.
if ((quick)); then
  ingest_n=100000 e2e_n=50000 lat_n=500 handler_n=1000 co_n=50000 fan_n=20000
else
  ingest_n=500000 e2e_n=200000 lat_n=2000 handler_n=5000 co_n=200000 fan_n=100000
fi
lat_warmup=100
xadd_n=200000 ping_n=20000 reps=3  # redis-benchmark: the median of 3 runs is the reference
stage_timeout=120                  # seconds, for each tobus stage
jobs=2                             # handler parallelism, for tobus and for the raw reference
idle_window=5                      # seconds of idle CPU measurement

send=$build/tools/tobus-send
bus=$build/tools/tobus-bus
module=$build/tools/tobus-module

require_programs "$send" "$bus" "$module" redis-server redis-cli redis-benchmark timeout xargs seq awk \
  -- "build with 'meson compile -C build', install redis-server and redis-tools"
have_python=0
command -v python3 >/dev/null && have_python=1

# The programs must talk to our server only, whatever the caller's environment says.
unset "${!TOBUS_@}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tobus-bench.XXXXXX") || exit 1
# Run copies, so a rebuild during the run cannot swap a program under us.
if ! mkdir "$tmp/bin" || ! cp "$send" "$bus" "$module" "$tmp/bin/"; then
  rm -rf "$tmp"
  exit 1
fi
send=$tmp/bin/tobus-send bus=$tmp/bin/tobus-bus module=$tmp/bin/tobus-module
sock=$tmp/redis.sock
# What redis-cli and redis-benchmark are given to reach the server, and the programs' URL.
case $transport in
  unix)
    url=unix://$sock
    client_args=(-s "$sock")
    ;;
  tcp | tls)
    port=$(free_port) || { rm -rf "$tmp"; exit 1; }
    url=redis://127.0.0.1:$port
    client_args=(-h 127.0.0.1 -p "$port")
    ;;
esac
if [[ $transport == tls ]]; then
  # A CA and a server certificate for 127.0.0.1, for this run only.
  if ! { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench-ca \
           -keyout "$tmp/ca.key" -out "$tmp/ca.pem" &&
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
           -keyout "$tmp/server.key" -out "$tmp/server.csr" &&
         printf 'subjectAltName=IP:127.0.0.1\n' >"$tmp/server.ext" &&
         openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
           -days 1 -extfile "$tmp/server.ext" -out "$tmp/server.pem"; } >/dev/null 2>&1; then
    echo "$prog: error: openssl could not make the certificates for --transport tls" >&2
    rm -rf "$tmp"
    exit 1
  fi
  url=rediss://127.0.0.1:$port
  client_args+=(--tls --cacert "$tmp/ca.pem")
  export TOBUS_TLS_CA=$tmp/ca.pem
fi

# --- helpers -----------------------------------------------------------------------------------
rcli() { redis-cli "${client_args[@]}" "$@"; }

# stamp VAR: VAR = seconds since the epoch, to the microsecond, without a fork (bash 5).
stamp() { printf -v "$1" '%s' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print 0 }'; }
# The median of the positive numbers among the arguments (0 when there are none).
median() {
  printf '%s\n' "$@" | awk '$1 + 0 > 0' | sort -g |
    awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : 0 }'
}

ticks_per_s=$(getconf CLK_TCK 2>/dev/null || echo 100)
# CPU time (user + system) a process used so far, in clock ticks.
cpu_ticks() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  stat=${stat##*) }  # the fields after "(comm) "
  awk '{ print $12 + $13 }' <<<"$stat"
}
cpu_s() { awk -v t="$1" -v h="$ticks_per_s" 'BEGIN { printf "%.2f", t / h }'; }

log_tail() {
  local f
  for f in "$@"; do
    [[ -s $f ]] || continue
    echo "--- last lines of ${f##*/}:" >&2
    tail -n 5 "$f" >&2
  done
}

# Whether process $1 runs: exists and is not a zombie (the processes the measuring shell started
# are reparented when it ends, and their zombies may wait a while for whoever reaps them).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

stop_pids() {  # SIGTERM, up to 5s to go, then SIGKILL
  local pid any i
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null; done
  for ((i = 0; i < 50; i++)); do
    any=0
    for pid in "$@"; do alive "$pid" && any=1; done
    ((any)) || break
    sleep 0.1
  done
  for pid in "$@"; do alive "$pid" && kill -KILL "$pid" 2>/dev/null; done
}

# Every process under $1, each before its own children.
descendants() {
  local c
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null || ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$c"
    descendants "$c"
  done
}

# --- the measurements --------------------------------------------------------------------------
# measure runs in the background while this shell waits for it: a shell runs a trap only between
# foreground commands, and not at all on SIGINT when the foreground program handles SIGINT itself
# (as the tobus programs and redis-benchmark do). `wait` returns at once on a signal, so Ctrl-C or
# SIGTERM ends the run at once. It records the processes it starts in $tmp/*.pid for cleanup.
measure() {
  local server_args persistence redis_pid redis_version cpu_model commit load_start load_end
  local bus_pid p_pid q_pid setup_ok i line

  server_args=(--dir "$tmp" --save '' --logfile "$tmp/redis.log" --daemonize no)
  case $transport in
    unix) server_args+=(--port 0 --unixsocket "$sock" --unixsocketperm 700) ;;
    tcp) server_args+=(--port "$port" --bind 127.0.0.1) ;;
    tls) server_args+=(--port 0 --bind 127.0.0.1 --tls-port "$port" --tls-cert-file "$tmp/server.pem"
                       --tls-key-file "$tmp/server.key" --tls-ca-cert-file "$tmp/ca.pem" --tls-auth-clients no) ;;
  esac
  if ((aof)); then
    server_args+=(--appendonly yes --appendfsync everysec)
    persistence="appendonly yes, appendfsync everysec"
  else
    server_args+=(--appendonly no)
    persistence="no persistence (--save '' --appendonly no)"
  fi
  redis-server "${server_args[@]}" &
  redis_pid=$!
  echo "$redis_pid" >"$tmp/redis.pid"
  server_up() { [[ $(rcli PING 2>/dev/null) == PONG ]]; }
  if ! wait_for 100 server_up; then
    echo "$prog: error: redis-server did not answer at '$url' within 10s" >&2
    log_tail "$tmp/redis.log"
    return 1
  fi

  cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
  redis_version=$(rcli INFO server | awk -F: '/^redis_version/ { sub(/\r/, "", $2); print $2 }')
  commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [[ $commit != unknown ]] && ! git -C "$root" diff --quiet HEAD -- lib tools 2>/dev/null; then
    commit+=" with uncommitted changes in lib/ or tools/"
  fi
  load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
  echo "tobus benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')$( ((quick)) && echo ', --quick')"
  echo "machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}; Linux $(uname -r)"
  case $transport in
    unix) echo "redis-server $redis_version on a unix socket, $persistence" ;;
    tcp) echo "redis-server $redis_version on loopback TCP, $persistence" ;;
    tls) echo "redis-server $redis_version on loopback TLS ($url; redis-benchmark --tls too), $persistence" ;;
  esac
  echo "tobus: $("$send" --version 2>/dev/null) ($build); commit $commit"
  echo "load average at start: $load_start"
  echo

  # --- R: raw Redis. CSV columns: test, rps, avg, min, p50, p95, p99, max (ms).
  bench_csv() { redis-benchmark "${client_args[@]}" --csv "$@" 2>/dev/null | tail -n 1 | tr -d '"'; }
  local xadd_runs=() ping_p50s=() ping_p99s=() R ping_p50 ping_p99
  for ((i = 0; i < reps; i++)); do
    line=$(bench_csv -c 1 -P 64 -n "$xadd_n" XADD bench '*' f v)
    xadd_runs+=("$(awk -F, '{ printf "%.0f", $2 }' <<<"$line")")
    line=$(bench_csv -c 1 -P 1 -n "$ping_n" PING)
    ping_p50s+=("$(awk -F, '{ print $5 }' <<<"$line")")
    ping_p99s+=("$(awk -F, '{ print $7 }' <<<"$line")")
  done
  R=$(median "${xadd_runs[@]}")
  ping_p50=$(median "${ping_p50s[@]}")
  ping_p99=$(median "${ping_p99s[@]}")
  rcli FLUSHALL >/dev/null
  if ! awk -v r="$R" -v p="$ping_p50" 'BEGIN { exit !(r > 0 && p > 0) }'; then
    echo "$prog: error: redis-benchmark gave no figures (XADD: ${xadd_runs[*]}; PING p50: ${ping_p50s[*]})" >&2
    return 1
  fi

  # run_stage N ARGS...: seq N | tobus-send ARGS | wc -l, bounded by the stage timeout;
  # sets stage_s, stage_count (lines out) and stage_rc (tobus-send's exit code).
  local stage_s stage_count stage_rc
  run_stage() {
    local n=$1 t0 t1 out
    shift
    stamp t0
    out=$(seq "$n" | timeout --foreground -k 5 "$stage_timeout" "$send" -r "$url" "$@" 2>>"$tmp/send.log" |
            wc -l; echo "${PIPESTATUS[1]}")
    stamp t1
    stage_s=$(elapsed "$t0" "$t1")
    stage_count=$(sed -n 1p <<<"$out" | tr -d ' ')
    stage_rc=$(sed -n 2p <<<"$out")
  }

  # --- 1: ingest. No bus, no module: entries pile up on the bus stream, only the send is timed.
  local ingest_rc ingest_s ingest_len ingest_rate ingest_valid=0
  run_stage "$ingest_n" --to sink
  ingest_rc=$stage_rc ingest_s=$stage_s
  ingest_len=$(rcli XLEN tobus:bus)
  ingest_rate=$(rate "$ingest_n" "$ingest_s")
  [[ $ingest_rc == 0 && $ingest_len == "$ingest_n" ]] && ingest_valid=1
  rcli FLUSHALL >/dev/null

  # --- the bus and the pass-through modules
  start() {  # start LOGNAME PROGRAM ARGS...: in the background, stderr to a log; sets started_pid
    local name=$1
    shift
    "$@" >/dev/null 2>"$tmp/$name.log" &
    started_pid=$!
    echo "$started_pid" >>"$tmp/tobus.pid"
  }
  bus_ready() { rcli XINFO GROUPS tobus:bus 2>/dev/null | grep -qx bus; }
  module_ready() { [[ $(rcli HLEN "tobus:module:$1" 2>/dev/null) -ge 1 ]]; }
  local started_pid
  start bus "$bus" -r "$url"
  bus_pid=$started_pid
  start p "$module" -r "$url" p
  p_pid=$started_pid
  start q "$module" -r "$url" q
  q_pid=$started_pid
  setup_ok=1
  if ! wait_for 100 bus_ready || ! wait_for 100 module_ready p || ! wait_for 100 module_ready q; then
    echo "$prog: warning: the bus or a module did not attach within 10s; their stages are invalid" >&2
    log_tail "$tmp/bus.log" "$tmp/p.log" "$tmp/q.log"
    setup_ok=0
  fi

  # Redis calls since the last CONFIG RESETSTAT: "xadd 800000, xreadgroup 2382, ...".
  redis_calls() {
    rcli INFO commandstats | tr -d '\r' | awk -F'[_:=,]' '
      /^cmdstat_[a-z]+:/ { calls[$2] = $4 }
      END {
        n = split("xadd xreadgroup xack xread pexpire", names, " ")
        for (i = 1; i <= n; i++)
          if (names[i] in calls) { out = out sep names[i] " " calls[names[i]]; sep = ", " }
        print out
      }'
  }
  # e2e ROUTE: N messages end to end; sets e2e_rate, e2e_valid and e2e_detail.
  local e2e_rate e2e_valid e2e_detail
  e2e() {
    local route=$1 r0 b0 m0 cpu
    e2e_rate=0 e2e_valid=0 e2e_detail="not run (the bus or a module did not attach)"
    ((setup_ok)) || return 0
    rcli CONFIG RESETSTAT >/dev/null
    r0=$(cpu_ticks "$redis_pid") b0=$(cpu_ticks "$bus_pid")
    m0=$(($(cpu_ticks "$p_pid") + $(cpu_ticks "$q_pid")))
    run_stage "$e2e_n" --to "$route" --wait --timeout "$((stage_timeout - 10))s"
    cpu="redis $(cpu_s $(($(cpu_ticks "$redis_pid") - r0))) s, bus $(cpu_s $(($(cpu_ticks "$bus_pid") - b0))) s"
    cpu+=", modules $(cpu_s $(($(cpu_ticks "$p_pid") + $(cpu_ticks "$q_pid") - m0))) s"
    e2e_rate=$(rate "$e2e_n" "$stage_s")
    [[ $stage_rc == 0 && $stage_count == "$e2e_n" ]] && e2e_valid=1
    e2e_detail="${stage_s}s, $stage_count of $e2e_n lines, tobus-send rc $stage_rc"
    e2e_detail+=$'\n'"          CPU: $cpu"
    e2e_detail+=$'\n'"          Redis calls: $(redis_calls)"
  }
  # --- 2, 3: end to end through 1 and 2 hops
  local hop1_rate hop1_valid hop1_detail hop2_rate hop2_valid hop2_detail
  e2e p
  hop1_rate=$e2e_rate hop1_valid=$e2e_valid hop1_detail=$e2e_detail
  e2e p,q
  hop2_rate=$e2e_rate hop2_valid=$e2e_valid hop2_detail=$e2e_detail

  # --- 6: idle. With nothing to do, the bus and the modules should sleep in blocking reads.
  local i0 idle_ticks idle_ms idle_alive=1 pid
  sleep 1
  i0=$(($(cpu_ticks "$bus_pid") + $(cpu_ticks "$p_pid") + $(cpu_ticks "$q_pid")))
  sleep "$idle_window"
  idle_ticks=$(($(cpu_ticks "$bus_pid") + $(cpu_ticks "$p_pid") + $(cpu_ticks "$q_pid") - i0))
  idle_ms=$(awk -v t="$idle_ticks" -v h="$ticks_per_s" 'BEGIN { printf "%.0f", t * 1000 / h }')
  for pid in "$bus_pid" "$p_pid" "$q_pid"; do alive "$pid" || idle_alive=0; done

  # --- 4: request/reply latency, one message at a time through one long-lived tobus-send --wait
  local lat_n_done=0 lat_p50=- lat_p99=- lat_mean=- lat_max=- lat_note='' lat_valid=0
  if ((!have_python)); then
    lat_note="not measured: python3 not found"
  elif ((!setup_ok)); then
    lat_note="not measured: the bus or module p did not attach"
  else
    read -r lat_n_done lat_p50 lat_p99 lat_mean lat_max lat_note < <(
      timeout -k 5 90 python3 "$root/bench/latency.py" --send "$send" --redis "$url" --to p \
        -n "$lat_n" --warmup "$lat_warmup" --each 5 --budget 60 2>>"$tmp/latency.log" ||
        echo "0 - - - - latency.py failed or timed out")
    [[ ${lat_n_done:-} =~ ^[0-9]+$ ]] || lat_n_done=0
  fi
  ((lat_n_done > 0)) && lat_valid=1

  # --- 5: one process per message, beside raw fork+exec at the same parallelism. The raw
  # reference runs in two halves, before and after, so both see about the same background load.
  raw_run() {  # raw_run VAR N: VAR = seconds for N runs of cat, $jobs at a time
    local t0 t1
    stamp t0
    seq "$2" | timeout -k 5 "$stage_timeout" xargs -P "$jobs" -I{} cat /dev/null
    stamp t1
    printf -v "$1" '%s' "$(elapsed "$t0" "$t1")"
  }
  local h_valid=0 h_rate=0 raw_rate=0 raw_a=0 raw_b=0 half
  local h_detail="not run (module h did not attach)"
  start h "$module" -r "$url" h -j "$jobs" -- cat
  if ((setup_ok)) && wait_for 100 module_ready h; then
    half=$((handler_n / 2))
    raw_run raw_a "$half"
    run_stage "$handler_n" --to h --wait --timeout "$((stage_timeout - 10))s"
    raw_run raw_b "$((handler_n - half))"
    h_rate=$(rate "$handler_n" "$stage_s")
    raw_rate=$(rate "$handler_n" "$(awk -v a="$raw_a" -v b="$raw_b" 'BEGIN { print a + b }')")
    [[ $stage_rc == 0 && $stage_count == "$handler_n" ]] && h_valid=1
    h_detail="${stage_s}s, $stage_count of $handler_n lines, tobus-send rc $stage_rc; raw halves ${raw_a}s + ${raw_b}s"
  elif ((setup_ok)); then
    echo "$prog: warning: module h did not attach within 10s; the handler stage is invalid" >&2
    log_tail "$tmp/h.log"
  fi
  # --- 7, 8: co-processes, one process for all messages, through one hop like stage 2.
  # co ROUTE-MODULE N: sets co_rate, co_valid, co_detail.
  local co_rate co_valid co_detail
  co() {
    co_rate=0 co_valid=0 co_detail="not run (module $1 did not attach)"
    ((setup_ok)) && wait_for 100 module_ready "$1" || return 0
    run_stage "$2" --to "$1" --wait --timeout "$((stage_timeout - 10))s"
    co_rate=$(rate "$2" "$stage_s")
    [[ $stage_rc == 0 && $stage_count == "$2" ]] && co_valid=1
    co_detail="${stage_s}s, $stage_count of $2 lines, tobus-send rc $stage_rc"
  }
  local lines_rate lines_valid lines_detail framed_rate framed_valid framed_detail
  start lines "$module" -r "$url" lines --lines -- cat
  co lines "$co_n"
  lines_rate=$co_rate lines_valid=$co_valid lines_detail=$co_detail
  framed_rate=0 framed_valid=0 framed_detail="not measured: python3 not found"
  if ((have_python)); then
    start framed "$module" -r "$url" framed --framed -- python3 "$root/examples/handlers/upper.py"
    co framed "$co_n"
    framed_rate=$co_rate framed_valid=$co_valid framed_detail=$co_detail
  fi

  # --- 9: fan-out to 3 pass-through modules of one type; each message is 3 deliveries, and
  # tobus-send --wait prints every copy's result.
  local fan_rate=0 fan_valid=0 fan_detail="not run (the fan-out modules did not attach)" fan_n_copies
  fan_n_copies=$((fan_n * 3))
  for i in 1 2 3; do start "fan$i" "$module" -r "$url" "fan$i" --type fan; done
  if ((setup_ok)) && wait_for 100 module_ready fan1 && wait_for 100 module_ready fan2 &&
     wait_for 100 module_ready fan3; then
    run_stage "$fan_n" --publish fan --wait --timeout "$((stage_timeout - 10))s"
    fan_rate=$(rate "$fan_n_copies" "$stage_s")
    [[ $stage_rc == 0 && $stage_count == "$fan_n_copies" ]] && fan_valid=1
    fan_detail="${stage_s}s, $stage_count of $fan_n_copies lines ($fan_n messages x 3), tobus-send rc $stage_rc"
  fi
  load_end=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)

  # --- the table
  pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "-" }'; }
  times_of() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "-") printf "%.1fx", a / b; else print "-" }'; }
  ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "-") print a / b; else print 0 }'; }
  verdict() {  # verdict VALID VALUE OP LIMIT
    ((${1})) || { echo "INVALID"; return; }
    awk -v v="$2" -v op="$3" -v l="$4" 'BEGIN { ok = (op == ">=") ? (v >= l) : (v <= l); print ok ? "met" : "MISSED" }'
  }
  thousands() {  # 1234567 -> 1,234,567
    awk -v n="$1" 'BEGIN { s = sprintf("%.0f", n); out = ""
      while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
      print s out }'
  }
  row() {
    local line
    printf -v line '%-44s %18s %16s %12s  %s' "$@"
    echo "${line%"${line##*[! ]}"}"  # without trailing blanks
  }

  row "figure" "result" "ratio" "target" "verdict"
  row "--------------------------------------------" "------------------" "----------------" "------------" "-------"
  row "R  redis-benchmark -c1 -P64 XADD" "$(thousands "$R") req/s" "reference" "" ""
  row "   redis-benchmark -c1 -P1 PING p50 / p99" "$ping_p50 / $ping_p99 ms" "reference" "" ""
  row "1  tobus-send ingest, $(thousands "$ingest_n") msgs" "$(thousands "$ingest_rate") msg/s" \
    "$(pct "$ingest_rate" "$R") of R" ">= 50% of R" \
    "$(verdict "$ingest_valid" "$(ratio_of "$ingest_rate" "$R")" ">=" 0.50)"
  row "2  end to end, 1 hop, $(thousands "$e2e_n") msgs" "$(thousands "$hop1_rate") msg/s" \
    "$(pct "$hop1_rate" "$R") of R" ">= 10% of R" \
    "$(verdict "$hop1_valid" "$(ratio_of "$hop1_rate" "$R")" ">=" 0.10)"
  row "3  end to end, 2 hops, $(thousands "$e2e_n") msgs" "$(thousands "$hop2_rate") msg/s" \
    "$(pct "$hop2_rate" "$R") of R" ">= 8% of R" \
    "$(verdict "$hop2_valid" "$(ratio_of "$hop2_rate" "$R")" ">=" 0.08)"
  row "4  request/reply, 1 hop, p50 ($lat_n_done msgs)" "$lat_p50 ms" \
    "$(times_of "$lat_p50" "$ping_p50") PING p50" "<= 5x" \
    "$(verdict "$lat_valid" "$(ratio_of "$lat_p50" "$ping_p50")" "<=" 5)"
  row "   request/reply, 1 hop, p99" "$lat_p99 ms" \
    "$(times_of "$lat_p99" "$ping_p50") PING p50" "<= 30x" \
    "$(verdict "$lat_valid" "$(ratio_of "$lat_p99" "$ping_p50")" "<=" 30)"
  row "5  handlers, -j $jobs -- cat, $(thousands "$handler_n") msgs" "$(thousands "$h_rate") msg/s" \
    "$(pct "$h_rate" "$raw_rate") of raw" ">= 90% raw" \
    "$(verdict "$h_valid" "$(ratio_of "$h_rate" "$raw_rate")" ">=" 0.90)"
  row "   raw fork+exec, xargs -P $jobs cat /dev/null" "$(thousands "$raw_rate") /s" "reference" "" ""
  row "6  idle CPU, bus + 2 modules, ${idle_window}s" "$idle_ms ms" "" "about 0" \
    "$(verdict "$idle_alive" "$idle_ms" "<=" 50)"
  row "7  --lines co-process (cat), $(thousands "$co_n") msgs" "$(thousands "$lines_rate") msg/s" \
    "$(times_of "$lines_rate" "$h_rate") stage 5" ">= 10x" \
    "$(verdict "$((lines_valid && h_valid))" "$(ratio_of "$lines_rate" "$h_rate")" ">=" 10)"
  row "   the same, beside pass-through (stage 2)" "" \
    "$(pct "$lines_rate" "$hop1_rate") of stage 2" ">= 70%" \
    "$(verdict "$((lines_valid && hop1_valid))" "$(ratio_of "$lines_rate" "$hop1_rate")" ">=" 0.70)"
  row "8  --framed co-process (upper.py), $(thousands "$co_n")" "$(thousands "$framed_rate") msg/s" \
    "$(pct "$framed_rate" "$hop1_rate") of stage 2" ">= 70%" \
    "$(verdict "$((framed_valid && hop1_valid))" "$(ratio_of "$framed_rate" "$hop1_rate")" ">=" 0.70)"
  row "9  fan-out to 3, $(thousands "$fan_n") msgs" "$(thousands "$fan_rate") deliv/s" \
    "$(pct "$fan_rate" "$R") of R" ">= 50% of R" \
    "$(verdict "$fan_valid" "$(ratio_of "$fan_rate" "$R")" ">=" 0.50)"
  echo
  echo "details:"
  echo "  redis-benchmark XADD (req/s): ${xadd_runs[*]}; PING p50: ${ping_p50s[*]} ms; p99: ${ping_p99s[*]} ms"
  echo "  ingest: ${ingest_s}s, tobus-send rc $ingest_rc, ${ingest_len:-?} entries on the bus stream"
  echo "  1 hop:  $hop1_detail"
  echo "  2 hops: $hop2_detail"
  if ((lat_valid)); then
    echo "  request/reply: mean $lat_mean ms, max $lat_max ms over $lat_n_done messages ($lat_warmup untimed first)"
  else
    echo "  request/reply: ${lat_note:-not measured}"
  fi
  echo "  handlers: $h_detail"
  echo "  --lines: $lines_detail"
  echo "  --framed: $framed_detail"
  echo "  fan-out: $fan_detail"
  echo "  load average: start $load_start, end $load_end"
  local name f
  for name in bus p q h lines framed fan1 fan2 fan3 send latency; do
    f=$tmp/$name.log
    [[ -s $f ]] || continue
    echo "  $name wrote $(wc -l <"$f") line(s) on stderr, last: $(tail -n 1 "$f" | cut -c1-160)"
  done
}

cleanup() {
  trap - EXIT INT TERM
  local tree=() rest=() tobus=() redis='' pid
  # Freeze the measuring shell, so it starts nothing more, and take the tree of what it started.
  [[ -n ${measure_pid:-} ]] && kill -STOP "$measure_pid" 2>/dev/null
  mapfile -t tree < <(descendants $$)
  wait "$!" 2>/dev/null  # the lister itself, so it is gone before the checks below
  [[ -n ${measure_pid:-} ]] && kill -KILL "$measure_pid" 2>/dev/null
  [[ -s $tmp/tobus.pid ]] && mapfile -t tobus <"$tmp/tobus.pid"
  [[ -s $tmp/redis.pid ]] && redis=$(<"$tmp/redis.pid")
  # The programs first, as they would stop on SIGTERM; then what a stage left running (tobus-send,
  # seq, xargs, python3); the server last.
  ((${#tobus[@]})) && stop_pids "${tobus[@]}"
  for pid in "${tree[@]}"; do
    [[ $pid != "${measure_pid:-}" && $pid != "$redis" ]] && alive "$pid" && rest+=("$pid")
  done
  ((${#rest[@]})) && stop_pids "${rest[@]}"
  [[ -n $redis ]] && stop_pids "$redis"
  wait 2>/dev/null
  if ((keep)); then
    echo "kept: $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

measure &
measure_pid=$!
wait "$measure_pid"
status=$?
measure_pid=
exit "$status"
