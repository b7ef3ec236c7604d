# bash completion for the tobus programs                                   -*- shell-script -*-
#
# Installed once per program name (bash-completion loads completions/PROGRAM on demand); it can
# also be sourced from ~/.bashrc. Needs bash 4.2 or later, and nothing from bash-completion.
#
# The options are not listed here: each program prints its own option table with the hidden
# option --_options (one line per option: NAMES<TAB>VALUE<TAB>DESCRIPTION, for example
# "-r,--redis<TAB>URL<TAB>Redis server URL"), as git does with --git-completion-helper, so the
# completions follow the program and cannot drift. The table is read once per program per shell
# session. Values are completed where they can be known: log levels, durations, files and
# directories, URL schemes, and module names from a running bus (bounded to one second, and
# nothing at all when Redis is unreachable).

declare -gA __tobus_option_table

# Read the option table of the program $1 (a name or a path) into __tobus_option_table, once.
__tobus_load_options() {
    local prog=$1
    if [[ -z ${__tobus_option_table[$prog]+set} ]]; then
        __tobus_option_table[$prog]=$("$prog" --_options 2>/dev/null </dev/null)
    fi
    return 0
}

# Print the module names of the running bus, one per line, or nothing within a second.
# $1 is the program being completed (tobus-state is looked for beside it); the rest are the
# connection options found on the command line.
__tobus_modules() {
    local state=tobus-state
    [[ $1 == */* ]] && state=${1%/*}/tobus-state
    shift
    type -P timeout >/dev/null || return 0
    type -P "$state" >/dev/null || return 0
    timeout 1 "$state" "$@" modules --names 2>/dev/null </dev/null
    return 0
}

# Add to cands the values for option $1, whose value kind is $2, of which $3 is typed so far.
# Uses the caller's variables cands, compopts, prog and conn (bash scopes are dynamic).
__tobus_value() {
    local opt=$1 typed=$3 m p
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
        done < <(__tobus_modules "$prog" "${conn[@]}")
        ;;
    NAME)
        [[ $opt == --namespace || $opt == -n ]] && return 0
        mapfile -t -O ${#cands[@]} cands < <(__tobus_modules "$prog" "${conn[@]}")
        ;;
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

    # The option table: which names exist, and which take a value of which kind.
    __tobus_load_options "$prog"
    local -a names=()
    local -A kind=()
    local line spec value name
    while IFS= read -r line; do
        # NAMES<TAB>VALUE<TAB>DESCRIPTION; VALUE may be empty, so no "read" field splitting.
        spec=${line%%$'\t'*}
        value=${line#*$'\t'}
        value=${value%%$'\t'*}
        value=${value%%:*} # the kind only, should a parser append its checks ("N:INT in [1 - 9]")
        [[ -z $spec || $line != *$'\t'* ]] && continue
        local -a aliases
        IFS=, read -ra aliases <<<"$spec"
        for name in "${aliases[@]}"; do
            names+=("$name")
            kind[$name]=$value
        done
    done <<<"${__tobus_option_table[$prog]}"

    # Walk the words before the current one: the connection options (for module lookups), the
    # positional arguments, and whether a '--' ended the options.
    local -a conn=() positional=()
    local dashdash=0 takes
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
        positional+=("$w")
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
        cands=("${names[@]}")
        # '--' ends the options of tobus-module, before the handler's command.
        [[ ${prog##*/} == tobus-module ]] && cands+=(--)
    else
        case ${prog##*/} in
        tobus-module)
            if ((${#positional[@]} == 0)); then
                mapfile -t cands < <(__tobus_modules "$prog" "${conn[@]}")
            fi
            ;;
        esac
        ((${#cands[@]} == 0)) && cands=("${names[@]}")
    fi

    local c
    for c in "${cands[@]}"; do
        [[ $c == "$cur"* ]] && COMPREPLY+=("${c#"$head"}")
    done
    [[ -n $compopts ]] && compopt -o "$compopts" 2>/dev/null
    return 0
}

complete -F _tobus tobus-bus tobus-module tobus-send tobus-watch tobus-state
