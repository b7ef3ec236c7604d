#!/usr/bin/env bash
# Least privilege (docs/security.md): the rules `tobus-state acl` prints, piped into redis-cli,
# are enough for each program under its own user (the bus, two modules on a 2-hop route, a sender
# with --wait, a watcher, an admin), and they refuse a module's user what is not its own: another
# module's inbox, records and state, the dead-letter stream's deletion, FLUSHALL, CONFIG, KEYS.
# A program run as the wrong user ends with exit 5 and one line naming the refusal.
source "$(dirname "$0")/lib.sh"

# Selectors and %R~/%W~ came with Redis 7.0.
major=$(rcli INFO server | sed -n 's/^redis_version:\([0-9]*\).*/\1/p')
((major >= 7)) || skip "redis-server $major.x has no ACL selectors (7.0 or later)"

pw='acl-s3cret'
printf '%s\n' "$pw" >"$T/pw"
chmod 600 "$T/pw"

# A user for the test's own looks, then the rules of every role, as an operator would apply them.
rcli ACL SETUSER root on ">$pw" '~*' '&*' '+@all' >/dev/null || setup_fail "cannot create the test's user"
apply() {  # apply ARGS...: tobus-state acl ARGS | redis-cli; every line must answer OK
  local out
  tobus-state acl "$@" --password-file "$T/pw" >"$T/rules" 2>"$T/rules.err" || fail "tobus-state acl $*: $(cat "$T/rules.err")"
  [[ $(wc -l <"$T/rules") == 1 ]] || fail "tobus-state acl $*: expected one line, got: $(cat "$T/rules")"
  out=$(rcli <"$T/rules")
  assert_eq OK "$out" "redis-server takes the rules of '$*'"
}
roles=(bus 'module a --type loud' 'module b' 'module c --type fan' 'module d --type fan' 'module j' 'module s' sender
  watcher admin)
for role in "${roles[@]}"; do
  # shellcheck disable=SC2086
  apply $role
done
rcli ACL SETUSER default off >/dev/null
rcli() { redis-cli -s "$T/redis.sock" --user root --pass "$pw" --no-auth-warning "$@"; }
rcli PING >/dev/null || setup_fail "the test's user cannot log in"

export TOBUS_REDIS_PASSWORD_FILE=$T/pw
as() { echo "unix://$T/redis.sock?user=$NS-$1"; }  # the URL of role $1's user

# b refuses a payload holding FAIL: a dead letter to look at and retry.
cat >"$T/b.sh" <<'SH'
#!/bin/sh
x=$(cat)
case $x in *FAIL*) echo "refusing $x" >&2; exit 1 ;; esac
printf '%s!' "$x"
SH
chmod +x "$T/b.sh"
start_bg bus tobus-bus --redis "$(as bus)"
start_bg module.a tobus-module --redis "$(as module-a)" a --type loud -- tr a-z A-Z
a_pid=$E2E_LAST_PID
start_bg module.b tobus-module --redis "$(as module-b)" b -- "$T/b.sh"

# A fan-out to a type and a join: SCAN, the join's Lua scripts, its lock and the fan-out records.
for m in c d; do
  start_bg "module.$m" tobus-module --redis "$(as "module-$m")" "$m" --type fan -- sh -c "printf '$m:%s' \"\$(cat)\""
done
start_bg module.j tobus-module --redis "$(as module-j)" j --join -- \
  sh -c 'printf "%s/%s " "$TOBUS_JOIN_PARTS" "$TOBUS_JOIN_EXPECTED"; cat'
members_are() { [[ $(rcli SCARD "$NS:type:$1") == "$2" ]]; }
wait_for -t 30 members_are fan 2 || fail "c and d did not join type fan"
run join tobus-send --redis "$(as sender)" --to @fan,j -m q --wait --timeout "$(secs 30)"
assert_rc 0 "a fan-out and a join, each module under its own user"
assert_bytes "$RUN_OUT" '2/2 c:q\nd:q\n' "the joined result"

