# --help: exit 0, the help on stdout, nothing on stderr, every option listed, the hidden
# --_options not. An unknown option: exit 2, nothing on stdout, one line and "Try 'PROG --help'."
# on stderr.
source "$(dirname "$0")/lib.sh"

for prog in "${PROGRAMS[@]}"; do
    for flag in --help -h; do
        "$prog" "$flag" >"$SCRATCH/out" 2>"$SCRATCH/err" </dev/null
        rc=$?
        check "$prog $flag: exit status 0 (got $rc)" test "$rc" -eq 0
        check "$prog $flag: text on stdout" test -s "$SCRATCH/out"
        check "$prog $flag: nothing on stderr" test ! -s "$SCRATCH/err"
    done
    help=$(cat "$SCRATCH/out")
    check "$prog --help: a usage line naming $prog" grep -qE "^Usage: $prog( |$)" <<<"$help"
    while IFS= read -r name; do
        [[ -z $name ]] && continue
        check "$prog --help: lists $name" grep -qE -- "(^|[ ,])$name([ ,=]|$)" <<<"$help"
    done < <(option_names "$prog")
    check "$prog --help: does not show the hidden --_options" eval '! grep -qF -- --_options <<<"$help"'

    "$prog" --no-such-option >"$SCRATCH/out" 2>"$SCRATCH/err" </dev/null
    rc=$?
    check "$prog --no-such-option: exit status 2 (got $rc)" test "$rc" -eq 2
    check "$prog --no-such-option: nothing on stdout" test ! -s "$SCRATCH/out"
    check "$prog --no-such-option: stderr is one line and the hint" \
        test "$(wc -l <"$SCRATCH/err")" -eq 2
    check "$prog --no-such-option: stderr ends with Try '$prog --help'." \
        test "$(tail -n1 "$SCRATCH/err")" = "Try '$prog --help'."
done

finish
