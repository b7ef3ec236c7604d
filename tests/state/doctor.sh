#!/usr/bin/env bash
# tobus-state doctor: a fresh server with AOF and noeviction passes; then each check is made to
# fail on the real server (eviction policy, memory, persistence, a module's inbox with no live
# instance, an entry pending past --claim-after, dead letters) and says so on its line with the
# documented exit code; an ACL user that may not CONFIG gets "could not check"; --json has the
# same statuses; an unreachable Redis is exit 3 with one line; bad options are exit 2.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
[[ -x $TOBUS_BIN_DIR/tobus-state ]] || setup_fail "tobus-state not built"
command -v jq >/dev/null || skip "jq not installed"

# doctor NAME [ARGS...]: runs tobus-state doctor; RC, $T/NAME.out, $T/NAME.err.
doctor() {
    local name=$1
    shift
    run "$name" tobus-state doctor "$@"
}
# line CHECK: the line of that check in the last run's output.
line() { grep -E "^(ok|WARN|FAIL) +$1: " "$RUN_OUT"; }
# status_of CHECK: its status word.
status_of() { line "$1" | awk '{ print $1 }'; }
# expect CHECK STATUS: that check's line has STATUS, and every other check is ok.
expect_only() {
    local check=$1 want=$2 name st
    assert_eq "$want" "$(status_of "$check")" "$check: status in: $(cat "$RUN_OUT")"
    while read -r st name; do
        name=${name%%:*}
        [[ $name == "$check" || $st == ok ]] || fail "$check made to $want, but $name is $st: $(cat "$RUN_OUT")"
    done <"$RUN_OUT"
}
checks='version persistence eviction memory acl clock pending bus modules dead-letters'

rcli CONFIG SET appendonly yes >/dev/null
rcli CONFIG SET appendfsync everysec >/dev/null

# --- a fresh server with AOF and noeviction: every check ok, exit 0 -----------------------------
doctor fresh
assert_rc 0 "doctor on a fresh server"
assert_empty_file "$RUN_ERR" "doctor: stderr"
assert_eq "$checks" "$(awk '{ sub(":", "", $2); print $2 }' "$RUN_OUT" | paste -sd' ')" "one line per check, in order"
assert_eq 10 "$(grep -c '^ok    ' "$RUN_OUT")" "every check ok: $(cat "$RUN_OUT")"
assert_match '^ok    version: Redis [0-9.]+ \(6\.2\.0 or later needed\); all [0-9]+ commands tobus uses are there$' \
    "$(line version)" "version"
assert_eq 'ok    persistence: AOF, appendfsync everysec (a crash loses at most 1s of acknowledged writes)' \
    "$(line persistence)" "persistence"
assert_eq 'ok    eviction: maxmemory-policy noeviction: nothing is evicted, and there is no maxmemory' \
    "$(line eviction)" "eviction"
assert_match '^ok    memory: used [0-9.]+[KMG], no maxmemory' "$(line memory)" "memory"
assert_match '^ok    clock: this host and Redis agree within [0-9]+ms \(round trip [0-9]+ms\)$' "$(line clock)" "clock"
assert_eq "ok    acl: no user of tobus-state acl's roles here ($TOBUS_NAMESPACE-bus, $TOBUS_NAMESPACE-module-NAME, ...): the programs run as the users they are given" \
    "$(line acl)" "acl, no role users"
assert_eq 'ok    pending: no entry pending longer than 30s (twice --claim-after 15s) in the bus or 0 inboxes' \
    "$(line pending)" "pending"
assert_eq 'ok    bus: no tobus-bus reads it now, and no message waits on it' "$(line bus)" "bus"
assert_eq 'ok    dead-letters: none' "$(line dead-letters)" "dead letters"

doctor fresh-json --json
assert_rc 0 "doctor --json on a fresh server"
assert_eq 1 "$(wc -l <"$RUN_OUT")" "--json: one line"
jq -e . "$RUN_OUT" >/dev/null || fail "--json is not JSON: $(cat "$RUN_OUT")"
assert_eq ok "$(jq -r .status "$RUN_OUT")" "--json: the overall status"
assert_eq "$checks" "$(jq -r '.checks[].name' "$RUN_OUT" | paste -sd' ')" "--json: every check, in order"
assert_eq 'ok ok ok ok ok ok ok ok ok ok' "$(jq -r '.checks[].status' "$RUN_OUT" | paste -sd' ')" "--json: statuses"
assert_eq 'true' "$(jq '[.checks[] | (.message | type) == "string" and (.details | type) == "object"] | all' "$RUN_OUT")" \
    "--json: each check has a message and details"
