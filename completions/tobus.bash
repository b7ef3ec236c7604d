# bash completion for the tobus programs                                   -*- shell-script -*-
#
# Installed once per program name (bash-completion loads completions/PROGRAM on demand); it can
# also be sourced from ~/.bashrc. Needs bash 4.2 or later, and nothing from bash-completion.
#
# The options are not listed here: each program prints its own option table with the hidden
# option --_options, as git does with --git-completion-helper, so the completions follow the
# program and cannot drift (lib/tobus/cli/cli.cpp makes it). One line per option, then one per
# command, five fields separated by tabs:
#
#   NAMES<TAB>VALUE<TAB>DESCRIPTION<TAB>CHOICES<TAB>COMMANDS
#
#   NAMES        an option's names, comma-separated ("-r,--redis"); empty on a command's line
#   VALUE        the kind of value it takes (URL, DURATION, NAME, TYPE, ...); empty for a flag
#   DESCRIPTION  one line
#   CHOICES      empty when the value is free; else a mode and words, separated by spaces:
#                "one always failed never" (one of them), "list sent routed ..." (a comma-
#                separated list of them), "tokens %e %t ..." (a template with these in it)
#   COMMANDS     where the option is accepted: command paths separated by commas, a path being
#                command names separated by spaces and "" the program itself (",get" is the
#                program and its command get); empty: the program alone. On a command's line,
#                the command's own path ("dead retry").
#
# For example, from tobus-state:
#
#   -r,--redis<TAB>URL<TAB>Redis URL: ...<TAB><TAB>,get,set,...,dead retry,dead purge
#   --to<TAB>ROUTE<TAB>Send along this route instead<TAB><TAB>dead retry
#   <TAB><TAB>Send dead letters to the bus again<TAB><TAB>dead retry
#
# Readers ignore fields they do not know and lines with empty NAMES they do not expect; a table of
# the first version (three fields) is one of a program without commands whose values are free.
# The table is read once per program per shell session.
#
# Values are completed where they can be known: the choices a program publishes, log levels,
# durations, files and directories, URL schemes; and from a running bus, through tobus-state:
# module names (NAME, ROUTE, tobus-module NAME, tobus-state jobs MODULE), types (TYPE), state
# record names (tobus-state get NAME, ...) and dead-letter ids (tobus-state dead show ID). Every
# lookup is bounded to one second and prints nothing at all when Redis is unreachable.

declare -gA __tobus_option_table

# Read the option table of the program $1 (a name or a path) into __tobus_option_table, once.
__tobus_load_options() {
    local prog=$1
    if [[ -z ${__tobus_option_table[$prog]+set} ]]; then
        __tobus_option_table[$prog]=$("$prog" --_options 2>/dev/null </dev/null)
    fi
    return 0
}

