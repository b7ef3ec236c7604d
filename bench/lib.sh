# shellcheck shell=bash
# What the benchmarks share (bench/run.sh, bench/big-payload.sh source it): bounded waiting, the
# check for the programs they need and the usage-error exit. Each script sets $prog (its file name)
# before it sources this.

: "${prog:?bench/lib.sh: set prog before sourcing it}"

# usage_error MESSAGE: the message and the way to the help on stderr, then exit 2.
usage_error() {
  echo "$prog: $1" >&2
  echo "Try 'bash bench/$prog --help'." >&2
  exit 2
}

# require_programs PROGRAM... [-- HINT]: exits 1 naming every PROGRAM that is missing (a path: not
# an executable file; a name: not a command on PATH), then HINT when given.
require_programs() {
  local p missing=() hint=
  while (($#)); do
    if [[ $1 == -- ]]; then
      hint=${2-}
      break
    fi
    p=$1
    shift
    if [[ $p == */* ]]; then
      [[ -x $p ]] || missing+=("$p")
    else
      command -v "$p" >/dev/null || missing+=("$p")
    fi
  done
  ((${#missing[@]})) || return 0
  echo "$prog: error: cannot run the benchmark, missing: ${missing[*]}" >&2
  [[ -n $hint ]] && echo "$prog: $hint" >&2
  exit 1
}

# wait_for TENTHS CMD...: waits until CMD succeeds, at most TENTHS tenths of a second.
wait_for() {
  local tenths=$1 i
  shift
  for ((i = 0; i < tenths; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# free_port: a loopback TCP port nothing listens on now (bash's /dev/tcp finds none there).
free_port() {
  local p i
  for ((i = 0; i < 50; i++)); do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  echo "$prog: error: no free loopback port found" >&2
  return 1
}
