#!/usr/bin/env bash
# Keys written by hand in the namespace, of the wrong type or holding junk: every verb gives one
# clear line naming the key (exit 4) or shows the junk as unknown, writes nothing half-way, and
# never crashes (a crash would be exit 134 or 139, or a message on stderr from the runtime).
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
[[ -x $TOBUS_BIN_DIR/tobus-state ]] || setup_fail "tobus-state not built"

# expect_bad_data NAME WORDS ARGS...: exit 4, nothing on stdout, one line on stderr containing WORDS.
expect_bad_data() {
    local name=$1 words=$2
    shift 2
    run "$name" tobus-state "$@"
    assert_rc 4 "tobus-state $*"
    assert_empty_file "$RUN_OUT" "tobus-state $*: stdout"
    assert_eq 1 "$(wc -l <"$RUN_ERR")" "tobus-state $*: one line on stderr"
    assert_contains "$words" "$(cat "$RUN_ERR")" "tobus-state $*: the error"
}
json_ok() {
    command -v jq >/dev/null || return 0
    jq -e . "$1" >/dev/null 2>&1 || fail "$2: not JSON: $(head -c 500 "$1")"
}

# --- a string where a record should be ----------------------------------------------------------

rcli SET "$NS:state:x" hello >/dev/null
tobus-state set good a=1
events=$(xlen "$NS:state-changes")
words="'$NS:state:x' holds a string, not a hash"
expect_bad_data get "$words" get x
expect_bad_data getf "$words" get x a
expect_bad_data getj "$words" get x --json
expect_bad_data set "$words" set x a=1
expect_bad_data del "$words" del x
expect_bad_data delf "$words" del x a
expect_bad_data cas "$words" cas x a '' 1
expect_bad_data incr "$words" incr x a
expect_bad_data wait "$words" wait x a=1 --timeout 5s
assert_eq hello "$(rcli GET "$NS:state:x")" "the string is left as it was"
assert_eq "$events" "$(xlen "$NS:state-changes")" "no change event for writes that failed"

run list tobus-state list
assert_rc 0 "list with a string among the records"
assert_bytes "$RUN_OUT" 'good\n' "list skips the string"
assert_contains "ignoring '$NS:state:x': it holds a string, not a hash" "$(cat "$RUN_ERR")" "list says what it skipped"
rcli HSET "$NS:state:bad name" a 1 >/dev/null
run list2 tobus-state list
assert_bytes "$RUN_OUT" 'good\n' "list skips a hash with a name tobus does not make"
assert_contains "not a valid state record name" "$(cat "$RUN_ERR")" "list says why"
rcli SET "$NS:state:job:s" x >/dev/null
run jobs tobus-state jobs
assert_rc 0 "jobs with a string job key"
assert_eq 1 "$(wc -l <"$RUN_OUT")" "jobs: the header only"

# Junk in the values of a record: shown escaped, and as valid JSON.
rcli HSET "$NS:state:junk" "$(printf 'f\001')" "$(printf 'a\377b\nc')" n notanumber >/dev/null
run junk tobus-state get junk
assert_rc 0 "get of a record with junk bytes"
assert_bytes "$RUN_OUT" 'f\\x01=a\\xffb\\nc\nn=notanumber\n' "get of a record with junk bytes"
run junkj tobus-state get junk --json
assert_rc 0 "get --json of a record with junk bytes"
json_ok "$RUN_OUT" "get --json of a record with junk bytes"
expect_bad_data incr-junk "'notanumber' is not an integer" incr junk n

# --- the change stream is not a stream ----------------------------------------------------------

rcli SET "$NS:state-changes" oops >/dev/null
words="'$NS:state-changes' holds a string, not a stream"
expect_bad_data set2 "$words" set y a=1
assert_eq 0 "$(rcli EXISTS "$NS:state:y")" "nothing written when the change stream is broken"
expect_bad_data wait2 "$words" wait good a=2 --timeout 5s
expect_bad_data watch "$words" watch
rcli DEL "$NS:state-changes" >/dev/null
# Junk events: wait still works, watch skips them.
rcli XADD "$NS:state-changes" '*' junk 1 >/dev/null
rcli XADD "$NS:state-changes" '*' name good op set field >/dev/null
run wait3 tobus-state wait good a=1 --timeout 1s
assert_rc 0 "wait with junk events in the change stream"

# --- the registry ---------------------------------------------------------------------------------

