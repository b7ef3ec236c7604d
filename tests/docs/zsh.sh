# The zsh completion, loaded the way zsh loads it (compinit finds _tobus on $fpath by its #compdef
# line) and run on a pseudo-terminal: for every built program it offers every option of the
# program's own table, completes the values it can know, and never hangs.
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

for prog in "${PROGRAMS[@]}"; do
    got=$(HOME=$SCRATCH timeout 10 zsh -f -c 'fpath=($1 $fpath); autoload -Uz compinit
        compinit -u -D; print -r -- $_comps[$2]' zsh "$SCRATCH/zsh" "$prog")
    check "compinit assigns _tobus to $prog (got '$got')" test "$got" = _tobus
done

# complete_line LINE: the candidates zsh offers for LINE, one per line.
complete_line() {
    (cd "$SCRATCH" && HOME=$SCRATCH timeout 10 zsh -f "$TOBUS_SOURCE_DIR/tests/docs/zsh-complete.zsh" \
        "$SCRATCH/zsh" "$1")
}
same() { [[ $(sort -u <<<"$1") == "$(sort -u <<<"$2")" ]]; }
has() { grep -qxF -- "$2" <<<"$1"; }

for prog in "${PROGRAMS[@]}"; do
    names=$(option_names "$prog")
    got=$(complete_line "$prog -")
    check "$prog -<TAB> offers every option and nothing else" same "$got" "$names"

    while IFS= read -r line; do
        spec=${line%%$'\t'*}
        value=${line#*$'\t'}
        value=$(value_kind "${value%%$'\t'*}")
        [[ -z $value ]] && continue
        IFS=, read -ra aliases <<<"$spec"
        for opt in "${aliases[@]}"; do
            typed=
            case $value in
            LEVEL) want=$'trace\ndebug\ninfo\nwarn\nerror\noff' ;;
            DURATION) want=$'500ms\n1s\n5s\n30s\n2m\n1h' ;;
            URL) want=$'redis://\nunix://' ;;
            DIR) want=$'dir-a\ndir-b' typed=tree/ ;;
            PATH) want=$'dir-a\ndir-b\nfile-a\nfile-b' typed=tree/ ;;
            ROUTE | NAME)
                want=$'upper\nrev'
                [[ $opt == -n || $opt == --namespace ]] && want=
                ;;
            *) want= ;;
            esac
            got=$(PATH=$SCRATCH/state:$PATH complete_line "$prog $opt $typed")
            check "$prog $opt <TAB>: completes the $value: $(paste -sd' ' <<<"$got")" same "$got" "$want"
            if [[ $opt == --* ]]; then
                got=$(PATH=$SCRATCH/state:$PATH complete_line "$prog $opt=$typed")
                check "$prog $opt=<TAB>: completes the $value" same "$got" "$want"
            fi
        done
    done < <(option_table "$prog")

    if to=$(grep -m1 -P '\tROUTE\t' < <(option_table "$prog") | cut -f1 | tr , '\n' | tail -n1) &&
        [[ -n $to ]]; then
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

if [[ " ${PROGRAMS[*]} " == *" tobus-module "* ]]; then
    got=$(PATH=$SCRATCH/state:$PATH complete_line "tobus-module ")
    check "tobus-module <TAB> offers the module names" same "$got" $'upper\nrev'
    got=$(PATH=$SCRATCH/state:$PATH complete_line "tobus-module -j 2 ")
    check "tobus-module -j 2 <TAB> offers the module names" same "$got" $'upper\nrev'
    got=$(complete_line "tobus-module up -j 2 -- ech")
    check "tobus-module up -j 2 -- ech<TAB> completes the command echo" has "$got" echo
    got=$(complete_line "tobus-module up -- cat tree/file-")
    check "tobus-module up -- cat <file><TAB> completes files" same "$got" $'file-a\nfile-b'
fi

finish