run send tobus-send --redis "$(as sender)" --to a,b -m abc --wait --timeout "$(secs 30)"
assert_rc 0 "a 2-hop route with each program under its own user"
assert_eq 'ABC!' "$(cat "$RUN_OUT")" "the result of a,b"
run send2 sh -c 'printf "x\ny\nz\n" | tobus-send --redis "$1" --to @loud,b --wait --timeout "$2"' - "$(as sender)" \
  "$(secs 30)"
assert_rc 0 "three messages through a type the module joined"
assert_eq $'X!\nY!\nZ!' "$(cat "$RUN_OUT")" "the results through @loud,b"
run fail tobus-send --redis "$(as sender)" --to a,b -m fail --wait --timeout "$(secs 30)"
assert_rc 1 "a message b refuses fails"

# The watcher reads; the admin writes state and handles dead letters.
run watch tobus-watch --redis "$(as watcher)" --since 1h --count 3 --timeout "$(secs 10)"
assert_rc 0 "tobus-watch under the watcher user"
run stats tobus-watch --redis "$(as watcher)" --stats --count 1
assert_rc 0 "tobus-watch --stats under the watcher user"
assert_contains "j" "$(cat "$RUN_OUT")" "the statistics name the modules"
# --serve's scrape reads the modules' counts (HMGET) and the types' sizes (SCARD) too.
start_bg serve tobus-watch -v --redis "$(as watcher)" --serve 0
serve_pid=$E2E_LAST_PID
wait_for -t 20 grep -q 'serving http://' "$T/serve.log" || fail "tobus-watch --serve did not start: $(cat "$T/serve.log")"
url=$(sed -n 's|.*serving \(http://[0-9.]*:[0-9]*\)/.*|\1|p' "$T/serve.log")
run scrape python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$url/metrics"
assert_rc 0 "a scrape of tobus-watch --serve under the watcher user"
assert_contains 'tobus_redis_up 1' "$(cat "$RUN_OUT")" "the scrape read Redis"
assert_contains 'tobus_module_messages_handled_total{module="a"}' "$(cat "$RUN_OUT")" "module a's count (HMGET)"
assert_contains 'tobus_type_members{type="fan"} 2' "$(cat "$RUN_OUT")" "type fan's members (SCARD)"
stop_proc "$serve_pid"
run modules tobus-state --redis "$(as watcher)" modules --names
assert_rc 0 "tobus-state modules under the watcher user"
assert_eq $'a\nb\nc\nd\nj' "$(cat "$RUN_OUT")" "the modules, as the watcher sees them"
run record tobus-state --redis "$(as watcher)" get module:a status
assert_rc 0 "a module's state record, read by the watcher"
assert_eq running "$(cat "$RUN_OUT")" "module a's status record"
run jobs tobus-state --redis "$(as watcher)" jobs b
assert_rc 0 "tobus-state jobs under the watcher user"
run types tobus-state --redis "$(as watcher)" types --names
assert_eq $'fan\nloud' "$(cat "$RUN_OUT")" "the types, as the watcher sees them"
run dead tobus-state --redis "$(as watcher)" dead list
assert_rc 0 "tobus-state dead list under the watcher user"
assert_contains "handler exited with 1" "$(cat "$RUN_OUT")" "the dead letter, as the watcher sees it"
start_bg waiter tobus-state --redis "$(as watcher)" wait deploy version=2 --timeout "$(secs 30)"
waiter=$E2E_LAST_PID
run set tobus-state --redis "$(as admin)" set deploy version=2
assert_rc 0 "tobus-state set under the admin user"
wait_proc "$waiter"
assert_eq 0 "$RC" "tobus-state wait under the watcher user saw the admin's change"
run watchstate tobus-state --redis "$(as watcher)" list
assert_rc 0 "tobus-state list under the watcher user"
assert_contains deploy "$(cat "$RUN_OUT")" "the records, as the watcher sees them"
run incr tobus-state --redis "$(as admin)" incr deploy n 5
assert_eq 5 "$(cat "$RUN_OUT")" "tobus-state incr under the admin user"
run cas tobus-state --redis "$(as admin)" cas lock owner '' me
assert_rc 0 "tobus-state cas under the admin user"
run del tobus-state --redis "$(as admin)" del lock
assert_rc 0 "tobus-state del under the admin user"
run retry tobus-state --redis "$(as admin)" dead retry --all --to a
assert_rc 0 "tobus-state dead retry under the admin user"
wait_for -t 20 test "$(rcli XLEN "$NS:dead")" = 0 || fail "the retried dead letter is still dead"
run purge tobus-state --redis "$(as admin)" dead purge
assert_rc 0 "tobus-state dead purge under the admin user"

