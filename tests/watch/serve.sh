#!/usr/bin/env bash
# tobus-watch --serve: /metrics against known traffic (handled, failed, retried, dead-lettered), parsed by a strict exposition-format parser
# (promparse.py) and checked against what was sent and what `tobus-state modules --json` reports;
# the index, 404 and 405; the default bind on 127.0.0.1 only; a port in use and a bad address;
# a hostile name in the registry; the end by SIGTERM.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v jq >/dev/null || skip "jq not installed"
PARSE=$E2E_SRC_DIR/../watch/promparse.py

# get URL [METHOD]: status line, headers and body of one request, in $T/get.out (python3: no
# curl needed); RC 0 whatever the status.
get() {
    run get python3 - "$1" "${2:-GET}" <<'EOF'
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1], method=sys.argv[2], data=b"x" if sys.argv[2] == "POST" else None)
try:
    r = urllib.request.urlopen(req, timeout=10)
except urllib.error.HTTPError as e:
    r = e
sys.stdout.write("%d\n" % r.status)
for k, v in r.headers.items():
    sys.stdout.write("%s: %s\n" % (k.lower(), v))
sys.stdout.write("\n")
sys.stdout.buffer.write(r.read())
EOF
}
status() { head -1 "$T/get.out"; }
header() { sed -n '2,/^$/p' "$T/get.out" | sed -n "s/^$1: //p"; }
body() { sed '1,/^$/d' "$T/get.out"; }

# scrape NAME: /metrics into $T/NAME.prom, parsed strictly into $T/NAME.json (a fault fails).
scrape() {
    get "$URL/metrics"
    assert_eq 200 "$(status)" "GET /metrics status"
    body >"$T/$1.prom"
    python3 "$PARSE" "$T/$1.prom" >"$T/$1.json" 2>"$T/$1.fault" ||
        fail "the strict parser rejects /metrics: $(cat "$T/$1.fault")"
}
# value NAME METRIC [LABEL=VALUE]: the sample's value (integers without .0), or "none".
value() {
    local labels='{}'
    [[ -n ${3:-} ]] && labels=$(jq -cn --arg k "${3%%=*}" --arg v "${3#*=}" '{($k): $v}')
    jq -rs --arg n "$2" --argjson l "$labels" \
        '[.[] | select(.name == $n and .labels == $l) | .value] | if length == 0 then "none" else (.[0] | if . == floor then floor else . end) end' \
        "$T/$1.json"
}

# --- the parser itself fails on what it must reject ------------------------------------------------
printf '# HELP a A\n# TYPE a gauge\na 1\n' >"$T/ok.prom"
python3 "$PARSE" "$T/ok.prom" >/dev/null || fail "the parser rejects a valid exposition"
bad_case() {  # bad_case WHAT TEXT
    printf '%b' "$2" >"$T/bad.prom"
    python3 "$PARSE" "$T/bad.prom" >/dev/null 2>&1 && fail "the parser accepts $1"
}
bad_case "a sample before its TYPE" 'a 1\n# HELP a A\n# TYPE a gauge\n'
bad_case "a bad escape" '# HELP a A\n# TYPE a gauge\na{m="x\\q"} 1\n'
bad_case "a bad value" '# HELP a A\n# TYPE a gauge\na 1x\n'
bad_case "a counter without _total" '# HELP a A\n# TYPE a counter\na 1\n'
bad_case "split samples" '# HELP a A\n# TYPE a gauge\n# HELP b B\n# TYPE b gauge\na 1\nb 1\na{x="y"} 2\n'
bad_case "non-cumulative buckets" '# HELP h H\n# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'
bad_case "+Inf other than _count" '# HELP h H\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n'
bad_case "no line feed at the end" '# HELP a A\n# TYPE a gauge\na 1'

# --- a bus, two modules (picky fails what starts with "BAD" (upper made it so)), the server ------------------------
start_bus
start_module upper --type util -- tr a-z A-Z
start_module picky -- sh -c 'p=$(cat); case "$p" in BAD*) exit 3;; esac; printf %s "$p"'
# Asks for a retry every time: 2 retries per message, then the hop fails.
start_module flaky --retries 2 --backoff 10ms -- sh -c 'exit 75'
for m in upper picky flaky; do
    wait_for -t 30 instances_at_least "$m" 1 || fail "$m did not attach"
