# bash --norc --noprofile bash-complete.bash COMPLETION: the bash completion server of the docs
# tests (see start_completer in lib.sh). Sources COMPLETION once, then for each request completes
# LINE (the cursor at its end) the way bash does, splitting the line into COMP_WORDS at blanks, and
# '=' and ':' as words of their own, and prints COMPREPLY, one per line, then <<END>>.
source "$1" || exit 1

# complete_query LINE: prints the candidates, or one line on stderr when the program has no _tobus.
complete_query() {
    local line=$1 words=() word= c i spec
    for ((i = 0; i < ${#line}; i++)); do
        c=${line:i:1}
        if [[ $c == " " ]]; then
            [[ -n $word ]] && words+=("$word")
            word=
        elif [[ $c == [=:] ]]; then
            [[ -n $word ]] && words+=("$word")
            words+=("$c")
            word=
        else
            word+=$c
        fi
    done
    if [[ -n $word ]]; then words+=("$word"); elif [[ $line == *" " ]]; then words+=(""); fi
    COMP_LINE=$line COMP_POINT=${#line}
    COMP_WORDS=("${words[@]}") COMP_CWORD=$((${#words[@]} - 1))
    COMPREPLY=()
    spec=$(builtin complete -p "${words[0]##*/}" 2>/dev/null) || { echo "no completion for ${words[0]}" >&2; return 1; }
    [[ $spec == "complete -F _tobus "* ]] || { echo "unexpected: $spec" >&2; return 1; }
    _tobus "${words[0]}" "${words[COMP_CWORD]}" "${words[COMP_CWORD - 1]}"
    ((${#COMPREPLY[@]})) && printf '%s\n' "${COMPREPLY[@]}"
    return 0
}

while IFS=$'\t' read -r path redis ns line; do
    export PATH=$path
    if [[ $redis == - ]]; then unset TOBUS_REDIS; else export TOBUS_REDIS=${redis#=}; fi
    if [[ $ns == - ]]; then unset TOBUS_NAMESPACE; else export TOBUS_NAMESPACE=${ns#=}; fi
    complete_query "$line"
    echo '<<END>>'
done
