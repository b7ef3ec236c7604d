# Runs the ```console blocks of a Markdown file as a user pasting them would, and compares what each
# command prints with what the file shows (sourced by readme.sh and protocol.sh, after lib.sh).
#
# In a console block, a line "$ COMMAND" is a command, the lines "> MORE" after it continue it (as
# with a shell's PS2), and the other lines are what it prints, standard output and standard error
# together. In what it prints, a line "..." stands for any number of lines and "..." within a line
# for any text; a time in milliseconds (13 digits), a stream entry id (13 digits, "-", digits) or a
# duration in milliseconds ("4ms") stands for any other, so that the pages can show real output. A
# command ending in "&" runs in the background; its output is not compared, nor is what the
# background jobs of a command print after it returned. All blocks run in one bash, in order, in a
# scratch directory, with the built programs first on PATH, HOME and the XDG directories in the
# scratch directory (so the bus's embedded Redis is private to the test), and redis-cli printing as
# it does on a terminal.

# console_commands FILE DIR: split the console blocks of FILE into DIR/cmd.N and DIR/want.N;
# prints the number of commands.
console_commands() {
    awk -v dir="$2" '
        /^```console[ \t]*$/ { on = 1; next }
        on && /^```/ { on = 0; cont = 0; next }
        !on { next }
        /^\$ / { n++; printf "%s\n", substr($0, 3) > (dir "/cmd." n); printf "" > (dir "/want." n); cont = 1; next }
        cont && /^> / { printf "%s\n", substr($0, 3) > (dir "/cmd." n); next }
        /^>$/ && cont { printf "\n" > (dir "/cmd." n); next }
        n { cont = 0; printf "%s\n", $0 > (dir "/want." n) }
        END { print n + 0 }' "$1"
}

# regex_quote TEXT: TEXT as an extended regular expression that matches it literally.
regex_quote() {
    sed 's/[][\\.*^$+?(){}|/]/\\&/g' <<<"$1"
}

# line_matches PATTERN LINE: LINE is PATTERN, where "..." in PATTERN matches any text.
line_matches() {
    local pattern=$1 re= part
    while [[ $pattern == *...* ]]; do
        part=${pattern%%...*}
        re+=$(regex_quote "$part").*
        pattern=${pattern#*...}
    done
    re="^$re$(regex_quote "$pattern")\$"
    re=$(sed -E 's/(^|[^0-9])[0-9]{13}(-[0-9]+)?/\1[0-9]{13}(-[0-9]+)?/g
        s/(^|[^0-9A-Za-z])[0-9]+ms([^A-Za-z]|$)/\1[0-9]+ms\2/g
        s/(^|[^0-9A-Za-z])[0-9]+ms([^A-Za-z]|$)/\1[0-9]+ms\2/g' <<<"$re")
    [[ $2 =~ $re ]]
}

# lines_match I J: want[I..] matches got[J..], where a line "..." matches any number of lines.
lines_match() {
    local i=$1 j=$2 k
    while ((i < ${#want[@]})); do
        if [[ ${want[i]} == ... ]]; then
            for ((k = j; k <= ${#got[@]}; k++)); do
                lines_match $((i + 1)) "$k" && return 0
            done
            return 1
        fi
        ((j < ${#got[@]})) || return 1
        line_matches "${want[i]}" "${got[j]}" || return 1
        ((i++, j++))
    done
    ((j == ${#got[@]}))
}

# run_console FILE: run the console blocks of FILE and check each command's output.
run_console() {
    local file=$1 dir=$SCRATCH/console n i
    command -v redis-server >/dev/null || skip "redis-server is not installed"
    mkdir -p "$dir" "$SCRATCH/home" "$SCRATCH/run" "$SCRATCH/state" "$SCRATCH/work"
    chmod 700 "$SCRATCH/run"
    n=$(console_commands "$file" "$dir")
    if ((n == 0)); then
        fail "$file has no console block"
        return
    fi

    local sock=$SCRATCH/run/tobus/redis.sock
    local -a env=(env -u TOBUS_REDIS -u TOBUS_NAMESPACE -u TOBUS_SOCKET -u TOBUS_DATA_DIR -u NO_COLOR
        HOME="$SCRATCH/home" XDG_RUNTIME_DIR="$SCRATCH/run" XDG_STATE_HOME="$SCRATCH/state"
        XDG_CONFIG_HOME="$SCRATCH/home/.config" PATH="$PATH")
    # With a Redis on 127.0.0.1:6379 the bus would use it; give the bus a private one instead, at
    # the embedded server's socket, where every program looks first.
    if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
        mkdir -p "${sock%/*}"
        redis-server --port 0 --unixsocket "$sock" --save '' --appendonly no --daemonize yes \
            --pidfile "$SCRATCH/redis.pid" --logfile "$SCRATCH/redis.log" >/dev/null
        CLEANUP+=("redis-cli -s '$sock' shutdown nosave >/dev/null 2>&1")
        echo "note: a Redis answers on 127.0.0.1:6379; the tour runs on a private one at $sock"
    fi

    {
        echo 'cd "$1" || exit 1'
        echo 'redis-cli() { command redis-cli --no-raw "$@"; }'
        echo 'trap '\''kill $(jobs -p) 2>/dev/null; wait'\'' EXIT'
        # After "tobus-bus &", wait until its Redis answers, as a user would see it start.
        echo "wait_bus() { for _ in \$(seq 100); do command redis-cli -s '$sock' ping >/dev/null 2>&1 && return; command redis-cli -p 6379 ping >/dev/null 2>&1 && return; sleep 0.1; done; }"
        for ((i = 1; i <= n; i++)); do
            # What the command printed by the time it returned: background jobs it started (the
            # modules of a 'for' loop) may write to the same file later, as the next commands run.
            printf '{\n%s\n} >"$2/got.%d" 2>&1\ncp "$2/got.%d" "$2/shown.%d"\n' "$(cat "$dir/cmd.$i")" "$i" "$i" "$i"
            grep -qE '^tobus-bus( .*)? &$' "$dir/cmd.$i" && echo wait_bus
        done
    } >"$dir/script.sh"

    timeout 100 "${env[@]}" bash "$dir/script.sh" "$SCRATCH/work" "$dir" >"$dir/script.out" 2>&1
    local rc=$?
    ((rc == 124)) && fail "$file: the commands did not finish within 100s"

    local -a want got
    for ((i = 1; i <= n; i++)); do
        local cmd label
        cmd=$(cat "$dir/cmd.$i")
        label="$(basename "$file"): \$ $(head -n1 <<<"$cmd")"
        if [[ $cmd =~ \&[[:space:]]*$ ]]; then
            pass "$label (in the background)"
            continue
        fi
        if [[ ! -f $dir/shown.$i ]]; then
            fail "$label: did not run"
            continue
        fi
        mapfile -t want <"$dir/want.$i"
        mapfile -t got <"$dir/shown.$i"
        if lines_match 0 0; then
            pass "$label"
        else
            fail "$label: printed something else"
            echo "--- shown in $(basename "$file"):"
            cat "$dir/want.$i"
            echo "--- printed:"
            cat "$dir/shown.$i"
            echo "---"
        fi
    done
    if ((FAILURES)); then
        echo "--- output of the background commands:"
        for ((i = 1; i <= n; i++)); do
            grep -qE '&[[:space:]]*$' "$dir/cmd.$i" && [[ -s $dir/got.$i ]] &&
                { echo "\$ $(head -n1 "$dir/cmd.$i")"; cat "$dir/got.$i"; }
        done
        cat "$dir/script.out"
    fi
}
