# Each program's option table (PROG --_options, on which the completions are built) has the
# documented shape (lib/tobus/cli/cli.cpp, completions/tobus.bash): one line per option, then one per
# command, NAMES<TAB>VALUE<TAB>DESCRIPTION<TAB>CHOICES<TAB>COMMANDS; a long name for every option,
# VALUE one of the documented kinds, CHOICES empty or a mode and its words, COMMANDS paths of
# commands the table lists, no name twice; and the commands and their options are the program's.
source "$(dirname "$0")/lib.sh"

# has_line LINE TEXT: TEXT has LINE as one of its lines (no process: this runs a thousand times).
has_line() { [[ $'\n'$2$'\n' == *$'\n'"$1"$'\n'* ]]; }

for prog in "${PROGRAMS[@]}"; do
    raw_table "$prog" >"$SCRATCH/table" 2>"$SCRATCH/err"
    rc=$?
    check "$prog --_options: exit status 0 (got $rc)" test "$rc" -eq 0
    check "$prog --_options: nothing on stderr" test ! -s "$SCRATCH/err"
    check "$prog --_options: prints options" test -s "$SCRATCH/table"
    commands=$(awk -F'\t' '$1 == "" { print $5 }' "$SCRATCH/table")
    seen_command=0
    while IFS= read -r line; do
        # Split at the tabs with a separator that is not white space, so empty fields stay.
        IFS=$'\x1f' read -r names value desc choices where <<<"${line//$'\t'/$'\x1f'}"
        label="$prog --_options: '${line//$'\t'/<TAB>}'"
        tabs=${line//[^$'\t']/}
        if ((${#tabs} != 4)); then
            fail "$label: want five fields separated by four tabs"
            continue
        fi
        problem=
        if [[ -z $names ]]; then
            # A command: its path, whose parent is a command too (or the program).
            seen_command=1
            if [[ ! $where =~ ^[a-z][a-z0-9-]*( [a-z][a-z0-9-]*)*$ ]]; then
                problem="a command's path is not its names separated by spaces"
            elif [[ -n $value || -n $choices ]]; then
                problem="a command has no VALUE or CHOICES"
            elif [[ -z $desc ]]; then
                problem="no description"
            elif [[ $where == *" "* ]] && ! has_line "${where% *}" "$commands"; then
                problem="its parent '${where% *}' is not a command of the table"
            fi
        elif ((seen_command)); then
            problem="an option after the commands"
        elif [[ ! $names =~ ^(-[A-Za-z0-9],)?--[a-z][a-z0-9-]*$ ]]; then
            problem="names are not '-x,--long' or '--long'"
        elif [[ -n $value && " ${VALUE_KINDS[*]} " != *" $value "* ]]; then
            problem="VALUE '$value' is not one of ${VALUE_KINDS[*]}"
        elif [[ -z $desc ]]; then
            problem="no description"
        elif [[ -n $choices && ! $choices =~ ^(one|list|tokens)(\ [^ ]+)+$ ]]; then
            problem="CHOICES are not 'one|list|tokens WORD...'"
        elif [[ -n $choices && -z $value ]]; then
            problem="a flag has no CHOICES"
        else
            IFS=, read -ra paths <<<"$where,"
            for p in "${paths[@]}"; do
                [[ -z $p ]] || has_line "$p" "$commands" ||
                    problem="COMMANDS names '$p', which is not a command of the table"
            done
        fi
        if [[ -n $problem ]]; then fail "$label: $problem"; else pass "$label"; fi
    done <"$SCRATCH/table"
    dups=$(grep -v $'^\t' "$SCRATCH/table" | cut -f1 | tr , '\n' | sort | uniq -d)
    check "$prog --_options: no name twice${dups:+ (twice: $dups)}" test -z "$dups"
    dups=$(uniq -d <<<"$(sort <<<"$commands")")
    check "$prog --_options: no command twice${dups:+ (twice: $dups)}" test -z "$dups"
    for common in -r,--redis -n,--namespace --log-level -v,--verbose -q,--quiet --version -h,--help; do
        check "$prog --_options: has the common option $common" grep -qE "^$common"$'\t' "$SCRATCH/table"
    done
    # Every command accepts the common options (they fall through to the program).
    while IFS= read -r p; do
        [[ -z $p ]] && continue
        at=$(options_at "$prog" "$p")
        for common in -r --redis -n --namespace --log-level -v --verbose -q --quiet --version -h --help; do
            check "$prog $p: accepts $common" has_line "$common" "$at"
        done
    done <<<"$commands"

    # The commands are the program's: PROG PATH --help shows their usage, with their own options.
    while IFS= read -r p; do
        [[ -z $p ]] && continue
        # shellcheck disable=SC2086 # the path is words
        help=$("$prog" $p --help 2>&1)
        rc=$?
        check "$prog $p --help: exit status 0 (got $rc)" test "$rc" -eq 0
        check "$prog $p --help: 'Usage: $prog $p'" grep -qE "^Usage: $prog $p( |\$)" <<<"$help"
        while IFS= read -r name; do
            check "$prog $p --help lists $name" grep -qE -- "(^|[ ,])$name([ ,=]|\$)" <<<"$help"
        done < <(option_table "$prog" | awk -F'\t' -v p="$p" '("," $5 ",") ~ ("," p ",") && $5 !~ /^,|^$/ { print $1 }' |
            tr , '\n')
    done <<<"$commands"
done

# Published choices are what the program accepts: each one passes its check (the run then fails
# later, at Redis, with exit status 3), and a word that is not one of them is bad usage (2).
unreachable=redis://127.0.0.1:1
for prog in "${PROGRAMS[@]}"; do
    while IFS= read -r line; do
        opt=$(cut -f1 <<<"$line" | sed 's/.*,//')
        mode=$(cut -f4 <<<"$line" | cut -d' ' -f1)
        [[ $opt == --log-level || $prog == tobus-module ]] && continue # needs no Redis; checked by CLI11
        while IFS= read -r word; do
            "$prog" -r "$unreachable" "$opt" "$word" </dev/null >/dev/null 2>&1
            rc=$?
            check "$prog $opt '$word': accepted (exit status 3 at Redis, got $rc)" test "$rc" -eq 3
        done < <(choice_words "$line")
        bad=no-such-choice
        [[ $mode == tokens ]] && bad=%Q
        "$prog" -r "$unreachable" "$opt" "$bad" </dev/null >/dev/null 2>&1
        rc=$?
        check "$prog $opt '$bad': bad usage (exit status 2, got $rc)" test "$rc" -eq 2
    done < <(option_table "$prog" | awk -F'\t' '$4 != ""')
done

# tobus-watch --format: the tokens it publishes are those tobus-watch(1) documents under FORMAT.
if [[ " ${PROGRAMS[*]} " == *" tobus-watch "* ]]; then
    published=$(option_table tobus-watch | awk -F'\t' '$1 == "--format"' | cut -f4)
    documented=$(man_section "$MAN_DIR/tobus-watch.1.scd" FORMAT | sed -n 's/^\*\(%.\)\*$/\1/p' | sort)
    check "tobus-watch --format publishes tokens" grep -q '^tokens ' <<<"$published"
    check "tobus-watch --format: the tokens published are those of tobus-watch(1) FORMAT ($(paste -sd' ' <<<"$documented"))" \
        test "$(tr ' ' '\n' <<<"${published#tokens }" | sort)" = "$documented"
fi

finish
