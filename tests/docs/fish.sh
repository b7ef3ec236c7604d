# The fish completion, loaded the way fish loads it (PROGRAM.fish on $fish_complete_path) and run
# with "complete -C": for every built program it offers every option of the program's own table that
# the program accepts before a command and nothing else; after each command, that command's options
# and its subcommands; the choices the program publishes; the values it can know, from a stand-in
# tobus-state and from a real bus the test starts (state records, dead letters, types, modules); and
# never hangs, with Redis unreachable or not answering.
source "$(dirname "$0")/lib.sh"

command -v fish >/dev/null || skip "fish is not installed (apt-get install fish)"

completion=$COMPLETIONS_DIR/tobus.fish
check "tobus.fish parses" fish --no-execute "$completion"

mkdir -p "$SCRATCH/fish" "$SCRATCH/state" "$SCRATCH/hang" "$SCRATCH/tree/dir-a" "$SCRATCH/tree/dir-b"
touch "$SCRATCH/tree/file-a" "$SCRATCH/tree/file-b"
# Both stand-ins answer --_options as the real one does: tobus-state completes itself too.
printf '#!/bin/sh\n[ "$1" = --_options ] && exec "%s" --_options\necho "$*" >>"%s"\nprintf "upper\\nrev\\n"\n' \
    "$TOBUS_BIN_DIR/tobus-state" "$SCRATCH/state.log" \
    >"$SCRATCH/state/tobus-state"
printf '#!/bin/sh\n[ "$1" = --_options ] && exec "%s" --_options\nexec sleep 30\n' "$TOBUS_BIN_DIR/tobus-state" \
    >"$SCRATCH/hang/tobus-state"
chmod +x "$SCRATCH/state/tobus-state" "$SCRATCH/hang/tobus-state"
for prog in "${PROGRAMS[@]}"; do
    cp "$completion" "$SCRATCH/fish/$prog.fish"
done

# One fish answers every query (see start_completer in lib.sh).
start_completer env HOME="$SCRATCH" XDG_CONFIG_HOME="$SCRATCH/config" XDG_DATA_HOME="$SCRATCH/data" \
    fish --no-config "$TOBUS_SOURCE_DIR/tests/docs/fish-complete.fish" "$SCRATCH/fish"

for prog in "${PROGRAMS[@]}"; do
    # Options: at the program and after each command, those accepted there and nothing else.
    while IFS= read -r path; do
        names=$(options_at "$prog" "$path")
        got=$(complete_line "$prog ${path:+$path }-")
        check "$prog ${path:+$path }-<TAB> offers every option accepted there and nothing else" \
            same "$got" "$names"
        got=$(complete_line "$prog ${path:+$path }--")
        check "$prog ${path:+$path }--<TAB> offers every long option accepted there" \
            same "$got" "$(grep -- '^--' <<<"$names")"
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
            *:DIR) want="$SCRATCH/tree/dir-a/"$'\n'"$SCRATCH/tree/dir-b/" typed=$SCRATCH/tree/ ;;
            *:PATH)
                want="$SCRATCH/tree/dir-a/"$'\n'"$SCRATCH/tree/dir-b/"$'\n'"$SCRATCH/tree/file-a"$'\n'"$SCRATCH/tree/file-b"
                typed=$SCRATCH/tree/
                ;;
            *:ROUTE | *:NAME | *:TYPE)
                want=$'upper\nrev'
                [[ $opt == -n || $opt == --namespace ]] && want=
                ;;
            *) want= ;;
            esac
            got=$(PATH=$SCRATCH/state:$PATH complete_line "$prog $at$opt $typed")
            check "$prog $at$opt <TAB>: completes the ${mode:+choices ($mode)}${mode:-$value}: $(paste -sd' ' <<<"$got")" same "$got" "$want"
            check_more_of "$mode" "$want" "$prog $at$opt"
        done
    done < <(option_table "$prog")

    if route=$(grep -m1 -P '\tROUTE\t' < <(option_table "$prog")) &&
        to="$(first_path "$route")$(cut -f1 <<<"$route" | tr , '\n' | tail -n1)"; then
        : >"$SCRATCH/state.log"
        got=$(PATH=$SCRATCH/state:$PATH complete_line "$prog -n ns1 -r redis://h:1 $to upper,r")
        check "$prog $to upper,r<TAB> completes upper,rev" same "$got" upper,rev
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
    got=$(PATH=$SCRATCH/state:$PATH complete_line "tobus-module up ")
    check "tobus-module up <TAB> offers no module name" eval '! has "$got" upper'
    got=$(complete_line "tobus-module up -j 2 -- ech")
    check "tobus-module up -j 2 -- ech<TAB> completes the command echo" has "$got" echo
    got=$(complete_line "tobus-module up -- cat $SCRATCH/tree/file-")
    check "tobus-module up -- cat <file><TAB> completes files" \
        same "$got" "$SCRATCH/tree/file-a"$'\n'"$SCRATCH/tree/file-b"
fi

if built tobus-state; then
    # A command's first argument, from the bus: each asked of tobus-state with its own command.
    for c in "get:list" "cas:list" "watch:list" "jobs:modules --names" "dead show:dead list" "dead retry:dead list"; do
        : >"$SCRATCH/state.log"
        got=$(PATH=$SCRATCH/state:$PATH complete_line "tobus-state -n ns1 ${c%%:*} ")
        check "tobus-state ${c%%:*} <TAB> offers what 'tobus-state ${c#*:}' prints" same "$got" $'upper\nrev'
        check "tobus-state ${c%%:*} <TAB>: asks 'tobus-state -n ns1 ${c#*:}' ($(cat "$SCRATCH/state.log"))" \
            grep -qxF -- "-n ns1 ${c#*:}" "$SCRATCH/state.log"
    done
    got=$(complete_line "tobus-state acl ")
    check "tobus-state acl <TAB> offers the roles" same "$(sort <<<"$got")" $'admin\nbus\nmodule\nsender\nwatcher'
    got=$(PATH=$SCRATCH/state:$PATH complete_line "tobus-state get deploy ")
    check "tobus-state get deploy <TAB>: no record name for the FIELD" eval '! has "$got" upper'
fi

# A real bus: the values come from it; then Redis unreachable, or not answering.
start_bus_with_data
check_bus_values
check_unreachable 6000

finish
