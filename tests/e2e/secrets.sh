#!/usr/bin/env bash
# The Redis password off the command line: --redis-password-file (TOBUS_REDIS_PASSWORD_FILE) and
# TOBUS_REDIS_PASSWORD work, the password is given once, it shows neither on stderr (even -vv) nor
# in any process's argv, and handlers and hooks get a TOBUS_REDIS without it unless the program was
# started with --pass-redis-password.
source "$(dirname "$0")/lib.sh"

pw='s3cr3t:pa@ss/word'  # ':', '@' and '/' must survive the file and the URL
rcli ACL SETUSER alice on ">$pw" '~*' '&*' '+@all' >/dev/null || setup_fail "cannot create an ACL user"
rcli ACL SETUSER default off >/dev/null || setup_fail "cannot turn the default user off"
# From here on only alice gets in, so nothing below works without her password.
rcli() { redis-cli -s "$T/redis.sock" --user alice --pass "$pw" --no-auth-warning "$@"; }
rcli PING >/dev/null || setup_fail "alice cannot log in"

printf '%s\n' "$pw" >"$T/pw"
chmod 600 "$T/pw"
export TOBUS_REDIS="unix://$T/redis.sock?user=alice" TOBUS_REDIS_PASSWORD_FILE=$T/pw

# A handler and a send hook that write down what they were told.
cat >"$T/tell.sh" <<'SH'
#!/bin/sh
printf 'redis=%s password=%s file=%s\n' "$TOBUS_REDIS" "${TOBUS_REDIS_PASSWORD-unset}" \
  "${TOBUS_REDIS_PASSWORD_FILE-unset}"
SH
chmod +x "$T/tell.sh"
start_bus -vv --on-send "$T/tell.sh >>$T/hook.env; cat >/dev/null"
bus=$E2E_LAST_PID
start_module tell -vv -- "$T/tell.sh"
module=$E2E_LAST_PID

run told tobus-send --to tell -m x --wait --timeout "$(secs 30)"
assert_rc 0 "a message through bus and module with the password from a file"
assert_eq "redis=unix://$T/redis.sock?user=alice password=unset file=unset" "$(cat "$RUN_OUT")" \
  "a handler's TOBUS_REDIS has no password, and neither password variable is passed on"
wait_for -t 20 test -s "$T/hook.env" || fail "the send hook never ran"
assert_eq "redis=unix://$T/redis.sock?user=alice password=unset file=unset" "$(head -1 "$T/hook.env")" \
  "a hook's TOBUS_REDIS has no password"

for pid in "$bus" "$module"; do
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q s3cr3t && fail "the password is in the argv of pid $pid"
done
# Logs at -vv name the address; none shows the password.
grep -l s3cr3t "$T"/*.log "$T/told.err" && fail "the password shows in a log"

# The environment instead of a file.
run env-pw env -u TOBUS_REDIS_PASSWORD_FILE TOBUS_REDIS_PASSWORD="$pw" tobus-send --to tell -m y --wait \
  --timeout "$(secs 30)"
assert_rc 0 "the password from TOBUS_REDIS_PASSWORD"
# The option beats the environment variable naming another file.
run option env TOBUS_REDIS_PASSWORD_FILE=/nonexistent tobus-send --redis-password-file "$T/pw" --to tell -m z \
  --wait --timeout "$(secs 30)"
assert_rc 0 "--redis-password-file over TOBUS_REDIS_PASSWORD_FILE"

# Given twice: refused before anything is sent.
run twice env TOBUS_REDIS="unix://$T/redis.sock?user=alice&password=other" tobus-send --to tell -m w
assert_rc 2 "a password in the URL and in a file"
assert_contains "the Redis password is given twice: in the URL and in the password file" "$(cat "$RUN_ERR")" \
  "the error names both places"
assert_empty_file "$RUN_OUT" "nothing on stdout when the password is given twice"

# A file that is not there, or empty: usage errors naming the file.
run missing tobus-send --redis-password-file "$T/nope" --to tell -m w
assert_rc 2 "a missing password file"
assert_contains "cannot use the Redis password file '$T/nope': No such file or directory" "$(cat "$RUN_ERR")" \
  "the error names the file and why"
: >"$T/empty"
run empty tobus-send --redis-password-file "$T/empty" --to tell -m w
assert_rc 2 "an empty password file"
assert_contains "its first line is empty" "$(cat "$RUN_ERR")" \
  "the error says the file is empty"

# A wrong password: Redis unavailable (exit 3), and the wrong password is not shown either.
printf 'wr0ngpass\n' >"$T/wrong"
chmod 600 "$T/wrong"
run wrong tobus-send --redis-password-file "$T/wrong" --to tell -m w
assert_rc 3 "a wrong password"
assert_contains "cannot authenticate" "$(cat "$RUN_ERR")" \
  "the error says authentication failed"
grep -q wr0ngpass "$RUN_ERR" && fail "the wrong password is shown: $(cat "$RUN_ERR")"

# A file other users may read still works, with a warning.
chmod 644 "$T/pw"
run loose tobus-send --to tell -m v --wait --timeout "$(secs 30)"
assert_rc 0 "a password file others may read"
assert_contains "can be read by other users (mode 0644); chmod 600 it" "$(cat "$RUN_ERR")" \
  "a warning about the mode"
chmod 600 "$T/pw"

# Let have the password: the hook's TOBUS_REDIS carries it (percent-escaped), still not its argv.
export TOBUS_NAMESPACE=pass
start_bus --pass-redis-password --on-send "$T/tell.sh >>$T/hook2.env; cat >/dev/null"
start_module tell --pass-redis-password -- "$T/tell.sh"
run passed tobus-send --to tell -m x --wait --timeout "$(secs 30)"
assert_rc 0 "a message with the password passed on"
assert_contains "redis=unix://$T/redis.sock?user=alice&password=s3cr3t%3Apa%40ss%2Fword " "$(cat "$RUN_OUT")" \
  "the handler was let have the password"
wait_for -t 20 test -s "$T/hook2.env" || fail "the second send hook never ran"
assert_contains "password=s3cr3t%3Apa%40ss%2Fword " "$(head -1 "$T/hook2.env")" \
  "the hook was let have the password"

finish
