# This test must fail (should_fail: true in meson.build), so that a harness that cannot fail is
# caught: it runs the man page check on a copy of man/ in which one program's page lacks one of
# its options. Should anything keep the defect from being planted, it exits 0, which meson then
# reports as an unexpected pass.
source "$(dirname "$0")/lib.sh"

prog=${PROGRAMS[0]}
names=$(option_table "$prog" | head -n1 | cut -f1)
[[ -n $names ]] || exit 0
term=$(sed 's/[^,]*/*&*/g; s/,/, /g' <<<"$names") # -h,--help -> *-h*, *--help*

src=$SCRATCH/src
mkdir -p "$src"
cp -r "$MAN_DIR" "$src/man" || exit 0
page=$src/man/$prog.1.scd
# Drop the option's entry: its term line and the indented lines after it.
awk -v term="$term" '
    index($0, term) == 1 { drop = 1; next }
    drop && /^\t/ { next }
    { drop = 0; print }' "$MAN_DIR/$prog.1.scd" >"$page"
if cmp -s "$page" "$MAN_DIR/$prog.1.scd"; then
    echo "could not remove '$term' from a copy of $prog.1.scd"
    exit 0
fi
echo "removed '$term' from a copy of $prog.1.scd; the man page check must now fail"

TOBUS_SOURCE_DIR=$src bash "$(dirname "$0")/man.sh"
