#!/usr/bin/env bash
# 10,000 lines come back complete and in input order, through parallel handlers (-j 4) and
# through pass-through hops.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
start_module m -j 4 -- cat
start_module p1
start_module p2

seq 10000 >"$T/input.txt"

run cat4 tobus-send --to m --wait --timeout 150s <"$T/input.txt"
assert_rc 0 "seq 10000 | tobus-send --to m --wait (tobus-module m -j 4 -- cat)"
assert_same_file "$T/input.txt" "$RUN_OUT" "output of 10,000 lines through 'cat' with -j 4"

run pass tobus-send --to p1,p2,p1 --wait --timeout 150s <"$T/input.txt"
assert_rc 0 "seq 10000 | tobus-send --to p1,p2,p1 --wait"
assert_same_file "$T/input.txt" "$RUN_OUT" "output of 10,000 lines through 3 pass-through hops"

pass