# A sender's user may not read the bus and inboxes: where a late message waits is not found, and
# the sender says why.
run late tobus-send --redis "$(as sender)" --to nobody -m x --wait --timeout 1s
assert_rc 124 "a message nobody serves times out"
assert_contains "it waits at a stream this Redis user may not read (its ACL)" "$(cat "$RUN_ERR")" \
  "the sender says why it cannot tell where the message waits"

# A module killed while it handles a message: another instance takes the message over (XAUTOCLAIM,
# XPENDING) and runs it alone (its suspects hash), under the module's user.
start_bg module.s1 tobus-module --redis "$(as module-s)" s -- sh -c 'touch "$T/s.started"; sleep 30; cat'
s1=$E2E_LAST_PID
tobus-send --redis "$(as sender)" --to s -m z --wait --timeout "$(secs 60)" >"$T/s.out" 2>"$T/s.err" &
spid=$!
wait_for -t 20 test -e "$T/s.started" || fail "s never started its handler"
kill -KILL "$s1"
start_bg module.s2 tobus-module --redis "$(as module-s)" s --claim-after 1s -- cat
wait_proc "$spid"
assert_eq 0 "$RC" "the message taken over by another instance of s (stderr: $(cat "$T/s.err"))"
assert_eq z "$(cat "$T/s.out")" "its result"

# The module's records were written under its user: instances, the state record, job records.
assert_eq 1 "$(rcli HLEN "$NS:module:a")" "module a's instance (heartbeat)"
stop_proc "$a_pid"
assert_eq 143 "$RC" "module a stops on SIGTERM"
run done tobus-state --redis "$(as watcher)" get module:a
assert_contains "status=stopped" "$(cat "$RUN_OUT")" "module a's state record says it stopped"
assert_match "^done=[1-9]" "$(tr ' ' '\n' <"$RUN_OUT")" "module a's state record counts what it did"
run jobs tobus-state --redis "$(as watcher)" jobs --json
assert_match '"status":"done","module":"b"' "$(cat "$RUN_OUT")" "b's job records"
assert_match '"status":"done","module":"j"' "$(cat "$RUN_OUT")" "the join's job record"

