#!/usr/bin/env bash
# tobus-state get, set, del, list, cas and incr: stdout bytes, exit codes, what is in Redis, and
# the change event each write appends to NS:state-changes (none for a write that changed nothing).
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
[[ -x $TOBUS_BIN_DIR/tobus-state ]] || setup_fail "tobus-state not built"

changes=$NS:state-changes
# The newest change event's fields and values, space-separated.
last_event() {
    rcli --raw EVAL 'local e = redis.call("XREVRANGE", KEYS[1], "+", "-", "COUNT", 1)[1]
        if not e then return "" end
        return table.concat(e[2], " ")' 1 "$changes"
}
events() { xlen "$changes"; }

# --- set and get --------------------------------------------------------------------------------

run set tobus-state set cfg a=1 'b=hello world' c= 'd=x=y'
assert_rc 0 "set cfg"
assert_empty_file "$RUN_OUT" "set prints nothing"
assert_empty_file "$RUN_ERR" "set logs nothing"
assert_eq 'hello world' "$(rcli HGET "$NS:state:cfg" b)" "HGET b after set"
assert_eq 'x=y' "$(rcli HGET "$NS:state:cfg" d)" "a value is split from its field at the first ="
assert_eq 'name cfg op set field a value 1 field b value hello world field c value  field d value x=y' \
    "$(last_event)" "the change event of set"
assert_eq 1 "$(events)" "events after one set"

run get tobus-state get cfg
assert_rc 0 "get cfg"
assert_bytes "$RUN_OUT" 'a=1\nb=hello world\nc=\nd=x=y\n' "get cfg: FIELD=VALUE lines, sorted"
assert_empty_file "$RUN_ERR" "get cfg: stderr"

run get-field tobus-state get cfg b
assert_rc 0 "get cfg b"
assert_bytes "$RUN_OUT" 'hello world\n' "get cfg b"
run get-empty tobus-state get cfg c
assert_rc 0 "get cfg c (an empty value exists)"
assert_bytes "$RUN_OUT" '\n' "get cfg c"

run get-json tobus-state get cfg --json
assert_rc 0 "get cfg --json"
assert_bytes "$RUN_OUT" '{"a":"1","b":"hello world","c":"","d":"x=y"}\n' "get cfg --json"
run get-field-json tobus-state get --json cfg b
assert_rc 0 "get --json cfg b"
assert_bytes "$RUN_OUT" '{"b":"hello world"}\n' "get --json cfg b"

# Not found is an answer: exit 1, nothing on stdout, silent unless -v.
run get-nofield tobus-state get cfg nope
assert_rc 1 "get of a missing field"
assert_empty_file "$RUN_OUT" "get of a missing field: stdout"
assert_empty_file "$RUN_ERR" "get of a missing field: stderr"
run get-norecord tobus-state get nothing
assert_rc 1 "get of a missing record"
assert_empty_file "$RUN_OUT" "get of a missing record: stdout"
assert_empty_file "$RUN_ERR" "get of a missing record: stderr"
run get-norecord-v tobus-state -v get nothing
assert_rc 1 "get -v of a missing record"
assert_eq 1 "$(wc -l <"$RUN_ERR")" "get -v of a missing record says so in one line"
assert_contains "'nothing'" "$(cat "$RUN_ERR")" "get -v names the record"
run get-norecord-json tobus-state get nothing --json
assert_rc 1 "get --json of a missing record"
assert_empty_file "$RUN_OUT" "get --json of a missing record: stdout"

# Bytes: the bare value as it is; FIELD=VALUE lines escaped so a field stays on one line.
rcli HSET "$NS:state:bin" v "$(printf 'line1\nline2\t\\\001end')" >/dev/null
run bin-field tobus-state get bin v
assert_bytes "$RUN_OUT" 'line1\nline2\t\\\001end\n' "get bin v: the bytes as they are"
run bin-record tobus-state get bin
assert_bytes "$RUN_OUT" 'v=line1\\nline2\\t\\\\\\x01end\n' "get bin: escaped"

# Options after the command; another namespace sees other records.
run other-ns tobus-state get cfg a -n "other$NS"
assert_rc 1 "get in another namespace (-n after the command)"
run same-ns tobus-state get cfg a --namespace "$NS"
assert_rc 0 "get with --namespace after the command"
assert_bytes "$RUN_OUT" '1\n' "get cfg a"