assert_eq '"everysec" true' "$(jq -c '.checks[] | select(.name == "persistence") | .details | .appendfsync, .aof' "$RUN_OUT" | paste -sd' ')" \
    "--json: persistence details"

# --- eviction: a policy other than noeviction loses keys when full --------------------------------
rcli CONFIG SET maxmemory 100mb >/dev/null
rcli CONFIG SET maxmemory-policy allkeys-lru >/dev/null
doctor evict
assert_rc 1 "doctor with allkeys-lru and maxmemory"
expect_only eviction FAIL
assert_eq 'FAIL  eviction: maxmemory 100.00M with maxmemory-policy allkeys-lru: when full, Redis evicts keys (streams, inboxes, records: message loss); use noeviction' \
    "$(line eviction)" "eviction line"
doctor evict-json --json
assert_rc 1 "doctor --json with allkeys-lru"
assert_eq 'fail fail' "$(jq -r '.status, (.checks[] | select(.name == "eviction") | .status)' "$RUN_OUT" | paste -sd' ')" \
    "--json: the same status"
assert_eq '104857600 "allkeys-lru"' "$(jq -c '.checks[] | select(.name == "eviction") | .details | .maxmemory, .policy' "$RUN_OUT" | paste -sd' ')" \
    "--json: eviction details"
# Without maxmemory nothing is evicted yet: a warning, exit 0, exit 1 with --strict.
rcli CONFIG SET maxmemory 0 >/dev/null
doctor evict-nomax
assert_rc 0 "doctor with allkeys-lru and no maxmemory"
expect_only eviction WARN
assert_contains 'WARN  eviction: maxmemory-policy allkeys-lru with no maxmemory: nothing is evicted now' "$(line eviction)" \
    "eviction without maxmemory"
doctor evict-strict --strict
assert_rc 1 "doctor --strict with a warning"
rcli CONFIG SET maxmemory-policy noeviction >/dev/null

# --- memory: headroom against maxmemory ---------------------------------------------------------
used=$(rcli INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }')
rcli CONFIG SET maxmemory "$used" >/dev/null
doctor memory-full
assert_rc 1 "doctor with used_memory at maxmemory"
expect_only memory FAIL
assert_match '^FAIL  memory: used [0-9.]+[KMG] of maxmemory [0-9.]+[KMG] \(([0-9]+)%\): Redis is about to refuse writes' \
    "$(line memory)" "memory line"
rcli CONFIG SET maxmemory "$((used * 100 / 85))" >/dev/null
doctor memory-tight
assert_rc 0 "doctor with 85% of maxmemory used"
expect_only memory WARN
assert_contains ': little headroom left' "$(line memory)" "memory: headroom"
rcli CONFIG SET maxmemory 0 >/dev/null

# --- persistence: fsync policy, RDB only, none --------------------------------------------------
rcli CONFIG SET appendfsync no >/dev/null
doctor fsync-no
assert_rc 0 "doctor with appendfsync no"
expect_only persistence WARN
assert_contains 'WARN  persistence: AOF, appendfsync no (the OS writes to disk when it likes' "$(line persistence)" \
    "appendfsync no"
rcli CONFIG SET appendonly no >/dev/null
rcli CONFIG SET save '3600 1 300 100' >/dev/null
doctor rdb
assert_rc 0 "doctor with RDB snapshots only"
expect_only persistence WARN
assert_eq 'WARN  persistence: RDB snapshots only (save 3600 1 300 100): a crash loses every message since the last snapshot; appendonly yes keeps them' \
    "$(line persistence)" "RDB only"
rcli CONFIG SET save '' >/dev/null
doctor none
assert_rc 1 "doctor with no persistence"
expect_only persistence FAIL
assert_eq "FAIL  persistence: none (appendonly no, save ''): a restart of Redis loses every message, pending entry and dead letter; at-least-once holds only while Redis runs" \
    "$(line persistence)" "no persistence"
