# Shared by the docs tests (sourced, not run): which programs are built, their option tables,
# the options their man pages document, and a way to report failures.
#
# Environment, set by tests/docs/meson.build:
#   TOBUS_BIN_DIR     where the built programs are
#   TOBUS_SOURCE_DIR  the source tree (man/, completions/, README.md)
#   TOBUS_VERSION     the project version
#   TOBUS_BUILD_DIR   the build directory (install test only)

set -u -o pipefail
export LC_ALL=C

: "${TOBUS_BIN_DIR:?}" "${TOBUS_SOURCE_DIR:?}"

# The five programs tobus will have; the tests cover those that are built.
ALL_PROGRAMS=(tobus-bus tobus-module tobus-send tobus-watch tobus-state)
PROGRAMS=()
for _p in "${ALL_PROGRAMS[@]}"; do
    [[ -f $TOBUS_BIN_DIR/$_p && -x $TOBUS_BIN_DIR/$_p ]] && PROGRAMS+=("$_p")
done
unset _p

# Allowed VALUE kinds in an option table (see tobus-*(1) and completions/).
VALUE_KINDS=(URL NAME N DURATION ROUTE KEY=VALUE TEXT ID DIR PATH LEVEL TYPE FORMAT POLICY CMD ADDRESS)

MAN_DIR=$TOBUS_SOURCE_DIR/man
COMPLETIONS_DIR=$TOBUS_SOURCE_DIR/completions
export PATH=$TOBUS_BIN_DIR:$PATH

# A private scratch directory, removed at exit. Tests may add cleanup commands to CLEANUP.
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tobus-docs.XXXXXX")
CLEANUP=()
_cleanup() {
    local c
    for c in "${CLEANUP[@]}"; do eval "$c"; done
    rm -rf "$SCRATCH"
}
trap _cleanup EXIT

FAILURES=0
CHECKS=0
fail() {
    printf 'FAIL: %s\n' "$*"
    FAILURES=$((FAILURES + 1))
    CHECKS=$((CHECKS + 1))
}
pass() {
    printf 'ok: %s\n' "$*"
    CHECKS=$((CHECKS + 1))
}
# check DESCRIPTION COMMAND...: pass when COMMAND succeeds.
check() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
# Exit 1 when a check failed, 0 when all passed, and fail when nothing was checked at all.
finish() {
    if [[ -e $SCRATCH/completer.hung ]]; then
        fail "the completion server stopped answering at: $(cat "$SCRATCH/completer.hung")"
    fi
    if ((CHECKS == 0)); then
        echo "FAIL: nothing was checked"
        exit 1
    fi
    if ((FAILURES)); then
        echo "$FAILURES of $CHECKS checks failed"
        exit 1
    fi
    echo "all $CHECKS checks passed"
    exit 0
}
# skip REASON: exit 77, which meson reports as a skipped test.
skip() {
    echo "SKIP: $*"
    exit 77
}

