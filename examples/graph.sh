#!/usr/bin/env bash
# The original toBus README's service graph, run for real:
#
#   ServiceA -> ServiceB ->
#                            -> ServiceE
#   ServiceC -> ServiceD ->
#
# Two messages sent with one correlation id travel A,B,E and C,D,E; E is started with --join 2,
# so it runs once on both results and both senders get its answer.
# Usage: examples/graph.sh [DIR-WITH-THE-PROGRAMS]  (needs a bus: TOBUS_REDIS, or the embedded one)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build/tools}
[ -x "$bin/tobus-module" ] && PATH=$bin:$PATH

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
tobus-module A -- sed -u 's/$/ >A/' & pids+=($!)
tobus-module B -- sed -u 's/$/ >B/' & pids+=($!)
tobus-module C -- sed -u 's/$/ >C/' & pids+=($!)
tobus-module D -- sed -u 's/$/ >D/' & pids+=($!)
# E joins the two branches: its stdin holds both results, one per line.
tobus-module E --join 2 -- sh -c 'sort | paste -sd"|" - | tr -d "\n"; printf " >E"' & pids+=($!)

id=graph-$$
tobus-send --to A,B,E --correlation "$id" -m left --wait --timeout 30s &
left=$!
tobus-send --to C,D,E --correlation "$id" -m right --wait --timeout 30s
wait "$left"
