# shellcheck shell=bash
# Harness for the end-to-end tests: sourced by every tests/e2e/*.sh.
#
# Each test gets a temp dir $T, a private redis-server on a unix socket in it, TOBUS_REDIS and
# TOBUS_NAMESPACE pointing there, and a trap that on any exit stops every process the test started
# (tracked pids, then anything still carrying this test's environment marker, which catches
# handlers running in their own process groups and servers a bus started) and removes $T.
#
# Exit codes follow meson: 0 pass, 1 fail, 77 skip.
#
# Variables a test may set before sourcing:
#   E2E_NO_REDIS=1   do not start the private redis-server (TOBUS_REDIS stays unset)
#   E2E_SETUP_SKIPS=1  skip (77) instead of failing when the set-up itself is broken
# Environment knobs:
#   TOBUS_BIN_DIR    where tobus-* live (meson sets it; default: ../../build/tools)
#   TOBUS_E2E_SCALE  multiply every bounded wait by this (slow machines, sanitizers; default 1)
#   TOBUS_E2E_KEEP=1 keep $T after the test (its path is printed)

set -u
# `printf … | run NAME cmd` must set RC in this shell: the last part of a pipeline runs here.
shopt -s lastpipe

E2E_NAME=$(basename "${0%.sh}")
E2E_SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_SCALE=${TOBUS_E2E_SCALE:-1}
E2E_PIDS=()
E2E_LAST_PID=
E2E_REDIS_PID=
RC=
RUN_OUT=/dev/null
RUN_ERR=/dev/null

# --- reporting ---------------------------------------------------------------------------------

note() { printf '%s: %s\n' "$E2E_NAME" "$*" >&2; }

