#!/usr/bin/env bash
# --init: handler templates in sh and python that run as valid handlers, document the contract,
# report progress through tobus-state when TOBUS_JOB is set, and are never overwritten.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

langs=(sh)
if command -v python3 >/dev/null; then langs+=(python); else note "python3 not installed: sh only"; fi

# A fake tobus-state that logs its arguments, to see what a template reports.
mkdir -p "$T/bin"
printf '#!/bin/sh\necho "$*" >>%s/state.log\n' "$T" >"$T/bin/tobus-state"
chmod +x "$T/bin/tobus-state"

for lang in "${langs[@]}"; do
    name=h-$lang
    run "init-$lang" "$D" init "$T" "$name" "$lang"
    assert_rc 0 "init $lang"
    assert_eq "$T/$name" "$(cat "$RUN_OUT")" "init $lang: the path"
    [[ -x $T/$name ]] || fail "init $lang: not executable"
    for word in TOBUS_ID TOBUS_MODULE TOBUS_FROM TOBUS_ROUTE TOBUS_ATTEMPT TOBUS_REDIS TOBUS_NAMESPACE \
        TOBUS_HEADER_ 'tobus-state set "$TOBUS_JOB" progress=40' 'exit 75'; do
        grep -qF -- "$word" "$T/$name" || fail "init $lang: the template does not mention $word"
    done

    # A valid handler as written: the payload through, exit 0, a note on stderr.
    run "once-$lang" "$D" once -n "$name" -m 'hello
world' -- "$T/$name"
    assert_rc 0 "$lang template under once"
    assert_bytes "$RUN_OUT" 'hello\nworld' "$lang template: result"
    assert_contains "handling " "$(cat "$RUN_ERR")" "$lang template: note on stderr"
    assert_eq "would send to the bus: route ends here, rc 0" "$(verdict)" "$lang template: verdict"

    # Binary payloads pass through.
    printf 'a\0b\377' >"$T/bin.in"
    PATH=$T/bin:$PATH TOBUS_JOB=job:$name:1 "$T/$name" <"$T/bin.in" >"$T/bin.out" 2>"$T/bin.err" ||
        fail "$lang template: exit $? on a binary payload: $(cat "$T/bin.err")"
    assert_same_file "$T/bin.in" "$T/bin.out" "$lang template: binary payload"
    assert_eq "set job:$name:1 progress=0
set job:$name:1 progress=100" "$(cat "$T/state.log")" "$lang template: progress in the job's state"
    rm "$T/state.log"

    # Never overwritten.
    printf 'mine' >"$T/$name"
    run "again-$lang" "$D" init "$T" "$name" "$lang"
    assert_rc 1 "init $lang over an existing file"
    assert_eq "svc-driver: error: '$T/$name' exists, not overwriting it" "$(cat "$RUN_ERR")" \
        "init $lang over an existing file: message"
    assert_bytes "$T/$name" 'mine' "init $lang: the existing file is untouched"
done

run badlang "$D" init "$T" x perl
assert_rc 2 "init with an unknown language"
assert_eq "svc-driver: error: unknown language 'perl': sh or python" "$(cat "$RUN_ERR")" "unknown language"
run badname "$D" init "$T" ../x sh
assert_rc 2 "init with a bad name"
[[ ! -e $T/../x ]] || fail "init wrote outside its dir"

pass
