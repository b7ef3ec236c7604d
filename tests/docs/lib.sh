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
VALUE_KINDS=(URL NAME N DURATION ROUTE KEY=VALUE TEXT ID DIR PATH LEVEL TYPE FORMAT POLICY CMD)

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

# option_table PROG: the program's option table (PROG --_options), one line per option:
# NAMES<TAB>VALUE<TAB>DESCRIPTION.
option_table() {
    "$TOBUS_BIN_DIR/$1" --_options
}

# option_names PROG: every option name of PROG (-r, --redis, ...), one per line.
option_names() {
    option_table "$1" | cut -f1 | tr , '\n'
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
