# The bash completion, run the way bash runs it: for every built program it offers every option of
# the program's own table that the program accepts before a command and nothing else; after each
# command, that command's options and its subcommands; the choices the program publishes; the values
# it can know, from a stand-in tobus-state and from a real bus the test starts (state records, dead
# letters, types, modules); and never hangs, with Redis unreachable or not answering.
source "$(dirname "$0")/lib.sh"

completion=$COMPLETIONS_DIR/tobus.bash
check "tobus.bash parses" bash -n "$completion"

# A tobus-state that knows two modules, one that hangs, and an empty tree to complete files in.
mkdir -p "$SCRATCH/state" "$SCRATCH/hang" "$SCRATCH/tree/dir-a" "$SCRATCH/tree/dir-b"
touch "$SCRATCH/tree/file-a" "$SCRATCH/tree/file-b"
# Both stand-ins answer --_options as the real one does: tobus-state completes itself too.
printf '#!/bin/sh\n[ "$1" = --_options ] && exec "%s" --_options\necho "$*" >>"%s"\nprintf "upper\\nrev\\n"\n' \
    "$TOBUS_BIN_DIR/tobus-state" "$SCRATCH/state.log" \
    >"$SCRATCH/state/tobus-state"
printf '#!/bin/sh\n[ "$1" = --_options ] && exec "%s" --_options\nexec sleep 30\n' "$TOBUS_BIN_DIR/tobus-state" \
    >"$SCRATCH/hang/tobus-state"
chmod +x "$SCRATCH/state/tobus-state" "$SCRATCH/hang/tobus-state"

# One bash, with the completion sourced, answers every query (see start_completer in lib.sh).
start_completer bash --norc --noprofile "$TOBUS_SOURCE_DIR/tests/docs/bash-complete.bash" "$completion"

# same LIST-A LIST-B: the two newline-separated lists hold the same words.
# has LIST WORD: the list holds WORD.

for prog in "${PROGRAMS[@]}"; do
    # Options: at the program and after each command, those accepted there and nothing else.
    while IFS= read -r path; do
        names=$(options_at "$prog" "$path")
        got=$(complete_line "$prog ${path:+$path }-")
        extra=
        [[ $prog == tobus-module ]] && extra=$'\n--'
        check "$prog ${path:+$path }-<TAB> offers every option accepted there and nothing else" \
            same "$got" "$names$extra"
        got=$(complete_line "$prog ${path:+$path }--")
        check "$prog ${path:+$path }--<TAB> offers every long option accepted there" \
            same "$(grep -v '^--$' <<<"$got")" "$(grep -- '^--' <<<"$names")"
    done < <(printf '\n'; command_paths "$prog")

    # Commands: at the program and after each command, its subcommands.
    check_commands "$prog"

    while IFS= read -r line; do
        spec=${line%%$'\t'*}
        value=${line#*$'\t'}
        value=$(value_kind "${value%%$'\t'*}")
        at=$(first_path "$line")
        mode=$(cut -f4 <<<"$line" | cut -d' ' -f1)
        IFS=, read -ra aliases <<<"$spec"
        for opt in "${aliases[@]}"; do
            case $mode:$value in
            :)
                got=$(complete_line "$prog $at$opt -")
                check "$prog $at$opt -<TAB>: $opt is a flag, the options follow" has "$got" --help
                continue
                ;;
            one:* | list:* | tokens:*) want=$(choice_words "$line") ;;
            *:LEVEL) want=$'trace\ndebug\ninfo\nwarn\nerror\noff' ;;
            *:DURATION) want=$'500ms\n1s\n5s\n30s\n2m\n1h' ;;
            *:URL) want=$'redis://\nunix://' ;;
            *:DIR) want="$SCRATCH/tree/dir-a"$'\n'"$SCRATCH/tree/dir-b" ;;
            *:PATH) want="$SCRATCH/tree/dir-a"$'\n'"$SCRATCH/tree/dir-b"$'\n'"$SCRATCH/tree/file-a"$'\n'"$SCRATCH/tree/file-b" ;;
            *:ROUTE | *:NAME | *:TYPE)
                want=$'upper\nrev'
                [[ $opt == -n || $opt == --namespace ]] && want=
                ;;
            *) want= ;;
            esac
            typed=
            [[ -z $mode && ($value == DIR || $value == PATH) ]] && typed=$SCRATCH/tree/
            got=$(PATH=$SCRATCH/state:$PATH complete_line "$prog $at$opt $typed")
            check "$prog $at$opt <TAB>: completes the ${mode:+choices ($mode)}${mode:-$value}: $(paste -sd' ' <<<"$got")" same "$got" "$want"
            if [[ $opt == --* ]]; then
                # --opt=VALUE: bash replaces what follows the '=' (or the last ':' in a URL).
                got=$(PATH=$SCRATCH/state:$PATH complete_line "$prog $at$opt=$typed")
                check "$prog $at$opt=<TAB>: completes the ${mode:+choices ($mode)}${mode:-$value}" same "$got" "$want"
            fi
            check_more_of "$mode" "$want" "$prog $at$opt"
        done
    done < <(option_table "$prog")

    # Routes: the next module after a comma; the connection options are passed to tobus-state.
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
    for c in "get:list" "set:list" "del:list" "cas:list" "incr:list" "wait:list" "watch:list" \
        "list:list" "jobs:modules --names" "dead show:dead list" "dead retry:dead list"; do
        : >"$SCRATCH/state.log"
        got=$(PATH=$SCRATCH/state:$PATH complete_line "tobus-state -n ns1 ${c%%:*} ")
        check "tobus-state ${c%%:*} <TAB> offers what 'tobus-state ${c#*:}' prints" same "$got" $'upper\nrev'
        check "tobus-state ${c%%:*} <TAB>: asks 'tobus-state -n ns1 ${c#*:}' ($(cat "$SCRATCH/state.log"))" \
            grep -qxF -- "-n ns1 ${c#*:}" "$SCRATCH/state.log"
    done
    got=$(PATH=$SCRATCH/state:$PATH complete_line "tobus-state get deploy ")
    check "tobus-state get deploy <TAB>: no record name for the FIELD" eval '! has "$got" upper'
    got=$(complete_line "tobus-state acl ")
    check "tobus-state acl <TAB> offers the roles" same "$(sort <<<"$got")" $'admin\nbus\nmodule\nsender\nwatcher'
    got=$(PATH=$SCRATCH/state:$PATH complete_line "tobus-state modules ")
    check "tobus-state modules <TAB>: no argument, its options" same "$got" "$(options_at tobus-state modules)"
