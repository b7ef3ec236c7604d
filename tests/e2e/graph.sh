#!/usr/bin/env bash
# examples/graph.sh, the original's A/B/C/D/E service graph, run as a user would: both senders
# print E's joined answer.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
example=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../examples" && pwd)/graph.sh

start_bus
run graph bash "$example" "$TOBUS_BIN_DIR"
assert_rc 0 "examples/graph.sh"
assert_bytes "$RUN_OUT" 'left >A >B|right >C >D >E\nleft >A >B|right >C >D >E\n' "both senders get E's joined answer"
pass