doctor none-json --json
assert_eq 'fail' "$(jq -r '.checks[] | select(.name == "persistence") | .status' "$RUN_OUT")" "--json: persistence"
rcli CONFIG SET appendonly yes >/dev/null
rcli CONFIG SET appendfsync everysec >/dev/null

# --- an ACL user that may not CONFIG: could not check, not a crash, not a false "fine" ----------
rcli ACL SETUSER doc on '>pw' '~*' '&*' '+@all' '-config' >/dev/null
doctor acl -r "unix://$T/redis.sock?user=doc&password=pw"
assert_rc 0 "doctor as a user without CONFIG"
expect_only persistence WARN
assert_match "^WARN  persistence: could not check: CONFIG GET appendonly was refused: NOPERM.*; INFO says AOF is on, its appendfsync is unknown$" \
    "$(line persistence)" "persistence without CONFIG"
# Eviction and memory come from INFO: still checked.
assert_eq 'ok    eviction: maxmemory-policy noeviction: nothing is evicted, and there is no maxmemory' \
    "$(line eviction)" "eviction from INFO"
doctor acl-json --json -r "unix://$T/redis.sock?user=doc&password=pw"
assert_eq 'warn warn false' "$(jq -r '.status, (.checks[] | select(.name == "persistence") | .status, .details.checked)' "$RUN_OUT" | paste -sd' ')" \
    "--json: could not check"
# Without INFO either: eviction and memory could not be checked, each says why.
rcli ACL SETUSER blind on '>pw' '~*' '&*' '+@all' '-config' '-info' >/dev/null
doctor blind -r "unix://$T/redis.sock?user=blind&password=pw"
assert_rc 0 "doctor as a user without CONFIG or INFO"
assert_match '^WARN  eviction: could not check: INFO was refused: NOPERM.*; CONFIG GET maxmemory was refused: NOPERM' \
    "$(line eviction)" "eviction without INFO or CONFIG"
assert_match '^WARN  memory: could not check: INFO was refused: NOPERM' "$(line memory)" "memory without INFO"
assert_match '^ok    version: Redis [0-9.]+ ' "$(line version)" "the version from HELLO"

# --- acl: the users of tobus-state acl's roles, asked of the server with ACL DRYRUN --------------
printf 'pw\n' >"$T/role.pw"
chmod 600 "$T/role.pw"
for role in sender watcher; do tobus-state acl "$role" --password-file "$T/role.pw" | rcli >/dev/null; done
tobus-state acl module m1 --password-file "$T/role.pw" | rcli >/dev/null
doctor acl-users
assert_rc 0 "doctor with role users that have their rules"
assert_match '^ok    acl: 3 role users \(.*-module-m1, .*-sender, .*-watcher\) may do what their programs need$' \
    "$(line acl)" "acl, three role users as tobus-state acl made them"
# The sender's rules taken away: its program would fail with NOPERM.
rcli ACL SETUSER "$TOBUS_NAMESPACE-sender" reset on nopass +ping >/dev/null
doctor acl-broken
assert_rc 1 "doctor with a role user that lacks what its program needs"
expect_only acl FAIL
assert_contains "FAIL  acl: $TOBUS_NAMESPACE-sender may not " "$(line acl)" "the user named"
assert_contains "XADD $TOBUS_NAMESPACE:bus" "$(line acl)" "what it lacks, with the key"
assert_contains "(apply 'tobus-state acl sender' again)" "$(line acl)" "what mends it"
doctor acl-broken-json --json
assert_eq "fail $TOBUS_NAMESPACE-sender" "$(jq -r '.checks[] | select(.name == "acl") | .status, .details.wrong[0]' "$RUN_OUT" | paste -sd' ')" \
    "--json: the acl check and the user that is wrong"
# A doctor that may not look at users says so.
rcli ACL SETUSER noacl on '>pw' '~*' '&*' '+@all' '-acl' >/dev/null
doctor acl-refused -r "unix://$T/redis.sock?user=noacl&password=pw"
assert_match '^WARN  acl: could not check: ACL USERS was refused: NOPERM' "$(line acl)" "acl without ACL"
rcli ACL DELUSER "$TOBUS_NAMESPACE-sender" "$TOBUS_NAMESPACE-watcher" "$TOBUS_NAMESPACE-module-m1" noacl >/dev/null