# --- incr -----------------------------------------------------------------------------------------

run incr1 tobus-state incr cnt n
assert_rc 0 "incr of an absent field"
assert_bytes "$RUN_OUT" '1\n' "incr of an absent field starts at 0"
run incr41 tobus-state incr cnt n 41
assert_bytes "$RUN_OUT" '42\n' "incr by 41"
run incrneg tobus-state incr cnt n -50
assert_rc 0 "incr by a negative amount"
assert_bytes "$RUN_OUT" '\x2d8\n' "incr by -50 (printf: \\x2d is -)"
assert_eq 'name cnt op incr field n value -8 by -50' "$(last_event)" "the change event of incr"
assert_eq -8 "$(rcli HGET "$NS:state:cnt" n)" "HGET after incr"
# Exact beyond 2^53 (a Lua number would round it).
tobus-state set cnt big=9007199254740993
run incrbig tobus-state incr cnt big
assert_bytes "$RUN_OUT" '9007199254740994\n' "incr past 2^53 is exact"

tobus-state set cnt s=abc
before=$(events)
run incr-text tobus-state incr cnt s
assert_rc 4 "incr of a non-integer value"
assert_empty_file "$RUN_OUT" "incr of a non-integer value: stdout"
assert_eq 1 "$(wc -l <"$RUN_ERR")" "incr of a non-integer value: one line on stderr"
assert_contains "'abc' is not an integer" "$(cat "$RUN_ERR")" "incr of a non-integer value: the reason"
assert_eq abc "$(rcli HGET "$NS:state:cnt" s)" "the value is left as it was"
assert_eq "$before" "$(events)" "a failed incr appends no event"
tobus-state set cnt max=9223372036854775807
run incr-overflow tobus-state incr cnt max
assert_rc 4 "incr past 2^63-1"
assert_contains "overflow" "$(cat "$RUN_ERR")" "incr past 2^63-1: the reason"
run incr-bad-n tobus-state incr cnt n x
assert_rc 2 "incr by a non-number"
assert_empty_file "$RUN_OUT" "incr by a non-number: stdout"

# --- cas ------------------------------------------------------------------------------------------

before=$(events)
run cas-take tobus-state cas lock owner '' me
assert_rc 0 "cas of an absent field with EXPECTED ''"
assert_empty_file "$RUN_OUT" "cas prints nothing"
assert_eq me "$(rcli HGET "$NS:state:lock" owner)" "the winner's value"
assert_eq 'name lock op cas field owner value me' "$(last_event)" "the change event of cas"
run cas-lose tobus-state cas lock owner '' you
assert_rc 1 "cas that lost"
assert_empty_file "$RUN_OUT" "cas that lost: stdout"
assert_empty_file "$RUN_ERR" "cas that lost: stderr (silent without -v)"
assert_eq me "$(rcli HGET "$NS:state:lock" owner)" "a lost cas changes nothing"
run cas-lose-v tobus-state cas lock owner other you -v
assert_rc 1 "cas -v that lost"
assert_contains "'me'" "$(cat "$RUN_ERR")" "cas -v says what it found"
run cas-free tobus-state cas lock owner me ''
assert_rc 0 "cas back to ''"
assert_eq '' "$(rcli HGET "$NS:state:lock" owner)" "the field is empty"
assert_eq 1 "$(rcli HEXISTS "$NS:state:lock" owner)" "an emptied field still exists"
run cas-empty tobus-state cas lock owner '' you
assert_rc 0 "EXPECTED '' matches an empty field"
assert_eq $((before + 3)) "$(events)" "one event per cas that won, none for those that lost"

# --- del ------------------------------------------------------------------------------------------

