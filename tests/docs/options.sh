# Each program's option table (PROG --_options, on which the completions are built) has the
# documented shape: NAMES<TAB>VALUE<TAB>DESCRIPTION, a long name for every option, VALUE one of
# the documented kinds, no name twice.
source "$(dirname "$0")/lib.sh"

for prog in "${PROGRAMS[@]}"; do
    option_table "$prog" >"$SCRATCH/table" 2>"$SCRATCH/err"
    rc=$?
    check "$prog --_options: exit status 0 (got $rc)" test "$rc" -eq 0
    check "$prog --_options: nothing on stderr" test ! -s "$SCRATCH/err"
    check "$prog --_options: prints options" test -s "$SCRATCH/table"
    while IFS= read -r line; do
        names=${line%%$'\t'*}
        value=${line#*$'\t'}
        desc=${value#*$'\t'}
        value=${value%%$'\t'*}
        label="$prog --_options: '${line//$'\t'/<TAB>}'"
        if [[ $(tr -cd '\t' <<<"$line" | wc -c) -ne 2 ]]; then
            fail "$label: want three fields separated by two tabs"
            continue
        fi
        problem=
        if [[ ! $names =~ ^(-[A-Za-z0-9],)?--[a-z][a-z0-9-]*$ ]]; then
            problem="names are not '-x,--long' or '--long'"
        elif [[ -n $value && " ${VALUE_KINDS[*]} " != *" $value "* ]]; then
            problem="VALUE '$value' is not one of ${VALUE_KINDS[*]}"
        elif [[ -z $desc ]]; then
            problem="no description"
        fi
        if [[ -n $problem ]]; then fail "$label: $problem"; else pass "$label"; fi
    done <"$SCRATCH/table"
    dups=$(cut -f1 "$SCRATCH/table" | tr , '\n' | sort | uniq -d)
    check "$prog --_options: no name twice${dups:+ (twice: $dups)}" test -z "$dups"
    for common in -r,--redis -n,--namespace --log-level -v,--verbose -q,--quiet --version -h,--help; do
        check "$prog --_options: has the common option $common" grep -qE "^$common"$'\t' "$SCRATCH/table"
    done
done

finish