fi

# A real bus: the values come from it.
start_bus_with_data
check_bus_values "tobus-module :picky"
if built tobus-state; then
    got=$(complete_line "tobus-state set dep")
    check "bus: tobus-state set dep<TAB> completes deploy" same "$got" deploy
    got=$(complete_line "tobus-state dead retry ${DEAD_ENTRY:0:5}")
    check "bus: tobus-state dead retry ${DEAD_ENTRY:0:5}<TAB> completes the entry id" same "$got" "$DEAD_ENTRY"
    # The connection options on the line are passed on: another namespace has nothing.
    got=$(complete_line "tobus-state -n empty get ")
    check "bus: tobus-state -n empty get <TAB>: no record of that namespace" eval '! has "$got" deploy'
    url=$TOBUS_REDIS
    got=$(unset TOBUS_REDIS; complete_line "tobus-state -r $url get dep")
    check "bus: tobus-state -r URL get dep<TAB> completes deploy (URL from the line)" same "$got" deploy
fi

# Redis unreachable, or not answering: the lookups give up within a second, the options stay.
check_unreachable 6000 "tobus-state jobs " "tobus-module --type " "tobus-send --to "

# The option table is read once per program per shell session.
mkdir -p "$SCRATCH/count"
printf '#!/bin/sh\necho run >>"%s"\nprintf -- "--alpha\\t\\tAlpha\\n"\n' "$SCRATCH/count.log" \
    >"$SCRATCH/count/tobus-x"
chmod +x "$SCRATCH/count/tobus-x"
runs=$(PATH=$SCRATCH/count:$PATH timeout 10 bash --norc --noprofile -c '
    source "$1"
    COMP_LINE="tobus-x --"; COMP_POINT=${#COMP_LINE}; COMP_WORDS=(tobus-x --); COMP_CWORD=1
    _tobus; _tobus; _tobus
    echo "${COMPREPLY[*]}"' bash "$completion")
check "three completions of one program, one --_options run (replies: $runs)" \
    test "$runs" = --alpha -a "$(wc -l <"$SCRATCH/count.log")" -eq 1

finish