run del-fields tobus-state del cfg a b nope
assert_rc 0 "del of fields"
assert_empty_file "$RUN_OUT" "del prints nothing"
assert_eq 0 "$(rcli HEXISTS "$NS:state:cfg" a)" "field a after del"
assert_eq 'x=y' "$(rcli HGET "$NS:state:cfg" d)" "other fields stay"
assert_eq 'name cfg op del field a field b' "$(last_event)" "the change event of del names the fields that went"
before=$(events)
run del-none tobus-state del cfg a
assert_rc 1 "del of a field that is not there"
assert_eq "$before" "$(events)" "a del of nothing appends no event"
run del-all tobus-state del cfg
assert_rc 0 "del of the whole record"
assert_eq 0 "$(rcli EXISTS "$NS:state:cfg")" "the record is gone"
assert_eq 'name cfg op del' "$(last_event)" "the change event of a whole-record del"
run del-gone tobus-state del cfg
assert_rc 1 "del of a missing record"

# --- list -----------------------------------------------------------------------------------------

tobus-state set job:2 status=done
tobus-state set job:1 status=running
run list tobus-state list
assert_rc 0 "list"
assert_bytes "$RUN_OUT" 'bin\ncnt\njob:1\njob:2\nlock\n' "list: every record, sorted"
run list-pat tobus-state list 'job:*'
assert_bytes "$RUN_OUT" 'job:1\njob:2\n' "list 'job:*'"
run list-json tobus-state list 'job:*' --json
assert_bytes "$RUN_OUT" '["job:1","job:2"]\n' "list --json"
run list-none tobus-state list 'zzz*'
assert_rc 0 "list with no match"
assert_empty_file "$RUN_OUT" "list with no match: stdout"
run list-none-json tobus-state list 'zzz*' --json
assert_bytes "$RUN_OUT" '[]\n' "list --json with no match"
[[ $(rcli EXISTS "$NS:state-changes") == 1 ]] || fail "no change stream"
run list-q tobus-state list '?nt'
assert_bytes "$RUN_OUT" 'cnt\n' "list with ?"

# --- usage ----------------------------------------------------------------------------------------

check_usage() {
    local what=$1
    shift
    run usage tobus-state "$@"
    assert_rc 2 "$what"
    assert_empty_file "$RUN_OUT" "$what: stdout"
    assert_eq "Try 'tobus-state --help'." "$(tail -n1 "$RUN_ERR")" "$what: the hint"
    assert_eq 2 "$(wc -l <"$RUN_ERR")" "$what: one line and the hint"
}
check_usage "no command"
check_usage "an unknown command" bogus
check_usage "set without fields" set x
check_usage "set of a field without =" set x novalue
check_usage "set of an empty field" set x =1
check_usage "a name with a space" set 'bad name' a=1
check_usage "a field with a space" set x 'bad field=1'
check_usage "a name of 257 characters" get "$(printf 'n%.0s' {1..257})"
check_usage "a field with a #" set x 'a#b=1'
check_usage "cas with three arguments" cas x f a
check_usage "incr without a field" incr x
check_usage "an unknown option" get x --nope
run name200 tobus-state set "$(printf 'n%.0s' {1..200})" 'a@b:c/d.e-f_g=1'
assert_rc 0 "a name of 200 characters and a field of the whole alphabet"
assert_eq 0 "$(rcli EXISTS "$NS:state:bad name")" "nothing written by a bad command"

# --- EVALSHA: the script's sha is the one Redis computes, so it is not sent again --------------

rcli CONFIG RESETSTAT >/dev/null
for v in 1 2 3; do tobus-state set sha "a=$v"; done
stats=$(rcli INFO commandstats | tr -d '\r')
assert_match '^cmdstat_evalsha:calls=3,' "$stats" "three sets, three EVALSHA"
assert_eq '' "$(grep '^cmdstat_eval:' <<<"$stats")" "no EVAL once the script is loaded"

# --- the change stream is capped ----------------------------------------------------------------

rcli EVAL 'for i = 1, 10500 do redis.call("XADD", KEYS[1], "*", "name", "filler", "op", "set") end' 1 "$changes" >/dev/null
tobus-state set capped a=1
n=$(events)
((n >= 10000 && n < 10500)) || fail "the change stream holds $n events after a write; expected about 10000 (MAXLEN ~ 10000)"

# --- Redis unreachable --------------------------------------------------------------------------

run unreachable env TOBUS_REDIS="unix://$T/nothing.sock" tobus-state get cfg
assert_rc 3 "Redis unreachable"
assert_empty_file "$RUN_OUT" "Redis unreachable: stdout"
assert_eq 1 "$(wc -l <"$RUN_ERR")" "Redis unreachable: one line"

pass
