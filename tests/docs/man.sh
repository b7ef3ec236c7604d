# The man pages agree with the programs: each built program has a page with the required
# sections in order, its OPTIONS document exactly the program's options (names and value), its
# SYNOPSIS every command of the program, the prose mentions no option the program lacks, every
# environment variable in --help is in ENVIRONMENT, every exit status is one tobus(7) defines,
# and every tobus page referred to exists.
source "$(dirname "$0")/lib.sh"

REQUIRED_SECTIONS=(NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT "EXIT STATUS" EXAMPLES "SEE ALSO")
overview=$MAN_DIR/tobus.7.scd

# The section titles of an scdoc page, one per line, in order.
sections() { sed -n 's/^# //p' "$1"; }

# Exit statuses listed in the EXIT STATUS section of a page (*0*, *124*, *128+N*).
exit_statuses() { man_section "$1" "EXIT STATUS" | sed -n 's/^\*\([0-9][0-9+N]*\)\*.*/\1/p'; }

check "tobus(7) exists" test -f "$overview"
if [[ -f $overview ]]; then
    check "tobus(7) starts with its title line" test "$(head -n1 "$overview")" = "tobus(7)"
    check "tobus(7) starts with NAME" test "$(sections "$overview" | head -n1)" = NAME
    check "tobus(7) ends with SEE ALSO" test "$(sections "$overview" | tail -n1)" = "SEE ALSO"
    for s in DESCRIPTION ENVIRONMENT "EXIT STATUS" EXAMPLES; do
        check "tobus(7) has $s" grep -qxF "# $s" "$overview"
    done
fi

for prog in "${PROGRAMS[@]}"; do
    page=$MAN_DIR/$prog.1.scd
    if [[ ! -f $page ]]; then
        fail "$prog: no man page man/$prog.1.scd"
        continue
    fi
    check "$prog: title line is '$prog(1)'" test "$(head -n1 "$page")" = "$prog(1)"

    # Required sections, each once, in order; other sections may come between them.
    got=$(sections "$page" | grep -xF -f <(printf '%s\n' "${REQUIRED_SECTIONS[@]}") | paste -sd'|')
    want=$(printf '%s\n' "${REQUIRED_SECTIONS[@]}" | paste -sd'|')
    if [[ $got == "$want" ]]; then
        pass "$prog: sections $want"
    else
        fail "$prog: sections are '$got', want '$want'"
    fi
    check "$prog: NAME reads '$prog - ...'" grep -qE "^$prog - [^ ]" <(man_section "$page" NAME)
    check "$prog: SYNOPSIS names *$prog*" grep -qF "*$prog*" <(man_section "$page" SYNOPSIS)
    check "$prog: tobus(7) refers to $prog(1)" grep -qF "*$prog*(1)" "$overview"

    # The positional arguments --help lists appear in the SYNOPSIS (git's synopsis check).
    help=$("$prog" --help 2>/dev/null)
    while read -r positional _; do
        [[ -z $positional ]] && continue
        check "$prog: SYNOPSIS shows the argument $positional" \
            grep -qF "_${positional}_" <(man_section "$page" SYNOPSIS)
    done < <(awk '/^Positionals:/ { on = 1; next } /^[^ ]/ { on = 0 } on' <<<"$help")

    # Every command of the option table is in the SYNOPSIS.
    while IFS= read -r cmd; do
        [[ -z $cmd ]] && continue
        check "$prog: SYNOPSIS shows the command '$cmd'" grep -qE "\*$cmd[* ]" <(man_section "$page" SYNOPSIS)
    done < <(command_paths "$prog")

    # OPTIONS documents exactly the options of the option table, with the same value.
    table=$(table_names_values "$prog" | sort)
    documented=$(man_options "$page" | sort)
    if [[ -z $table ]]; then
        fail "$prog: --_options printed nothing"
    fi
    while IFS= read -r entry; do
        [[ -z $entry ]] && continue
        if grep -qxF -- "$entry" <<<"$documented"; then
            pass "$prog: OPTIONS documents '${entry/$'\t'/ }'"
        else
            fail "$prog: OPTIONS lacks '${entry/$'\t'/ }' (names and value as in --_options)"
        fi
    done <<<"$table"
    while IFS= read -r entry; do
        [[ -z $entry ]] && continue
        grep -qxF -- "$entry" <<<"$table" ||
            fail "$prog: OPTIONS documents '${entry/$'\t'/ }', which the program does not have"
    done <<<"$documented"

    # The prose outside OPTIONS, EXAMPLES and SEE ALSO mentions only options the program has.
    names=$(option_names "$prog")
    while IFS= read -r mentioned; do
        grep -qxF -- "$mentioned" <<<"$names" ||
            fail "$prog: the page mentions *$mentioned*, which the program does not have"
    done < <(awk '/^# / { skip = ($0 == "# EXAMPLES" || $0 == "# SEE ALSO") } !skip' "$page" |
        grep -oE '\*(-[A-Za-z0-9]|--[a-z][a-z0-9-]*)\*' | tr -d '*' | sort -u)

    # Every environment variable --help shows is in ENVIRONMENT.
    while IFS= read -r var; do
        check "$prog: ENVIRONMENT documents $var" \
            grep -qF "*$var*" <(man_section "$page" ENVIRONMENT)
    done < <(grep -oE 'Env:[A-Z_][A-Z0-9_]*' <<<"$help" | cut -d: -f2 | sort -u)

    # Exit statuses are the shared ones of tobus(7).
    while IFS= read -r status; do
        check "$prog: exit status $status is defined in tobus(7)" \
            grep -qxF -- "$status" <(exit_statuses "$overview")
    done < <(exit_statuses "$page")
    [[ -n $(exit_statuses "$page") ]] || fail "$prog: EXIT STATUS lists no status"
done

# A page for a program that is not built documents something that does not exist.
for page in "$MAN_DIR"/tobus-*.1.scd; do
    [[ -f $page ]] || continue
    prog=$(basename "$page" .1.scd)
    [[ " ${PROGRAMS[*]} " == *" $prog "* ]] ||
        fail "man/$prog.1.scd documents $prog, which is not built"
done

# Every tobus page referred to, in any page, exists.
for page in "$MAN_DIR"/*.scd; do
    while IFS= read -r ref; do
        name=${ref%%(*}
        section=${ref#*(}
        section=${section%)}
        check "$(basename "$page"): the page $ref it refers to exists" \
            test -f "$MAN_DIR/$name.$section.scd"
    done < <(grep -oE '\*tobus(-[a-z]+)?\*\([0-9]\)' "$page" | tr -d '*' | sort -u)
done

# scdoc turns every page into a man page that groff reads without a warning.
if command -v scdoc >/dev/null; then
    for page in "$MAN_DIR"/*.scd; do
        out=$SCRATCH/$(basename "$page" .scd)
        if ! scdoc <"$page" >"$out" 2>"$SCRATCH/err"; then
            fail "$(basename "$page"): scdoc: $(cat "$SCRATCH/err")"
            continue
        fi
        warnings=$(groff -man -ww -z "$out" 2>&1)
        if [[ -n $warnings ]]; then
            fail "$(basename "$page"): groff warns: $warnings"
        else
            pass "$(basename "$page"): scdoc and groff read it cleanly"
        fi
    done
else
    echo "note: scdoc is not installed; the pages were checked as sources only"
fi

finish