rcli HSET "$NS:modules" junk '{nope' arr '[1,2]' huge '{"first_seen":1e400,"last_seen":"x"}' \
    empty '' deep "$(printf '{"a":%.0s' {1..2000})" >/dev/null
rcli HSET "$NS:module:junk" i1 garbage i2 '{"host":5,"heartbeat":"soon"}' >/dev/null
rcli SET "$NS:module:arr" notahash >/dev/null
rcli SET "$NS:in:arr" notastream >/dev/null
run modules tobus-state modules
assert_rc 0 "modules with junk in the registry"
assert_empty_file "$RUN_ERR" "modules with junk: stderr"
assert_eq 'arr     down    unknown    unknown  unknown  unknown' "$(grep '^arr ' "$RUN_OUT")" "a module whose keys are all wrong"
assert_eq 'junk    down    0          0        0        unknown' "$(grep '^junk ' "$RUN_OUT")" "a module with junk JSON"
assert_eq 6 "$(wc -l <"$RUN_OUT")" "modules: the header and five modules"
run modulesj tobus-state modules --json
assert_rc 0 "modules --json with junk"
json_ok "$RUN_OUT" "modules --json with junk"
assert_contains '"first_seen":null,"last_seen":null' "$(grep '"name":"junk"' "$RUN_OUT")" "junk JSON is unknown: null"
run names tobus-state modules --names
assert_rc 0 "modules --names with junk"
assert_eq 'arr deep empty huge junk' "$(paste -sd' ' "$RUN_OUT")" "modules --names with junk"
rcli DEL "$NS:modules" >/dev/null
rcli RPUSH "$NS:modules" a >/dev/null
expect_bad_data modules2 "'$NS:modules' holds a list, not a hash" modules
expect_bad_data modules3 "'$NS:modules' holds a list, not a hash" modules --names

# --- dead letters -------------------------------------------------------------------------------

rcli XADD "$NS:dead" '*' junk 1 >/dev/null
rcli XADD "$NS:dead" '*' id 'has space' dead.reason 'r' dead.rc notanumber dead.at soon dead.hop 'bad hop' >/dev/null
rcli XADD "$NS:dead" '*' v 1 id ok route a payload "$(printf 'x\377')" dead.reason "$(printf 'two\nlines')" >/dev/null
run dlist tobus-state dead list
assert_rc 0 "dead list with junk"
assert_empty_file "$RUN_ERR" "dead list with junk: stderr"
assert_eq 3 "$(wc -l <"$RUN_OUT")" "dead list with junk: one line each"
assert_match '^[0-9]+-[0-9]+ [0-9T:.Z-]+ - - - unknown$' "$(sed -n 1p "$RUN_OUT")" "a dead letter with no dead fields"
assert_match '^[0-9]+-[0-9]+ [0-9T:.Z-]+ - bad hop - r$' "$(sed -n 2p "$RUN_OUT")" "a dead letter with bad values"
assert_match '^[0-9]+-[0-9]+ [0-9T:.Z-]+ ok - - two\\nlines$' "$(sed -n 3p "$RUN_OUT")" "a reason of two lines stays on one"
run dlistj tobus-state dead list --json
json_ok "$RUN_OUT" "dead list --json with junk"
for id in "$(sed -n 1p "$RUN_OUT" | cut -d'"' -f4)" 'has space' ok; do
    run dshow tobus-state dead show "$id"
    if [[ $id == 'has space' ]]; then
        assert_rc 0 "dead show of a message id with a space (the id field matches)"
    else
        assert_rc 0 "dead show $id"
    fi
    run dshowj tobus-state dead show "$id" --json
    json_ok "$RUN_OUT" "dead show --json $id"
done
rcli DEL "$NS:dead" >/dev/null
rcli SET "$NS:dead" x >/dev/null
words="'$NS:dead' holds a string, not a stream"
expect_bad_data dlist2 "$words" dead list
expect_bad_data dshow2 "$words" dead show x
expect_bad_data dretry2 "$words" dead retry --all
expect_bad_data dpurge2 "$words" dead purge
rcli DEL "$NS:dead" >/dev/null
rcli XADD "$NS:dead" '*' v 1 id r1 route a payload p dead.reason r >/dev/null
rcli SET "$NS:bus" notastream >/dev/null
expect_bad_data dretry3 "'$NS:bus' holds a string, not a stream" dead retry r1
assert_eq 1 "$(xlen "$NS:dead")" "a retry that could not write to the bus deletes nothing"

pass