# --- bus: messages sent while no tobus-bus runs ---------------------------------------------------
tobus-send -t upper -m early
doctor no-bus
assert_rc 1 "doctor with a message on the bus and no bus"
expect_only bus FAIL
assert_eq 'FAIL  bus: messages wait on the bus (1 unread, 0 pending) and no tobus-bus reads it (never read)' \
    "$(line bus)" "the bus line"

# --- modules: messages wait in an inbox nobody runs ---------------------------------------------
start_bus
bus_pid=$E2E_LAST_PID
start_module upper -- tr a-z A-Z
wait_for -t 30 instances_at_least upper 1 || fail "upper never registered"
run send-up tobus-send -t upper --wait --timeout "$(secs 20)s" -m hi
assert_rc 0 "a message through upper"
tobus-send -t ghost -m a -m b
wait_for -t 10 xlen_ge "$NS:in:ghost" 2 || fail "the bus did not route to ghost's inbox"
doctor ghost
assert_rc 1 "doctor with messages for a module that does not run"
expect_only modules FAIL
assert_eq 'FAIL  modules: messages wait for modules with no live instance: ghost (2 unread, 0 pending, never seen)' \
    "$(line modules)" "the modules line"
assert_match '^ok    bus: a tobus-bus reads it \(last read [0-9]+s ago\); 0 unread, 0 pending$' "$(line bus)" "the bus, read"
doctor ghost-json --json
assert_eq '{"module":"ghost","unread":2,"unread_at_least":false,"pending":0,"last_seen":null}' \
    "$(jq -c '.checks[] | select(.name == "modules") | .details.stranded[]' "$RUN_OUT")" "--json: the stranded module"
assert_eq '2 1' "$(jq -r '.checks[] | select(.name == "modules") | .details | "\(.modules) \(.up)"' "$RUN_OUT")" \
    "--json: modules and live ones"

# --- pending: an entry a consumer took and never acknowledged -----------------------------------
# A consumer 'gone' takes one of ghost's messages and vanishes; nobody reclaims it.
rcli XGROUP CREATE "$NS:in:ghost" module 0 >/dev/null 2>&1 || true
rcli XREADGROUP GROUP module gone COUNT 1 STREAMS "$NS:in:ghost" '>' >/dev/null
doctor pending-young
assert_eq 'ok' "$(status_of pending)" "pending: not yet twice the default claim-after"
assert_eq 'FAIL  modules: messages wait for modules with no live instance: ghost (1 unread, 1 pending, never seen)' \
    "$(line modules)" "the modules line, one pending"
sleep 2.2
doctor pending --claim-after 1s
assert_rc 1 "doctor with an entry pending past twice --claim-after"
assert_match '^FAIL  pending: 1 entry pending longer than 2s \(twice --claim-after 1s\), which nobody reclaims: in:ghost 1 \(idle up to [0-9]+s, consumer gone\)$' \
    "$(line pending)" "the pending line"
assert_eq 'in:ghost 1 gone' "$(jq -r '.checks[] | select(.name == "pending") | .details.stuck[] | "\(.stream) \(.count) \(.consumer)"' \
    < <(tobus-state doctor --json --claim-after 1s))" "--json: the stuck entry"
rcli DEL "$NS:in:ghost" >/dev/null
doctor no-ghost
assert_rc 0 "doctor with ghost's inbox gone"
# A module name is bytes from anyone: it stays on its line, escaped.
rcli XADD "$NS:in:$(printf 'evil\nFAIL  x\033[31m')" '*' a b >/dev/null
doctor evil
assert_rc 1 "doctor with an inbox named with a newline"
assert_eq 10 "$(wc -l <"$RUN_OUT")" "one line per check still"
assert_eq 'FAIL  modules: messages wait for modules with no live instance: evil\nFAIL  x\x1b[31m (1 unread, 0 pending, never seen)' \
    "$(line modules)" "the name escaped"
rcli DEL "$NS:in:$(printf 'evil\nFAIL  x\033[31m')" >/dev/null