if ((${#PROGRAMS[@]} == 0)); then
    echo "FAIL: no tobus program is built in '$TOBUS_BIN_DIR'"
    exit 1
fi

# raw_table PROG: the program's option table (PROG --_options) as it prints it: one line per
# option, then one per command, NAMES<TAB>VALUE<TAB>DESCRIPTION<TAB>CHOICES<TAB>COMMANDS (see
# lib/tobus/cli/cli.cpp); a command's line has empty NAMES, and its own path as COMMANDS.
raw_table() {
    local cached=$SCRATCH/table.$1
    # Read once per test: the table is the program's, and a sanitized program starts slowly.
    [[ -s $cached ]] || "$TOBUS_BIN_DIR/$1" --_options >"$cached"
    cat "$cached"
}

# option_table PROG: the options' lines of the table.
option_table() {
    raw_table "$1" | grep -v $'^\t'
}

# option_names PROG: every option name of PROG (-r, --redis, ...), one per line.
option_names() {
    option_table "$1" | cut -f1 | tr , '\n'
}

# command_paths PROG: the paths of PROG's commands ("get", "dead retry"), one per line.
command_paths() {
    raw_table "$1" | awk -F'\t' '$1 == "" { print $5 }'
}

# options_at PROG PATH: the option names PROG accepts after the command path PATH ('' for the
# program itself), one per line.
options_at() {
    option_table "$1" | awk -F'\t' -v path="$2" '{
        n = split($5, where, ",")
        if ($5 == "") { n = 1; where[1] = "" }
        for (i = 1; i <= n; i++) if (where[i] == path) { print $1; break }
    }' | tr , '\n'
}

# first_path LINE: where the option of a table line is accepted first: the first of its COMMANDS
# ('' for the program itself), followed by a space unless it is ''.
first_path() {
    local p
    p=$(cut -f5 <<<"$1")
    p=${p%%,*}
    printf '%s' "${p:+$p }"
}

# choice_words LINE: the words of the CHOICES of a table line (without the mode), one per line.
choice_words() {
    cut -f4 <<<"$1" | tr ' ' '\n' | tail -n +2
}

# start_bus_with_data: a private redis-server (TOBUS_REDIS, exported; REDIS_SOCK its socket),
# a bus on it, a module 'picky' of type 'greeter' whose handler fails, and what the completions
# look up there: the module, the type, the state record 'deploy', and the dead letter of the
# message 'msg-1' (DEAD_ENTRY, its stream entry id). Skips without redis-server.
start_bus_with_data() {
    command -v redis-server >/dev/null || skip "redis-server is not installed"
    REDIS_SOCK=$SCRATCH/redis.sock
    redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 --save '' --appendonly no \
        --daemonize yes --pidfile "$SCRATCH/redis.pid" --logfile "$SCRATCH/redis.log" >/dev/null
    CLEANUP+=("redis-cli -s '$REDIS_SOCK' shutdown nosave >/dev/null 2>&1")
    local _
    for _ in $(seq 100); do
        redis-cli -s "$REDIS_SOCK" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    export TOBUS_REDIS=unix://$REDIS_SOCK
    unset TOBUS_NAMESPACE
    tobus-bus >"$SCRATCH/bus.log" 2>&1 &
    CLEANUP+=("kill $! 2>/dev/null; wait $! 2>/dev/null")
    tobus-module picky --type greeter -- false >"$SCRATCH/module.log" 2>&1 &
    CLEANUP+=("kill $! 2>/dev/null; wait $! 2>/dev/null")
    timeout 30 tobus-send --to picky --id msg-1 -m hello --wait --timeout 20s >/dev/null 2>&1
    tobus-state set deploy version=1.4
    DEAD_ENTRY=$(tobus-state dead list 2>/dev/null | awk '$3 == "msg-1" { print $1 }')
    if [[ -z $DEAD_ENTRY ]]; then
        fail "setting up: message msg-1 was not dead-lettered"
        cat "$SCRATCH/bus.log" "$SCRATCH/module.log"
    fi
}

# man_section FILE TITLE: the lines of section "# TITLE" of an scdoc page.
man_section() {
    awk -v title="$2" '
        /^# / { on = (substr($0, 3) == title); next }
        on { print }' "$1"
}

# man_options FILE: the options that the OPTIONS section of an scdoc page documents, as
# NAMES<TAB>VALUE, the same shape as the first two fields of an option table. A term line
# looks like: *-r*, *--redis* _URL_   or   *--embedded*   or   *-H*, *--header* _KEY_=_VALUE_
man_options() {
    man_section "$1" OPTIONS | awk '
        /^\*-/ {
            line = $0; names = ""
            while (match(line, /^\*-[^*]*\*/)) {
                names = names (names == "" ? "" : ",") substr(line, 2, RLENGTH - 2)
                line = substr(line, RLENGTH + 1)
                sub(/^, /, "", line)
            }
            value = line
            gsub(/[*_]/, "", value); gsub(/^ +| +$/, "", value)
            print names "\t" value
        }'
}

# value_kind VALUE: the kind of value an option takes, as the completions read it: the VALUE field
# up to a ':' (options.sh checks that there is none).
value_kind() {
    printf '%s\n' "${1%%:*}"
}

# table_names_values PROG: NAMES<TAB>KIND for each option of PROG (KIND: see value_kind).
table_names_values() {
    option_table "$1" | cut -f1,2 | sed 's/:[^\t]*$//'
}

# start_silent_server: a server at the Unix socket SILENT_SOCK that takes connections and never
# answers, as a Redis that hangs. Skips without python3.
start_silent_server() {
    command -v python3 >/dev/null || skip "python3 is not installed"
    SILENT_SOCK=$SCRATCH/silent.sock
    python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(100)
time.sleep(300)' "$SILENT_SOCK" &
    CLEANUP+=("kill $! 2>/dev/null; wait $! 2>/dev/null")
    local _
    for _ in $(seq 50); do
        [[ -S $SILENT_SOCK ]] && return 0
        sleep 0.1
    done
    fail "setting up: no silent server at $SILENT_SOCK"
}

# --- shared by the completion tests (bash.sh, zsh.sh, fish.sh), which define complete_line LINE:
# the candidates the shell offers for LINE, one per line.

same() { [[ $(sort -u <<<"$1") == "$(sort -u <<<"$2")" ]]; }  # the same candidates
has() { grep -qxF -- "$2" <<<"$1"; }                          # one of the candidates
built() { [[ " ${PROGRAMS[*]} " == *" $1 "* ]]; }               # the program is built

# check_bus_values [LINE:WANT...]: with a real bus (start_bus_with_data), the values come from it:
# records, dead letters, modules and types; plus each LINE offering exactly WANT.
check_bus_values() {
    local got c prog want
    if built tobus-state; then
        got=$(complete_line "tobus-state get ")
        check "bus: tobus-state get <TAB> offers the state record deploy: $(paste -sd' ' <<<"$got")" has "$got" deploy
        got=$(complete_line "tobus-state dead show ")
        check "bus: tobus-state dead show <TAB> offers the dead letter's entry id and message id: $(paste -sd' ' <<<"$got")" \
            same "$got" "$DEAD_ENTRY"$'\nmsg-1'
        got=$(complete_line "tobus-state jobs ")
        check "bus: tobus-state jobs <TAB> offers the module picky" same "$got" picky
    fi
    for c in "tobus-send --publish :greeter" "tobus-module --type gr:greeter" "tobus-send --to :picky" "$@"; do
        prog=${c%% *}
        want=${c##*:}
        c=${c%:*}
        built "$prog" || continue
        got=$(complete_line "$c")
        check "bus: $c<TAB> offers $want: $(paste -sd' ' <<<"$got")" same "$got" "$want"
    done
}

# check_unreachable LIMIT_MS [LINE...]: with Redis not answering, then unreachable, completing
# values from the bus gives up within LIMIT_MS and offers none, and options, commands and
# choices still complete. The lookups give up after a second: the limit only tells a bounded wait
# from a hang, so it is generous and scaled like every other wait (TOBUS_E2E_SCALE).
check_unreachable() {
    local limit url how c prog t0 took got
    limit=$(awk -v ms="$1" -v k="${TOBUS_E2E_SCALE:-1}" 'BEGIN { printf "%d", ms * k }')
    shift
    start_silent_server
    for url in "unix://$SILENT_SOCK" redis://127.0.0.1:1; do
        how="not answering"
        [[ $url == redis://127.0.0.1:1 ]] && how=unreachable
        for c in "tobus-state get " "tobus-state dead show " "tobus-send --publish " "$@"; do
            prog=${c%% *}
            built "$prog" || continue
            t0=$(date +%s%3N)
            got=$(TOBUS_REDIS=$url complete_line "$c")
            took=$(($(date +%s%3N) - t0))
            check "Redis $how: $c<TAB> returns within ${limit}ms (${took}ms)" test "$took" -lt "$limit"
            check "Redis $how: $c<TAB> offers no value from the bus" \
                eval '! has "$got" deploy && ! has "$got" greeter && ! has "$got" picky'
        done
        if built tobus-state; then
            got=$(TOBUS_REDIS=$url complete_line "tobus-state get -")
            check "Redis $how: tobus-state get -<TAB> offers its options" same "$got" "$(options_at tobus-state get)"
            got=$(TOBUS_REDIS=$url complete_line "tobus-state ")
            check "Redis $how: tobus-state <TAB> offers the commands" has "$got" dead
        fi
        if built tobus-module; then
            got=$(TOBUS_REDIS=$url complete_line "tobus-module --keep-workdir ")
            check "Redis $how: tobus-module --keep-workdir <TAB> offers its choices" same "$got" $'always\nfailed\nnever'
        fi
    done
}

# check_commands PROG: at the program and after each of its commands, PROG <TAB> offers the
# subcommands.
check_commands() {
    local prog=$1 path want got
    while IFS= read -r path; do
        want=$(command_paths "$prog" | awk -v pre="${path:+$path }" \
            'substr($0, 1, length(pre)) == pre && index(substr($0, length(pre) + 1), " ") == 0 && $0 != pre { print substr($0, length(pre) + 1) }')
        [[ -z $want ]] && continue
        got=$(complete_line "$prog ${path:+$path }")
        check "$prog ${path:+$path }<TAB> offers the commands: $(paste -sd' ' <<<"$got")" same "$got" "$want"
    done < <(printf '\n'; command_paths "$prog")
}

# check_more_of MODE WANT WORDS [rest]: for a list of choices, after "WORDS FIRST," the next of
# the list (each candidate "FIRST,CHOICE"; with `rest`, as zsh offers them: the other choices
# alone); for a template of tokens, after "WORDS FIRST/%" more tokens (WANT: the choices, one per
# line).
check_more_of() {
    local mode=$1 want=$2 words=$3 style=${4:-} first got
    first=$(head -n1 <<<"$want")
    case $mode:$style in
    list:rest)
        got=$(complete_line "$words $first,")
        check "$words $first,<TAB>: completes the rest of the list" same "$got" "$(grep -vxF -- "$first" <<<"$want")"
        ;;
    list:*)
        got=$(complete_line "$words $first,")
        check "$words $first,<TAB>: completes the next of the list" same "$got" "$(sed "s/^/$first,/" <<<"$want")"
        ;;
    tokens:*)
        got=$(complete_line "$words ${first}/%")
        check "$words ${first}/%<TAB>: completes a token after the text" same "$got" "$(sed "s|^|${first}/|" <<<"$want")"
        ;;
    esac
}

# --- one shell answers every completion query of a test (a new shell per query, with compinit,
# took minutes under the sanitizers).

# start_completer CMD...: run CMD as the test's completion server. It reads one request per line,
#   PATH<TAB>REDIS<TAB>NAMESPACE<TAB>LINE
# (REDIS and NAMESPACE: '-' for unset, '=VALUE' for set: the environment the query runs in), and
# answers with the candidates for LINE, one per line, then a line <<END>>.
start_completer() {
    mkfifo "$SCRATCH/completer.in" "$SCRATCH/completer.out"
    "$@" <"$SCRATCH/completer.in" >"$SCRATCH/completer.out" 2>"$SCRATCH/completer.err" &
    COMPLETER_PID=$!
    CLEANUP+=("kill $COMPLETER_PID 2>/dev/null; wait $COMPLETER_PID 2>/dev/null")
    exec {COMPLETER_IN}>"$SCRATCH/completer.in" {COMPLETER_OUT}<"$SCRATCH/completer.out"
}

# complete_line LINE: the candidates the completion server offers for LINE, one per line, in the
# caller's PATH, TOBUS_REDIS and TOBUS_NAMESPACE. A server that takes more than 10 seconds over a
# line is stopped, and the test fails at finish.
complete_line() {
    [[ -e $SCRATCH/completer.hung ]] && return 0
    local redis=- ns=- reply
    [[ -n ${TOBUS_REDIS+set} ]] && redis="=$TOBUS_REDIS"
    [[ -n ${TOBUS_NAMESPACE+set} ]] && ns="=$TOBUS_NAMESPACE"
    printf '%s\t%s\t%s\t%s\n' "$PATH" "$redis" "$ns" "$1" >&"$COMPLETER_IN"
    while IFS= read -r -t 10 -u "$COMPLETER_OUT" reply; do
        [[ $reply == '<<END>>' ]] && return 0
        printf '%s\n' "$reply"
    done
    printf '%s\n' "$1" >"$SCRATCH/completer.hung"
    kill "$COMPLETER_PID" 2>/dev/null
    cat "$SCRATCH/completer.err" >&2
}