# Dumps the tail of every log the test wrote, so a failure explains itself in meson's testlog.
e2e_dump_logs() {
    local f
    [[ -n ${T:-} && -d $T ]] || return 0
    for f in "$T"/*.log "$T"/*.err; do
        [[ -s $f ]] || continue
        # The private server's log is only news when the server died.
        [[ $f == "$T/redis.log" && -n $E2E_REDIS_PID ]] && alive "$E2E_REDIS_PID" && continue
        printf -- '--- %s (last 30 lines)\n' "${f#"$T"/}" >&2
        tail -n 30 "$f" | cut -c1-400 >&2
    done
}

fail() {
    printf 'FAIL: %s: %s\n' "$E2E_NAME" "$*" >&2
    [[ ${E2E_IN_SOFT:-} == 1 ]] || e2e_dump_logs
    exit 1
}

skip() {
    printf 'SKIP: %s: %s\n' "$E2E_NAME" "$*" >&2
    exit 77
}

pass() {
    printf 'PASS: %s\n' "$E2E_NAME" >&2
    exit 0
}

# Shows a file's bytes visibly (NUL, newline, invalid UTF-8) for failure messages.
show_file() { od -An -c "$1" | tr -s ' \n' ' ' | head -c 600; }

# Soft failures, for tests that are lists of independent checks: `soft CMD…` runs CMD (a function
# made of assertions) in a subshell and records its failure instead of stopping; `finish` then fails
# if any was recorded, else passes.
E2E_SOFT_FAILS=0
soft() {
    (E2E_IN_SOFT=1 && "$@") || E2E_SOFT_FAILS=$((E2E_SOFT_FAILS + 1))
}
finish() {
    ((E2E_SOFT_FAILS == 0)) || fail "$E2E_SOFT_FAILS check(s) failed, see above"
    pass
}

assert_eq() {
    local expected=$1 actual=$2 msg=$3
    [[ $expected == "$actual" ]] ||
        fail "$msg: expected '$expected', got '$actual'"
}

# assert_match REGEX TEXT MSG (extended regex, grep -E, against any line of TEXT)
assert_match() {
    local re=$1 text=$2 msg=$3
    grep -Eq -- "$re" <<<"$text" || fail "$msg: /$re/ not found in: $text"
}

assert_contains() {
    local needle=$1 text=$2 msg=$3
    grep -Fq -- "$needle" <<<"$text" || fail "$msg: '$needle' not found in: $text"
}

# assert_rc EXPECTED MSG: the exit code of the last `run`.
assert_rc() {
    local expected=$1 msg=$2
    if [[ $RC != "$expected" ]]; then
        local hint=
        [[ $RC == 137 ]] && hint=" (killed by the test's guard timeout: the command hung)"
        fail "$msg: exit code $RC$hint, expected $expected; stderr: $(head -c 2000 "$RUN_ERR" 2>/dev/null)"
    fi
}

# assert_bytes FILE PRINTF-FORMAT MSG: FILE holds exactly the bytes printf makes of the format.
assert_bytes() {
    local file=$1 expected_fmt=$2 msg=$3
    # shellcheck disable=SC2059
    printf "$expected_fmt" >"$T/expected.bin"
    cmp -s "$T/expected.bin" "$file" ||
        fail "$msg: expected bytes [$(show_file "$T/expected.bin")], got [$(show_file "$file")]"
}

assert_same_file() {
    local expected=$1 actual=$2 msg=$3
    cmp -s "$expected" "$actual" ||
        fail "$msg: $(cmp "$expected" "$actual" 2>&1 | head -1) (sizes $(stat -c %s "$expected") vs $(stat -c %s "$actual"))"
}

assert_empty_file() {
    local file=$1 msg=$2
    [[ ! -s $file ]] || fail "$msg: expected nothing, got: $(head -c 2000 "$file")"
}

# --- running things ----------------------------------------------------------------------------

# Seconds, scaled for slow machines.
secs() { awk -v s="$1" -v k="$E2E_SCALE" 'BEGIN { printf "%d", s * k + 0.999 }'; }

# run NAME CMD...: runs CMD (stdin inherited) with a guard timeout (a hang ends as 137, never as a
# plausible 124), stdout to $T/NAME.out, stderr to $T/NAME.err; sets RC, RUN_OUT, RUN_ERR.
E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-180}
run() {
    local name=$1
    shift
    RUN_OUT=$T/$name.out
    RUN_ERR=$T/$name.err
    # --foreground: stay in the test's process group, which meson kills on its own timeout.
    timeout --foreground -s KILL "$(secs "$E2E_CMD_TIMEOUT")" "$@" >"$RUN_OUT" 2>"$RUN_ERR"
    RC=$?
}

# wait_for [-t SECONDS] CMD...: polls CMD (quietly) until it succeeds; returns 1 on timeout.
wait_for() {
    local limit=60
    if [[ ${1:-} == -t ]]; then
        limit=$2
        shift 2
    fi
    local deadline=$((SECONDS + $(secs "$limit")))
    while :; do
        "$@" >/dev/null 2>&1 && return 0
        ((SECONDS >= deadline)) && return 1
        sleep 0.1
    done
}

not() { ! "$@"; }

# alive PID: true while PID runs (a zombie counts as gone).
alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

# start_bg NAME CMD...: starts CMD in the background, stderr to $T/NAME.log, stdout to
# $T/NAME.stdout; tracks the pid and leaves it in E2E_LAST_PID.
start_bg() {
    local name=$1
    shift
    "$@" >>"$T/$name.stdout" 2>>"$T/$name.log" &
    E2E_LAST_PID=$!
    E2E_PIDS+=("$E2E_LAST_PID")
}

E2E_BUS_N=0
# start_bus [ARGS...]: a tobus-bus in the background (pid in E2E_LAST_PID, log $T/bus.N.log).
start_bus() {
    E2E_BUS_N=$((E2E_BUS_N + 1))
    start_bg "bus.$E2E_BUS_N" tobus-bus "$@"
}

declare -A E2E_MODULE_N=()
# start_module NAME [ARGS...] [-- COMMAND...]: a tobus-module in the background
# (pid in E2E_LAST_PID, log $T/module.NAME.N.log).
start_module() {
    local name=$1 n
    n=$((${E2E_MODULE_N[$name]:-0} + 1))
    E2E_MODULE_N[$name]=$n
    start_bg "module.$name.$n" tobus-module "$@"
}

# stop_proc PID [SIGNAL]: signals PID (default TERM) and waits for it; sets RC to its exit code.
stop_proc() {
    local pid=$1 sig=${2:-TERM}
    kill -s "$sig" "$pid" 2>/dev/null
    wait_proc "$pid"
}

# wait_proc PID: waits (bounded) for a background child; sets RC (137 if it had to be killed).
wait_proc() {
    local pid=$1
    if ! wait_for -t 60 not alive "$pid"; then
        note "pid $pid did not exit within $(secs 60)s, killing it"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    RC=$?
}

# --- redis helpers -----------------------------------------------------------------------------

rcli() { redis-cli -s "$T/redis.sock" "$@"; }

# Lua helpers: exact field values, no parsing of redis-cli's line output.
E2E_LUA_FIELD='
local entries = redis.call("XRANGE", KEYS[1], "-", "+")
local out = {}
for _, e in ipairs(entries) do
  local f = e[2]
  local match = (ARGV[1] == "")
  for i = 1, #f, 2 do
    if f[i] == ARGV[1] and f[i + 1] == ARGV[2] then match = true end
  end
  if match then
    for i = 1, #f, 2 do
      if f[i] == ARGV[3] then table.insert(out, f[i + 1]) end
    end
  end
end
return out'

# xfield STREAM KEYFIELD KEYVALUE FIELD: FIELD of every entry whose KEYFIELD is KEYVALUE, one per
# line (KEYFIELD '' selects every entry).
xfield() { rcli EVAL "$E2E_LUA_FIELD" 1 "$1" "$2" "$3" "$4"; }

xlen() { rcli XLEN "$1"; }

# Predicates for wait_for (which must re-evaluate them on every poll, so no $(…) in its arguments).
xlen_ge() { (($(xlen "$1") >= $2)); }                           # xlen_ge STREAM N
field_eq() { [[ $(xfield "$1" "$2" "$3" "$4") == "$5" ]]; }    # field_eq STREAM KF KV FIELD VALUE
field_set() { [[ -n $(xfield "$1" "$2" "$3" "$4") ]]; }        # field_set STREAM KF KV FIELD

# backlog STREAM GROUP: prints "PENDING UNDELIVERED" (UNDELIVERED: 1 if the group has not read up to
# the stream's last entry).
E2E_LUA_BACKLOG='
if redis.call("EXISTS", KEYS[1]) == 0 then return {0, 0} end
local last = nil
local info = redis.call("XINFO", "STREAM", KEYS[1])
for i = 1, #info, 2 do if info[i] == "last-generated-id" then last = info[i + 1] end end
local groups = redis.call("XINFO", "GROUPS", KEYS[1])
for _, g in ipairs(groups) do
  local name, pending, delivered
  for i = 1, #g, 2 do
    if g[i] == "name" then name = g[i + 1] end
    if g[i] == "pending" then pending = g[i + 1] end
    if g[i] == "last-delivered-id" then delivered = g[i + 1] end
  end
  if name == ARGV[1] then
    local undelivered = 0
    if delivered ~= last then undelivered = 1 end
    return {pending, undelivered}
  end
end
return {-1, -1}'
backlog() { rcli EVAL "$E2E_LUA_BACKLOG" 1 "$1" "$2" | tr '\n' ' ' | sed 's/ $//'; }
backlog_empty() { [[ $(backlog "$1" "$2") == "0 0" ]]; }

# instances NAME: live instances of module NAME, from the registry or else the consumer group.
instances() {
    local n
    n=$(rcli HLEN "$TOBUS_NAMESPACE:module:$1" 2>/dev/null)
    if [[ -z $n || $n == 0 ]]; then
        n=$(rcli XINFO CONSUMERS "$TOBUS_NAMESPACE:in:$1" module 2>/dev/null | grep -cx name)
    fi
    echo "${n:-0}"
}
instances_at_least() { (($(instances "$1") >= $2)); }

# --- processes: tracking and cleanup -----------------------------------------------------------

# Pids (other than this shell) whose environment carries this test's marker or points at its
# redis socket, or whose command line names a path in $T: handlers in their own process groups,
# redis-servers a bus started, subshells.
e2e_marked_pids() {
    local d pid e words
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
        words=()
        mapfile -d '' -t words 2>/dev/null <"$d/environ"
        for e in "${words[@]}"; do
            if [[ $e == "TOBUS_E2E_DIR=$T" || $e == "TOBUS_REDIS=unix://$T/"* ]]; then
                echo "$pid"
                continue 2
            fi
        done
        words=()
        mapfile -d '' -t words 2>/dev/null <"$d/cmdline"
        for e in "${words[@]}"; do
            if [[ $e == *"$T/"* ]]; then
                echo "$pid"
                continue 2
            fi
        done
    done
}

e2e_cleanup() {
    local rc=$? pid deadline
    trap - EXIT INT TERM
    if ((${#E2E_PIDS[@]})); then
        for pid in "${E2E_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
        deadline=$((SECONDS + 5))
        for pid in "${E2E_PIDS[@]}"; do
            while alive "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
            kill -KILL "$pid" 2>/dev/null
        done
    fi
    if [[ -n ${T:-} && -d $T ]]; then
        # Twice: a process may fork while the first sweep runs.
        for _ in 1 2; do
            for pid in $(e2e_marked_pids); do
                [[ $pid == "$E2E_REDIS_PID" ]] && continue
                kill -KILL "$pid" 2>/dev/null
            done
        done
    fi
    if [[ -n $E2E_REDIS_PID ]]; then
        kill -TERM "$E2E_REDIS_PID" 2>/dev/null
        deadline=$((SECONDS + 5))
        while alive "$E2E_REDIS_PID" && ((SECONDS < deadline)); do sleep 0.05; done
        kill -KILL "$E2E_REDIS_PID" 2>/dev/null
    fi
    wait 2>/dev/null
    if [[ -n ${T:-} && -d $T ]]; then
        if [[ ${TOBUS_E2E_KEEP:-} == 1 ]]; then
            note "kept $T"
        else
            rm -rf "$T"
        fi
    fi
    exit "$rc"
}

# --- set-up ------------------------------------------------------------------------------------

# A broken set-up fails the test, except in a test that must fail on its own assertion only
# (E2E_SETUP_SKIPS=1), where it skips.
setup_fail() {
    [[ ${E2E_SETUP_SKIPS:-} == 1 ]] && skip "set-up: $*"
    fail "$@"
}

command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
    skip "redis-server or redis-cli not installed"

: "${TOBUS_BIN_DIR:=$E2E_SRC_DIR/../../build/tools}"
[[ -d $TOBUS_BIN_DIR ]] || setup_fail "TOBUS_BIN_DIR '$TOBUS_BIN_DIR' is not a directory (build first)"
TOBUS_BIN_DIR=$(cd "$TOBUS_BIN_DIR" && pwd)
export TOBUS_BIN_DIR
export PATH="$TOBUS_BIN_DIR:$PATH"
for _p in tobus-bus tobus-module tobus-send; do
    [[ -x $TOBUS_BIN_DIR/$_p ]] || setup_fail "$TOBUS_BIN_DIR/$_p not built"
done
unset _p

# A clean, predictable environment: nothing from the user's shell leaks into the programs.
unset TOBUS_REDIS TOBUS_NAMESPACE TOBUS_SOCKET TOBUS_DATA_DIR NO_COLOR
export LC_ALL=C

T=$(mktemp -d "${TMPDIR:-/tmp}/tobus-e2e.XXXXXX") || setup_fail "mktemp failed"
if ((${#T} > 60)); then # unix socket paths are limited to 107 bytes
    rmdir "$T"
    T=$(mktemp -d /tmp/tobus-e2e.XXXXXX) || setup_fail "mktemp failed"
fi
export T
export TOBUS_E2E_DIR=$T
trap e2e_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

export TOBUS_NAMESPACE=e2e$$
NS=$TOBUS_NAMESPACE

if [[ ${E2E_NO_REDIS:-} != 1 ]]; then
    redis-server --port 0 --unixsocket "$T/redis.sock" --unixsocketperm 700 \
        --save '' --appendonly no --daemonize no --dir "$T" \
        >"$T/redis.log" 2>&1 &
    E2E_REDIS_PID=$!
    wait_for -t 20 rcli ping || setup_fail "private redis-server did not answer on $T/redis.sock"
    export TOBUS_REDIS="unix://$T/redis.sock"
fi
