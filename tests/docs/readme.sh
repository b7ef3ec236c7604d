# The README's tour works as written: its console blocks run in order, against a private
# embedded bus, and print what the README shows. Its links lead to files that exist.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/console.sh"

readme=$TOBUS_SOURCE_DIR/README.md
while IFS= read -r target; do
    check "README.md links to $target, which exists" test -e "$TOBUS_SOURCE_DIR/${target%%#*}"
done < <(grep -oE '\]\([^)#:]+(#[^)]*)?\)' "$readme" | sed 's/^](//; s/)$//' | sort -u)

run_console "$readme"
finish