# --- dead letters: growing, then only old ones --------------------------------------------------
rcli XADD "$NS:bus" '*' id junk-1 payload 'no version' >/dev/null
wait_for -t 10 xlen_ge "$NS:dead" 1 || fail "the bus did not dead-letter the junk entry"
doctor dead
assert_rc 1 "doctor with a new dead letter"
expect_only dead-letters FAIL
assert_match '^FAIL  dead-letters: growing: 1 new in the last 1h \(newest [0-9]+s ago\), 1 in all; see tobus-state dead list$' \
    "$(line dead-letters)" "the dead-letter line"
doctor dead-json --json
assert_eq '1 1' "$(jq -r '.checks[] | select(.name == "dead-letters") | "\(.details.length) \(.details.recent)"' "$RUN_OUT")" \
    "--json: dead letters"
# Only old ones: a warning. (An entry of 2001 stands for one dead long ago.)
rcli DEL "$NS:dead" >/dev/null
rcli XADD "$NS:dead" 1000000000000-0 reason old >/dev/null
doctor dead-old
assert_rc 0 "doctor with only old dead letters"
expect_only dead-letters WARN
assert_match '^WARN  dead-letters: 1 in all, the newest [0-9]+d old, none in the last 1h: look at them' \
    "$(line dead-letters)" "old dead letters"
rcli XADD "$NS:dead" '*' reason new >/dev/null
sleep 1.2
doctor dead-since --dead-since 1s
assert_rc 0 "--dead-since shorter than the newest dead letter's age"
assert_contains 'none in the last 1s' "$(line dead-letters)" "--dead-since"
rcli DEL "$NS:dead" >/dev/null
doctor clean
assert_rc 0 "doctor once more, all fixed"
assert_eq 10 "$(grep -c '^ok    ' "$RUN_OUT")" "every check ok again: $(cat "$RUN_OUT")"
# The bus stops; a message sent then waits; its consumer was last seen just now, so within twice
# --claim-after it still counts as reading, and after that it does not.
stop_proc "$bus_pid"
tobus-send -t upper -m late
doctor bus-stopped
assert_rc 0 "doctor just after the bus stopped"
sleep 2.2
doctor bus-gone --claim-after 1s
assert_rc 1 "doctor after the bus has been gone for twice --claim-after"
assert_match '^FAIL  bus: messages wait on the bus \(1 unread, 0 pending\) and no tobus-bus reads it \(last read [0-9]+s ago\)$' \
    "$(line bus)" "the bus line, stopped"

# --- version: a server with commands tobus needs renamed away -----------------------------------
redis-server --port 0 --unixsocket "$T/renamed.sock" --save '' --appendonly yes --dir "$T" \
    --appendfilename renamed.aof --appenddirname renamed-aof \
    --rename-command XAUTOCLAIM '' --rename-command XTRIM xtrim-renamed >"$T/renamed.log" 2>&1 &
E2E_PIDS+=("$!")
wait_for -t 20 redis-cli -s "$T/renamed.sock" ping || setup_fail "the second redis-server did not answer"
doctor renamed -r "unix://$T/renamed.sock"
assert_rc 1 "doctor on a server without XAUTOCLAIM"
expect_only version FAIL
assert_match '^FAIL  version: Redis [0-9.]+, but commands tobus uses are missing \(renamed or disabled\): XAUTOCLAIM XTRIM$' \
    "$(line version)" "the version line"

# --- Redis unreachable: exit 3, one line ---------------------------------------------------------
doctor down -r "unix://$T/nobody.sock"
assert_rc 3 "doctor with nothing at the address"
assert_eq 1 "$(wc -l <"$RUN_ERR")" "unreachable: one line on stderr: $(cat "$RUN_ERR")"
assert_empty_file "$RUN_OUT" "unreachable: stdout"
doctor down-json --json -r "unix://$T/nobody.sock"
assert_rc 3 "doctor --json with nothing at the address"
assert_empty_file "$RUN_OUT" "unreachable --json: stdout"

# --- usage ----------------------------------------------------------------------------------------
doctor bad-duration --claim-after soon
assert_rc 2 "a bad --claim-after"
doctor zero --claim-after 0
assert_rc 2 "--claim-after 0"
assert_contains 'must be longer than 0' "$(cat "$RUN_ERR")" "--claim-after 0: why"

pass
