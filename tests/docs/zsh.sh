# The zsh completion, loaded the way zsh loads it (compinit finds _tobus on $fpath by its #compdef
# line) and run on a pseudo-terminal: for every built program it offers every option of the
# program's own table that the program accepts before a command and nothing else; after each
# command, that command's options and its subcommands; the choices the program publishes; the values
# it can know, from a stand-in tobus-state and from a real bus the test starts (state records, dead
# letters, types, modules); and never hangs, with Redis unreachable or not answering.
source "$(dirname "$0")/lib.sh"

command -v zsh >/dev/null || skip "zsh is not installed (apt-get install zsh)"

completion=$COMPLETIONS_DIR/_tobus
check "_tobus parses" zsh -n "$completion"

mkdir -p "$SCRATCH/zsh" "$SCRATCH/state" "$SCRATCH/hang" "$SCRATCH/tree/dir-a" "$SCRATCH/tree/dir-b"
touch "$SCRATCH/tree/file-a" "$SCRATCH/tree/file-b"
cp "$completion" "$SCRATCH/zsh/"
# Both stand-ins answer --_options as the real one does: tobus-state completes itself too.
printf '#!/bin/sh\n[ "$1" = --_options ] && exec "%s" --_options\necho "$*" >>"%s"\nprintf "upper\\nrev\\n"\n' \
    "$TOBUS_BIN_DIR/tobus-state" "$SCRATCH/state.log" \
    >"$SCRATCH/state/tobus-state"
printf '#!/bin/sh\n[ "$1" = --_options ] && exec "%s" --_options\nexec sleep 30\n' "$TOBUS_BIN_DIR/tobus-state" \
    >"$SCRATCH/hang/tobus-state"
chmod +x "$SCRATCH/state/tobus-state" "$SCRATCH/hang/tobus-state"