# Print what tobus-state prints for the arguments, or nothing within a second. $1 is the program
# being completed (tobus-state is looked for beside it); the rest are the connection options
# found on the command line, "--", and tobus-state's command.
__tobus_ask() {
    local state=tobus-state
    [[ $1 == */* ]] && state=${1%/*}/tobus-state
    shift
    type -P timeout >/dev/null || return 0
    type -P "$state" >/dev/null || return 0
    local -a args=()
    while (($#)) && [[ $1 != -- ]]; do
        args+=("$1")
        shift
    done
    shift
    timeout 1 "$state" "${args[@]}" "$@" 2>/dev/null </dev/null
    return 0
}

# The values of the running bus, one per line, or nothing within a second; $1 is the program.
# Use the caller's conn (the connection options on the command line).
__tobus_modules() { __tobus_ask "$1" "${conn[@]}" -- modules --names; }
__tobus_types() { __tobus_ask "$1" "${conn[@]}" -- types --names; }
__tobus_records() { __tobus_ask "$1" "${conn[@]}" -- list; }
# Dead letters: their stream entry ids, and the ids of their messages ('-' when none).
__tobus_dead() {
    __tobus_ask "$1" "${conn[@]}" -- dead list | awk '{ print $1; if ($3 != "" && $3 != "-") print $3 }' | sort -u
}

# Add to cands the values for option $1, whose value kind is $2, of which $3 is typed so far.
# Uses the caller's variables cands, compopts, prog, conn and choices (bash scopes are dynamic).
__tobus_value() {
    local opt=$1 typed=$3 m p
    local -a words
    if [[ -n ${choices[$opt]-} ]]; then
        read -ra words <<<"${choices[$opt]}"
        case ${words[0]} in
        one) cands+=("${words[@]:1}") ;;
        list)
            p=
            [[ $typed == *,* ]] && p=${typed%,*},
            words=("${words[@]:1}")
            cands+=("${words[@]/#/$p}")
            ;;
        tokens)
            # A template: what is typed, then a token (in place of a lone '%' typed last).
            p=$typed
            [[ $p == *% && $p != *%% ]] && p=${p%\%}
            for m in "${words[@]:1}"; do cands+=("$p$m"); done
            compopts=nospace
            ;;
        esac
        return 0
    fi
    case $2 in
    LEVEL) cands+=(trace debug info warn error off) ;;
    DURATION)
        if [[ $typed =~ ^[0-9]+$ ]]; then
            cands+=("${typed}ms" "${typed}s" "${typed}m" "${typed}h")
        else
            cands+=(500ms 1s 5s 30s 2m 1h)
        fi
        ;;
    DIR)
        mapfile -t -O ${#cands[@]} cands < <(compgen -d -- "$typed")
        compopts=filenames
        ;;
    PATH)
        mapfile -t -O ${#cands[@]} cands < <(compgen -f -- "$typed")
        compopts=filenames
        ;;
    URL)
        if [[ $typed == unix://* ]]; then
            while IFS= read -r p; do
                cands+=("unix://$p")
            done < <(compgen -f -- "${typed#unix://}")
        else
            cands+=(redis:// unix://)
        fi
        compopts=nospace
        ;;
    ROUTE)
        p=
        [[ $typed == *,* ]] && p=${typed%,*},
        while IFS= read -r m; do
            [[ -n $m ]] && cands+=("$p$m")
        done < <(__tobus_modules "$prog")
        ;;
    NAME)
        [[ $opt == --namespace || $opt == -n ]] && return 0
        mapfile -t -O ${#cands[@]} cands < <(__tobus_modules "$prog")
        ;;
    TYPE) mapfile -t -O ${#cands[@]} cands < <(__tobus_types "$prog") ;;
    esac
    return 0
}

_tobus() {
    COMPREPLY=()
    local IFS=$' \t\n'

    # Rejoin the words bash split at '=' and ':' (COMP_WORDBREAKS), so that '--redis=unix:///x'
    # is one word, as the program will see it.
    local -a words=()
    local i w pos=0 n=-1 cword=0 glued
    for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
        w=${COMP_WORDS[i]}
        glued=1
        while [[ ${COMP_LINE:pos:1} == [[:space:]] ]]; do
            ((pos++))
            glued=0
        done
        if ((i > 0 && glued && n >= 0)); then
            words[n]+=$w
        else
            words[++n]=$w
        fi
        ((pos += ${#w}))
        ((i == COMP_CWORD)) && cword=$n
    done
    local cur=${words[cword]} prog=${words[0]}
    ((cword == 0)) && return 0

    # Replies replace only the text after the last '=' or ':' that bash treats as a word break.
    local breaks=${COMP_WORDBREAKS//[^=:]/} head=
    [[ -n $breaks ]] && head=${cur%"${cur##*[$breaks]}"}

    # The option table: which names exist, which take a value of which kind, with which choices,
    # where they are accepted; and the commands.
    __tobus_load_options "$prog"
    local -a names=() commands=()
    local -A kind=() choices=() where=()
    local line spec value name rest
    while IFS= read -r line; do
        # NAMES<TAB>VALUE<TAB>DESCRIPTION<TAB>CHOICES<TAB>COMMANDS; any may be empty, so no
        # "read" field splitting.
        [[ $line != *$'\t'* ]] && continue
        spec=${line%%$'\t'*}
        rest=${line#*$'\t'}
        value=${rest%%$'\t'*}
        value=${value%%:*} # the kind only, should a parser append its checks ("N:INT in [1 - 9]")
        # tail: VALUE DESCRIPTION CHOICES COMMANDS, each possibly empty.
        local -a tail=()
        local f=$rest
        for ((i = 0; i < 4; i++)); do
            if [[ $f == *$'\t'* ]]; then
                tail+=("${f%%$'\t'*}")
                f=${f#*$'\t'}
            else
                tail+=("$f")
                f=
            fi
        done
        if [[ -z $spec ]]; then
            [[ -n ${tail[3]} ]] && commands+=("${tail[3]}")
            continue
        fi
        local -a aliases
        IFS=, read -ra aliases <<<"$spec"
        for name in "${aliases[@]}"; do
            names+=("$name")
            kind[$name]=$value
            choices[$name]=${tail[2]}
            where[$name]=${tail[3]}
        done
    done <<<"${__tobus_option_table[$prog]}"

    # Walk the words before the current one: the connection options (for the lookups), the
    # command path, the positional arguments of the command, and whether a '--' ended the options.
    local -a conn=() positional=()
    local dashdash=0 takes path= c pre
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        if ((dashdash)); then
            positional+=("$w")
            continue
        fi
        case $w in
        --)
            dashdash=$i
            continue
            ;;
        --*=*)
            name=${w%%=*}
            case $name in --redis | --namespace) conn+=("$w") ;; esac
            continue
            ;;
        -?*)
            takes=${kind[$w]-}
            if [[ -n $takes ]] && ((i + 1 < cword)); then
                case $w in -r | --redis | -n | --namespace) conn+=("$w" "${words[i + 1]}") ;; esac
                ((i++))
            fi
            continue
            ;;
        esac
        # A subcommand of the command so far, before any positional argument, enters it.
        if ((${#positional[@]} == 0)); then
            for c in "${commands[@]}"; do
                if [[ $c == "${path:+$path }$w" ]]; then
                    path=$c
                    continue 2
                fi
            done
        fi
        positional+=("$w")
    done

    # The options accepted here: those whose COMMANDS hold the command path.
    local -a here=()
    for name in "${names[@]}"; do
        [[ ,${where[$name]}, == *",$path,"* ]] && here+=("$name")
    done

    local -a cands=()
    local compopts=
    local prev=${words[cword - 1]}
    if ((dashdash)); then
        # tobus-module NAME -- COMMAND [ARG...]: a command, then its arguments.
        if ((cword == dashdash + 1)); then
            mapfile -t COMPREPLY < <(compgen -c -- "$cur" | sort -u)
        else
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            compopt -o filenames 2>/dev/null
        fi
        return 0
    elif [[ $cur == --*=* && -n ${kind[${cur%%=*}]-} ]]; then
        __tobus_value "${cur%%=*}" "${kind[${cur%%=*}]}" "${cur#*=}"
        cands=("${cands[@]/#/${cur%%=*}=}")
    elif [[ $prev == -?* && -n ${kind[$prev]-} ]]; then
        __tobus_value "$prev" "${kind[$prev]}" "$cur"
    elif [[ $cur == -* ]]; then
        cands=("${here[@]}")
        # '--' ends the options of tobus-module, before the handler's command.
        [[ ${prog##*/} == tobus-module ]] && cands+=(--)
    else
        # The subcommands of the command so far, then its positional arguments.
        if ((${#positional[@]} == 0)); then
            pre=${path:+$path }
            for c in "${commands[@]}"; do
                [[ $c == "$pre"* && ${c#"$pre"} != *" "* ]] && cands+=("${c#"$pre"}")
            done
        fi
        if ((${#cands[@]} == 0 && ${#positional[@]} == 0)); then
            case ${prog##*/}:$path in
            tobus-module:) mapfile -t cands < <(__tobus_modules "$prog") ;;
            tobus-state:get | tobus-state:set | tobus-state:del | tobus-state:cas | tobus-state:incr | \
                tobus-state:wait | tobus-state:list | tobus-state:watch)
                mapfile -t cands < <(__tobus_records "$prog")
                ;;
            tobus-state:jobs) mapfile -t cands < <(__tobus_modules "$prog") ;;
            tobus-state:acl) cands=(bus module sender watcher admin) ;;
            tobus-state:dead\ show | tobus-state:dead\ retry) mapfile -t cands < <(__tobus_dead "$prog") ;;
            esac
        fi
        ((${#cands[@]} == 0)) && cands=("${here[@]}")
    fi

    for c in "${cands[@]}"; do
        [[ $c == "$cur"* ]] && COMPREPLY+=("${c#"$head"}")
    done
    [[ -n $compopts ]] && compopt -o "$compopts" 2>/dev/null
    return 0
}

complete -F _tobus tobus-bus tobus-module tobus-send tobus-watch tobus-state
