# docs/protocol.md's redis-cli examples work as written: its console blocks run in order, against
# a private embedded bus, and print what the page shows.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/console.sh"

run_console "$TOBUS_SOURCE_DIR/docs/protocol.md"
finish