# Nothing any program did was refused: no NOPERM in a log.
if grep -l "NOPERM\|can't" "$T"/*.log; then fail "a program was refused something: $(grep -h "NOPERM\|can't" "$T"/*.log | head -5)"; fi

# What a module's user may not do: each refused with NOPERM.
refused() {  # refused USER CMD...: redis-cli as USER answers NOPERM (or a script's refusal)
  local user=$1 out
  shift
  out=$(redis-cli -s "$T/redis.sock" --user "$NS-$user" --pass "$pw" --no-auth-warning "$@" 2>&1)
  grep -Eq "NOPERM|can't" <<<"$out" || fail "$user may run '$*': $out"
}
rcli XADD "$NS:reply:someone" '*' v 1 >/dev/null
rcli HSET "$NS:join:b:g1" part:0 x >/dev/null
refused module-a XRANGE "$NS:in:b" - +
refused module-a XREADGROUP GROUP module c1 COUNT 1 STREAMS "$NS:in:b" '>'
refused module-a XADD "$NS:in:b" '*' v 1 route b
refused module-a XGROUP CREATE "$NS:in:b" evil 0
refused module-a HGETALL "$NS:module:b"
refused module-a HGETALL "$NS:suspect:b"
refused module-a HGETALL "$NS:state:module:b"
refused module-a HGETALL "$NS:join:b:g1"
refused module-a HGETALL "$NS:state:job:x"
refused module-a SADD "$NS:type:other" a
refused module-a XRANGE "$NS:bus" - +
refused module-a XRANGE "$NS:dead" - +
refused module-a XRANGE "$NS:reply:someone" - +
refused module-a DEL "$NS:dead"
refused module-a XTRIM "$NS:dead" MAXLEN 0
refused module-a XDEL "$NS:dead" 0-1
refused module-a PEXPIRE "$NS:dead" 1
refused module-a UNLINK "$NS:bus"
refused module-a FLUSHALL
refused module-a FLUSHDB
refused module-a CONFIG GET '*'
refused module-a KEYS '*'
# DEBUG is refused before ACLs look at it, SHUTDOWN would end the test: asked of ACL DRYRUN.
dry_refused() {  # dry_refused USER CMD...
  local user=$1 out
  shift
  out=$(rcli ACL DRYRUN "$NS-$user" "$@" 2>&1)
  assert_contains "no permissions" "$out" "ACL DRYRUN $user $*"
}
dry_refused module-a DEBUG SLEEP 0
dry_refused module-a SHUTDOWN
dry_refused module-a ACL SETUSER "$NS-module-a" '+@all'
dry_refused module-a MODULE LIST
dry_refused module-a CLIENT KILL ID 1
refused module-a EVAL "return redis.call('XRANGE', KEYS[1], '-', '+')" 1 "$NS:bus"
refused module-a EVAL "return redis.call('DEL', KEYS[1])" 1 "$NS:bus"
refused sender XRANGE "$NS:in:a" - +
refused sender XADD "$NS:in:a" '*' v 1
refused sender XRANGE "$NS:bus" - +
refused sender HGETALL "$NS:state:deploy"
refused watcher XADD "$NS:bus" '*' v 1
refused watcher DEL "$NS:dead"
refused watcher HSET "$NS:state:deploy" version 3
refused watcher EVAL "return 1" 0
refused admin FLUSHALL
refused admin DEL "$NS:bus"
refused bus FLUSHALL
refused bus DEL "$NS:dead"
[[ $(rcli XLEN "$NS:in:b") != 0 || $(rcli EXISTS "$NS:in:b") == 1 ]] || fail "b's inbox is gone"

# The same rules as an aclfile: a redis-server loads them, and they are the rules ACL SETUSER made.
{
  for role in "${roles[@]}"; do
    # shellcheck disable=SC2086
    tobus-state acl $role --aclfile --password-file "$T/pw" || fail "tobus-state acl $role --aclfile"
  done
  echo "user default on nopass ~* &* +@all"
} >"$T/users.acl"
redis-server --port 0 --unixsocket "$T/redis2.sock" --unixsocketperm 700 --save '' --appendonly no \
  --dir "$T" --aclfile "$T/users.acl" >"$T/redis2.log" 2>&1 &
E2E_PIDS+=($!)
wait_for -t 20 redis-cli -s "$T/redis2.sock" ping || fail "redis-server does not take the aclfile: $(tail -5 "$T/redis2.log")"
assert_eq "${#roles[@]}" "$(redis-cli -s "$T/redis2.sock" ACL LIST | grep -c " $NS-")" "the aclfile's users"
# Redis lists the commands of a selector in no fixed order: the words of each user are compared.
words() { grep " $NS-" | tr -d '()' | tr ' ' '\n' | sort; }
assert_eq "$(rcli ACL LIST | words)" "$(redis-cli -s "$T/redis2.sock" ACL LIST | words)" \
  "the aclfile's users are those ACL SETUSER made"

# What the programs send and do not check the answer of (maintenance, records, a stop): allowed.
dry_allowed() {  # dry_allowed USER CMD...
  local user=$1 out
  shift
  out=$(rcli ACL DRYRUN "$NS-$user" "$@" 2>&1)
  assert_eq OK "$out" "ACL DRYRUN $user $*"
}
for key in "$NS:bus" "$NS:in:a"; do
  dry_allowed bus XINFO GROUPS "$key"
  dry_allowed bus XPENDING "$key" module
  dry_allowed bus XTRIM "$key" MINID 0-1
done
dry_allowed bus XAUTOCLAIM "$NS:bus" bus c1 1000 0-0 COUNT 1
dry_allowed bus HGET "$NS:modules" a
dry_allowed bus HSET "$NS:modules" a '{}'
dry_allowed bus CLIENT UNBLOCK 1
dry_allowed module-a XCLAIM "$NS:in:a" module c1 0 1-1 JUSTID
dry_allowed module-a XAUTOCLAIM "$NS:in:a" module c1 1000 0-0 COUNT 1
dry_allowed module-a XPENDING "$NS:in:a" module 1-1 1-1 1 c1
dry_allowed module-a HSET "$NS:module:a" i '{}'
dry_allowed module-a HDEL "$NS:module:a" i
dry_allowed module-a HSET "$NS:suspect:a" 1-1 '1 i'
dry_allowed module-a HGET "$NS:suspect:a" 1-1
dry_allowed module-a HDEL "$NS:suspect:a" 1-1
dry_allowed module-a HSET "$NS:modules" a '{}'
dry_allowed module-a PEXPIRE "$NS:state:job:1-1" 1000
dry_allowed module-a PEXPIRE "$NS:join:a:g:lock" 1000
dry_allowed module-a CLIENT UNBLOCK 1
dry_allowed module-a SCRIPT LOAD 'return 1'
dry_allowed sender DEL "$NS:reply:h:1:ab"
dry_allowed watcher XINFO GROUPS "$NS:in:a"
dry_allowed watcher CLIENT UNBLOCK 1

# Without --password-file the user is created off: it cannot log in until a password is set.
run nopw tobus-state acl sender --user "$NS-nopw"
assert_rc 0 "tobus-state acl without a password file"
assert_match "^ACL SETUSER $NS-nopw reset off resetchannels -@all " "$(cat "$RUN_OUT")" "a user without a password is off"
assert_contains "is created off" "$(cat "$RUN_ERR")" "and a warning says so"
assert_eq OK "$(rcli <"$RUN_OUT")" "redis-server takes it"
out=$(redis-cli -s "$T/redis.sock" --user "$NS-nopw" --pass '' --no-auth-warning PING 2>&1)
assert_match "WRONGPASS|disabled" "$out" "the user without a password cannot log in"
# Bad roles, names and files: exit 2, nothing on stdout.
for bad in "module" "module a*b" "root" "bus a" "watcher --type t" "module a --type a:b" "sender --user a*b" \
  "sender --password-file $T/none"; do
  set -f  # a*b is a name, not a glob
  # shellcheck disable=SC2086
  run bad tobus-state acl $bad
  set +f
  assert_rc 2 "tobus-state acl $bad"
  assert_empty_file "$RUN_OUT" "tobus-state acl $bad: nothing on stdout"
  assert_match "^tobus-state: error: " "$(head -1 "$RUN_ERR")" "tobus-state acl $bad: one error line"
done

# A program under the wrong user: exit 5 (permission denied), one line naming the refusal.
denied() {  # denied LABEL CMD...
  local label=$1
  shift
  run denied timeout "$(secs 20)" "$@" </dev/null
  assert_rc 5 "$label"
  [[ $(wc -l <"$RUN_ERR") == 1 ]] || fail "$label: expected one line on stderr, got: $(cat "$RUN_ERR")"
  assert_match "NOPERM|can't" "$(cat "$RUN_ERR")" "$label: stderr names the refusal"
  assert_empty_file "$RUN_OUT" "$label: nothing on stdout"
  note "$label: $(cat "$RUN_ERR")"
}
denied "module b under module a's user" tobus-module --redis "$(as module-a)" b -- cat
denied "a module joining a type its rules do not name" tobus-module --redis "$(as module-b)" b --type loud -- cat
denied "tobus-send under the watcher user" tobus-send --redis "$(as watcher)" --to a -m x
denied "tobus-state set under the watcher user" tobus-state --redis "$(as watcher)" set deploy version=3
denied "tobus-state dead purge under the watcher user" tobus-state --redis "$(as watcher)" dead purge
denied "tobus-watch under the sender user" tobus-watch --redis "$(as sender)" --count 1
denied "tobus-bus under a module's user" tobus-bus --redis "$(as module-a)"
pass
