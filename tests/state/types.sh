#!/usr/bin/env bash
# tobus-state types: the types that real tobus-module processes joined, with their modules, plain
# and --json; --names (what the completions use), bounded when Redis does not answer; a key of
# another kind under the type prefix is not a type; it only reads.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
[[ -x $TOBUS_BIN_DIR/tobus-state ]] || setup_fail "tobus-state not built"

# No type yet: the header only; --names and --json print nothing.
run empty tobus-state types
assert_rc 0 "types with no type"
assert_bytes "$RUN_OUT" 'TYPE  MODULES\n' "types with no type"
run empty-names tobus-state types --names
assert_rc 0 "types --names with no type"
assert_empty_file "$RUN_OUT" "types --names with no type"

# A type written by hand, in a namespace of its own: listing it changes nothing in Redis.
rcli SADD "hand$NS:type:t1" m2 m1 >/dev/null
rcli DEBUG DIGEST >"$T/digest.before"
run hand tobus-state -n "hand$NS" types
assert_bytes "$RUN_OUT" 'TYPE  MODULES\nt1    m1,m2\n' "types of a type written by hand"
run hand-names tobus-state -n "hand$NS" types --names
assert_bytes "$RUN_OUT" 't1\n' "types --names of a type written by hand"
rcli DEBUG DIGEST >"$T/digest.after"
assert_same_file "$T/digest.before" "$T/digest.after" "types changed nothing in Redis"

start_bus
start_module en --type greeter -- cat
start_module fr --type greeter --type polite -- cat
has_types() { [[ $(rcli SCARD "$NS:type:greeter") == 2 && $(rcli SCARD "$NS:type:polite") == 1 ]]; }
wait_for -t 30 has_types || fail "the modules never joined their types"
# A key of another kind under the prefix, written by hand, is not a type.
rcli SET "$NS:type:junk" 1 >/dev/null

run table tobus-state types
assert_rc 0 "types"
assert_empty_file "$RUN_ERR" "types: stderr"
assert_bytes "$RUN_OUT" 'TYPE     MODULES\ngreeter  en,fr\npolite   fr\n' "types: the table"
run json tobus-state types --json
assert_rc 0 "types --json"
assert_bytes "$RUN_OUT" '{"type":"greeter","modules":["en","fr"]}\n{"type":"polite","modules":["fr"]}\n' \
    "types --json"
run names tobus-state types --names
assert_rc 0 "types --names"
assert_bytes "$RUN_OUT" 'greeter\npolite\n' "types --names"

run names-json tobus-state types --names --json
assert_rc 2 "types: --names with --json"
# Another namespace has its own types.
run other tobus-state -n other$NS types --names
assert_rc 0 "types --names in another namespace"
assert_empty_file "$RUN_OUT" "types --names in another namespace"

# Bounded: a Redis that does not answer (paused) gives up within about a second.
rcli CLIENT PAUSE 3000 ALL >/dev/null
t0=$(date +%s%3N)
run names-paused tobus-state types --names
took=$(($(date +%s%3N) - t0))
assert_rc 124 "types --names when Redis does not answer"
assert_empty_file "$RUN_OUT" "types --names when Redis does not answer: stdout"
((took < 2500)) || fail "types --names took ${took}ms when Redis did not answer"
rcli PING >/dev/null  # answered once the pause is over
run names-down env TOBUS_REDIS="unix://$T/nothing.sock" tobus-state types --names
assert_rc 3 "types --names when Redis is unreachable"

pass