# compinit finds _tobus by its #compdef line: one zsh says what it assigned to each program.
assigned=$(HOME=$SCRATCH timeout 60 zsh -f -c 'fpath=($1 $fpath); autoload -Uz compinit
    compinit -u -D; shift; for p; print -r -- "$p=$_comps[$p]"' zsh "$SCRATCH/zsh" "${PROGRAMS[@]}")
for prog in "${PROGRAMS[@]}"; do
    got=$(grep -m1 "^$prog=" <<<"$assigned")
    check "compinit assigns _tobus to $prog (got '${got#*=}')" test "${got#*=}" = _tobus
done

# One interactive zsh on a pseudo-terminal answers every query (see start_completer in lib.sh); it
# runs in $SCRATCH with HOME there.
start_completer env -C "$SCRATCH" HOME="$SCRATCH" zsh -f "$TOBUS_SOURCE_DIR/tests/docs/zsh-complete.zsh" "$SCRATCH/zsh"
for prog in "${PROGRAMS[@]}"; do
    # Options: at the program and after each command, those accepted there and nothing else.
    while IFS= read -r path; do
        got=$(complete_line "$prog ${path:+$path }-")
        check "$prog ${path:+$path }-<TAB> offers every option accepted there and nothing else" \
            same "$got" "$(options_at "$prog" "$path")"
    done < <(printf '\n'; command_paths "$prog")

    # Commands: at the program and after each command, its subcommands.
    check_commands "$prog"

    while IFS= read -r line; do
        spec=${line%%$'\t'*}
        value=${line#*$'\t'}
        value=$(value_kind "${value%%$'\t'*}")
        [[ -z $value ]] && continue
        at=$(first_path "$line")
        mode=$(cut -f4 <<<"$line" | cut -d' ' -f1)
        IFS=, read -ra aliases <<<"$spec"
        for opt in "${aliases[@]}"; do
            typed=
            case $mode:$value in
            one:* | list:* | tokens:*) want=$(choice_words "$line") ;;
            *:LEVEL) want=$'trace\ndebug\ninfo\nwarn\nerror\noff' ;;
            *:DURATION) want=$'500ms\n1s\n5s\n30s\n2m\n1h' ;;
            *:URL) want=$'redis://\nunix://' ;;
            *:DIR) want=$'dir-a\ndir-b' typed=tree/ ;;
            *:PATH) want=$'dir-a\ndir-b\nfile-a\nfile-b' typed=tree/ ;;
            *:ROUTE | *:NAME | *:TYPE)
                want=$'upper\nrev'
                [[ $opt == -n || $opt == --namespace ]] && want=
                ;;
            *) want= ;;
            esac
            got=$(PATH=$SCRATCH/state:$PATH complete_line "$prog $at$opt $typed")
            check "$prog $at$opt <TAB>: completes the ${mode:+choices ($mode)}${mode:-$value}: $(paste -sd' ' <<<"$got")" same "$got" "$want"
            if [[ $opt == --* ]]; then
                got=$(PATH=$SCRATCH/state:$PATH complete_line "$prog $at$opt=$typed")
                check "$prog $at$opt=<TAB>: completes the ${mode:+choices ($mode)}${mode:-$value}" same "$got" "$want"
            fi
            check_more_of "$mode" "$want" "$prog $at$opt" rest
        done
    done < <(option_table "$prog")

    if route=$(grep -m1 -P '\tROUTE\t' < <(option_table "$prog")) &&
        to="$(first_path "$route")$(cut -f1 <<<"$route" | tr , '\n' | tail -n1)"; then
        : >"$SCRATCH/state.log"
        got=$(PATH=$SCRATCH/state:$PATH complete_line "$prog -n ns1 -r redis://h:1 $to upper,")
        check "$prog $to upper,<TAB> completes the next module" same "$got" $'upper\nrev'
        check "$prog: module names are asked of tobus-state with -n ns1 -r redis://h:1" \
            grep -qxF -- "-n ns1 -r redis://h:1 modules --names" "$SCRATCH/state.log"
        start=$SECONDS
        got=$(PATH=$SCRATCH/hang:$PATH complete_line "$prog $to ")
        check "$prog $to <TAB> with a tobus-state that hangs: nothing, within 3s" \
            test -z "$got" -a $((SECONDS - start)) -le 3
        start=$SECONDS
        got=$(TOBUS_REDIS=redis://127.0.0.1:1 complete_line "$prog $to ")
        check "$prog $to <TAB> with Redis unreachable: within 3s" test $((SECONDS - start)) -le 3
    fi
done

if built tobus-module; then
    got=$(PATH=$SCRATCH/state:$PATH complete_line "tobus-module ")
    check "tobus-module <TAB> offers the module names" same "$got" $'upper\nrev'
    got=$(PATH=$SCRATCH/state:$PATH complete_line "tobus-module -j 2 ")
    check "tobus-module -j 2 <TAB> offers the module names" same "$got" $'upper\nrev'
    got=$(complete_line "tobus-module up -j 2 -- ech")
    check "tobus-module up -j 2 -- ech<TAB> completes the command echo" has "$got" echo
    got=$(complete_line "tobus-module up -- cat tree/file-")
    check "tobus-module up -- cat <file><TAB> completes files" same "$got" $'file-a\nfile-b'
fi

if built tobus-state; then
    # A command's first argument, from the bus: each asked of tobus-state with its own command.
    for c in "get:list" "cas:list" "jobs:modules --names" "dead show:dead list" "dead retry:dead list"; do
        : >"$SCRATCH/state.log"
        got=$(PATH=$SCRATCH/state:$PATH complete_line "tobus-state -n ns1 ${c%%:*} ")
        check "tobus-state ${c%%:*} <TAB> offers what 'tobus-state ${c#*:}' prints" same "$got" $'upper\nrev'
        check "tobus-state ${c%%:*} <TAB>: asks 'tobus-state -n ns1 ${c#*:}' ($(cat "$SCRATCH/state.log"))" \
            grep -qxF -- "-n ns1 ${c#*:}" "$SCRATCH/state.log"
    done
    got=$(complete_line "tobus-state acl ")
    check "tobus-state acl <TAB> offers the roles" same "$(sort <<<"$got")" $'admin\nbus\nmodule\nsender\nwatcher'
fi

# A real bus: the values come from it; then Redis unreachable, or not answering (zsh's _arguments
# is the slowest of the three shells: allow it a second more).
start_bus_with_data
check_bus_values
check_unreachable 6000

finish
