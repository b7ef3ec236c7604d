# --version prints "PROG VERSION" on stdout, nothing on stderr, and exits 0.
source "$(dirname "$0")/lib.sh"
: "${TOBUS_VERSION:?}"

for prog in "${PROGRAMS[@]}"; do
    "$prog" --version >"$SCRATCH/out" 2>"$SCRATCH/err" </dev/null
    rc=$?
    check "$prog --version: exit status 0 (got $rc)" test "$rc" -eq 0
    check "$prog --version: prints '$prog $TOBUS_VERSION' (got '$(cat "$SCRATCH/out")')" \
        test "$(cat "$SCRATCH/out")" = "$prog $TOBUS_VERSION"
    check "$prog --version: nothing on stderr" test ! -s "$SCRATCH/err"
done

finish
