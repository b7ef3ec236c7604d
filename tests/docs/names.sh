# Across all programs, a short letter or a long name always means the same thing: a short
# letter always goes with the same long name, a long name always with the same short letter (or
# none) and the same kind of value.
source "$(dirname "$0")/lib.sh"

declare -A long_of_short=() short_of_long=() value_of_long=() where_short=() where_long=()
for prog in "${PROGRAMS[@]}"; do
    while IFS= read -r line; do
        names=${line%%$'\t'*}
        value=${line#*$'\t'}
        value=${value%%$'\t'*}
        short= long=
        IFS=, read -ra parts <<<"$names"
        for n in "${parts[@]}"; do
            case $n in --*) long=$n ;; -?) short=$n ;; esac
        done
        if [[ -z $long ]]; then
            fail "$prog: option $names has no long name"
            continue
        fi
        if [[ -n $short ]]; then
            if [[ -n ${long_of_short[$short]+set} && ${long_of_short[$short]} != "$long" ]]; then
                fail "$short is ${long_of_short[$short]} in ${where_short[$short]} but $long in $prog"
            else
                long_of_short[$short]=$long
                where_short[$short]=${where_short[$short]-}${where_short[$short]:+ }$prog
            fi
        fi
        if [[ -n ${where_long[$long]+set} ]]; then
            [[ ${short_of_long[$long]} == "$short" ]] ||
                [[ -z ${short_of_long[$long]} || -z $short ]] ||
                fail "$long is ${short_of_long[$long]} in ${where_long[$long]} but $short in $prog"
            [[ ${value_of_long[$long]} == "$value" ]] ||
                fail "$long takes '${value_of_long[$long]}' in ${where_long[$long]} but '$value' in $prog"
            [[ -z ${short_of_long[$long]} ]] && short_of_long[$long]=$short
            where_long[$long]+=" $prog"
        else
            short_of_long[$long]=$short
            value_of_long[$long]=$value
            where_long[$long]=$prog
        fi
    done < <(option_table "$prog")
done

for long in $(printf '%s\n' "${!where_long[@]}" | sort); do
    pass "$long${short_of_long[$long]:+ (${short_of_long[$long]})} ${value_of_long[$long]:-flag}: ${where_long[$long]}"
done

finish
