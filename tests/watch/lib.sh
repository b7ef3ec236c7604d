# shellcheck shell=bash
# Shared by the tobus-watch end-to-end tests (sourced): the e2e harness of tests/e2e/lib.sh (a
# private redis-server, TOBUS_REDIS, cleanup), plus starting a watch in the background and
# helpers to normalise what varies from run to run (clock times, durations).
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

[[ -x $TOBUS_BIN_DIR/tobus-watch ]] || setup_fail "$TOBUS_BIN_DIR/tobus-watch not built"

# watch_bg NAME ARGS...: `tobus-watch -v ARGS` in the background (stdout $T/NAME.stdout, log
# $T/NAME.log); returns once it reads the streams. Its pid is in E2E_LAST_PID.
watch_bg() {
    local name=$1
    shift
    start_bg "$name" tobus-watch -v "$@"
    wait_for -t 20 grep -q 'info: watching' "$T/$name.log" ||
        fail "tobus-watch $* did not start reading"
}

# count_lines FILE; lines_ge FILE N (a predicate for wait_for)
count_lines() { if [[ -f $1 ]]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }
lines_ge() { (($(count_lines "$1") >= $2)); }

# The readable line with its clock time replaced by TIME.
untime() { sed -E 's/^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} /TIME /'; }

# A trace with its times and durations replaced: +Nms, Nms, after Nms.
untrace() { sed -E 's/\+[0-9]+ms/+Nms/g; s/ [0-9]+ms/ Nms/g'; }

# The log of a background watch, less its info lines: what it said that was not expected.
unexpected_log() { grep -v ': info: ' "$T/$1.log" || true; }