done
# A name no module can have, written by hand into the registry: left out, never breaking the output.
rcli HSET "$NS:modules" $'evil"}\n{x' '{}' >/dev/null

watch_bg serve --serve 0
serve_pid=$E2E_LAST_PID
wait_for -t 20 grep -q 'serving http://' "$T/serve.log" || fail "no 'serving' line: $(cat "$T/serve.log")"
URL=$(sed -n 's|.*serving \(http://[0-9.]*:[0-9]*\)/.*|\1|p' "$T/serve.log")
PORT=${URL##*:}
assert_match '^http://127\.0\.0\.1:[0-9]+$' "$URL" "the default address"

# Listening on the loopback only: /proc/net/tcp has 0100007F:PORT in LISTEN (0A), no other address.
port_hex=$(printf '%04X' "$PORT")
listen=$(awk -v p=":$port_hex" '$2 ~ p"$" && $4 == "0A" { print $2 }' /proc/net/tcp /proc/net/tcp6 | sort -u)
assert_eq "0100007F:$port_hex" "$listen" "the listening sockets on port $PORT"

# Traffic: 20 messages through upper then picky, 5 of which picky fails; 3 to a module nobody runs.
{ seq 1 15 | sed 's/^/ok/'; seq 1 5 | sed 's/^/bad/'; } >"$T/twenty.txt"
run send tobus-send -t upper,picky --wait --timeout 60s <"$T/twenty.txt"
assert_rc 1 "20 messages, 5 of which fail"
seq 1 2 | run flaky tobus-send -t flaky --wait --timeout 60s
assert_rc 1 "2 messages to flaky"
seq 1 3 | run nobody tobus-send -t nobody
assert_rc 0 "3 messages to nobody"
wait_for -t 30 xlen_ge "$NS:in:nobody" 3 || fail "the messages to nobody were not routed"
wait_for -t 30 xlen_ge "$NS:dead" 7 || fail "the failures were not dead-lettered"

# The handled and failed counts are the modules' own, written with their heartbeat (every 5s).
counted() {
    scrape now
    [[ $(value now tobus_module_messages_handled_total module=picky) == 15 &&
        $(value now tobus_module_messages_failed_total module=picky) == 5 &&
        $(value now tobus_module_messages_handled_total module=upper) == 20 &&
        $(value now tobus_module_dead_lettered_total module=picky) == 5 &&
        $(value now tobus_module_messages_retried_total module=flaky) == 4 ]]
}
wait_for -t 30 counted || fail "the counts did not reach what was sent: $(grep -E 'total\{' "$T/now.prom")"

scrape m
get "$URL/metrics"
assert_eq 'text/plain; version=0.0.4; charset=utf-8' "$(header content-type)" "Content-Type of /metrics"
assert_eq 0 "$(value m tobus_module_messages_failed_total module=upper)" "upper failed"
assert_eq 0 "$(value m tobus_module_messages_retried_total module=picky)" "picky retried"
assert_eq 0 "$(value m tobus_module_dead_lettered_total module=upper)" "upper dead-lettered"
assert_eq 2 "$(value m tobus_module_messages_failed_total module=flaky)" "flaky failed"
assert_eq 2 "$(value m tobus_module_dead_lettered_total module=flaky)" "flaky dead-lettered"
assert_eq 7 "$(value m tobus_dead_lettered_total)" "dead letters since the start"
assert_eq 7 "$(value m tobus_dead_letters)" "the dead-letter stream's length"
assert_eq 1 "$(value m tobus_redis_up)" "tobus_redis_up"
assert_eq 1 "$(value m tobus_type_members type=util)" "members of type util"
# Every hop's duration is in the histogram: 20 at upper, 20 (15 handled, 5 failed) at picky.
assert_eq 20 "$(value m tobus_module_handler_duration_seconds_count module=upper)" "upper's durations"
assert_eq 20 "$(value m tobus_module_handler_duration_seconds_count module=picky)" "picky's durations"
assert_eq 20 "$(jq -rs '[.[] | select(.name == "tobus_module_handler_duration_seconds_bucket" and .labels == {module: "upper", le: "+Inf"}) | .value][0]' "$T/m.json" | sed 's/\.0$//')" "upper's +Inf bucket"
# The gauges against tobus-state modules --json, read at the same quiet moment.
run state tobus-state modules --json
assert_rc 0 "tobus-state modules --json"
for m in upper picky flaky nobody; do
    want=$(jq -r --arg m "$m" 'select(.name == $m) | "\(.live) \(.inbox) \(.pending)"' "$RUN_OUT")
    got="$(value m tobus_module_instances module=$m) $(value m tobus_module_inbox_length module=$m) $(value m tobus_module_pending module=$m)"
    assert_eq "$want" "$got" "$m: instances, inbox, pending as tobus-state says"
done
assert_eq "1 1 0" "$(value m tobus_module_instances module=upper) $(value m tobus_module_instances module=picky) $(value m tobus_module_instances module=nobody)" "live instances"
assert_eq "3 3 0" "$(value m tobus_module_inbox_length module=nobody) $(value m tobus_module_lag module=nobody) $(value m tobus_module_jobs_in_flight module=upper)" \
    "nobody's inbox and lag, upper's jobs in flight"
assert_eq 0 "$(value m tobus_module_lag module=upper)" "upper's lag"
# The hand-written name is not a series; the modules are exactly these four.
assert_eq '["flaky","nobody","picky","upper"]' "$(jq -sc '[.[] | select(.name == "tobus_module_inbox_length") | .labels.module]' "$T/m.json")" "the modules"
grep -q evil "$T/m.prom" && fail "a name no module can have was served"
assert_eq 0 "$(value m tobus_exporter_dropped what=modules)" "modules dropped"

# --- the index, an unknown path, a write ------------------------------------------------------------
get "$URL/"
assert_eq 200 "$(status)" "GET /"
assert_eq 'text/html; charset=utf-8' "$(header content-type)" "Content-Type of /"
assert_contains '<a href="/metrics">/metrics</a>' "$(body)" "the index names /metrics"
get "$URL/nothing-here"
assert_eq 404 "$(status)" "an unknown path"
get "$URL/metrics" POST
assert_eq 405 "$(status)" "POST /metrics"
assert_eq 'GET, HEAD' "$(header allow)" "Allow on a 405"

# --- a port in use, a bad address: one line each, and their exit codes -------------------------------
run busy tobus-watch --serve "$PORT"
assert_rc 1 "--serve on a port in use"
assert_eq "tobus-watch: error: cannot listen on 127.0.0.1:$PORT: Address already in use" "$(cat "$RUN_ERR")" "its message"
assert_empty_file "$RUN_OUT" "stdout of a failed --serve"
run badaddr tobus-watch --serve 1.2.3:80
assert_rc 2 "--serve 1.2.3:80"
assert_eq "tobus-watch: error: bad --serve '1.2.3:80': ADDR is an IPv4 address, [IPv6] or localhost
Try 'tobus-watch --help'." "$(cat "$RUN_ERR")" "one line for a bad address, and the usage hint"
run nothere tobus-watch --serve 192.0.2.1:0
assert_rc 1 "--serve on an address not on this host"
assert_contains "cannot listen on 192.0.2.1:0: Cannot assign requested address" "$(cat "$RUN_ERR")" "its message"
run withstats tobus-watch --serve 0 --stats
assert_rc 2 "--serve with --stats"

assert_eq "" "$(unexpected_log serve)" "nothing but info in the log"

# --- Redis gone: the scrape says so at once, what was counted is still served -----------------------
kill -TERM "$E2E_REDIS_PID"
wait_for -t 10 not alive "$E2E_REDIS_PID" || fail "redis-server did not stop"
scrape down
assert_eq 0 "$(value down tobus_redis_up)" "tobus_redis_up without Redis"
assert_eq none "$(value down tobus_module_inbox_length module=upper)" "no gauges without Redis"
assert_eq 5 "$(value down tobus_module_dead_lettered_total module=picky)" "picky's dead letters, still served"

# --- the end: SIGTERM, as the other programs (also while it reconnects) -----------------------------
stop_proc "$serve_pid" TERM
assert_eq 143 "$RC" "exit by SIGTERM"
pass
