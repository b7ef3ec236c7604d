#!/usr/bin/env bash
# The embedded default trusts only what is the user's own. A runtime (socket) directory or a data
# directory that another user owns, that is a symbolic link, or that others can write in is
# refused in one line with exit status 1: by tobus-bus before it starts a redis-server, and by the
# other programs before they connect to a socket there. Otherwise another local user could create
# the directory first, run a server on redis.sock, and read and inject the bus's messages.
# Independent cases (soft): each one sets up its directories from scratch.
E2E_NO_REDIS=1
E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-30} # a refusal is immediate; a bus or module that is not refused would run on
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export HOME=$T/home XDG_RUNTIME_DIR=$T/run XDG_STATE_HOME=$T/state
mkdir -p "$HOME" "$XDG_RUNTIME_DIR" "$XDG_STATE_HOME"
chmod 700 "$XDG_RUNTIME_DIR"
rundir=$XDG_RUNTIME_DIR/tobus
sock=$rundir/redis.sock
datadir=$XDG_STATE_HOME/tobus
runtime_hint='(remove it or set XDG_RUNTIME_DIR)'
data_hint='(remove it or set TOBUS_DATA_DIR)'
writable='others can write in it (mode 0777; chmod 700 it or remove it)'

root=0
if [[ $(id -u) == 0 ]]; then
    root=1
else
    note "not root: the cases of a directory or socket owned by another user are skipped"
fi

# servers [TEXT]: every redis-server of this test (its command line names $T), bus-started or
# planted (an earlier case that failed may have left one running); with TEXT, those whose command
# line holds it too.
servers() {
    local f pid comm line
    for f in /proc/[0-9]*/comm; do
        read -r comm 2>/dev/null <"$f" && [[ $comm == redis-server ]] || continue
        pid=${f#/proc/}
        pid=${pid%/comm}
        alive "$pid" || continue
        line=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
        [[ $line == *"$T/"* && $line == *"${1:-}"* ]] && echo "$pid"
    done
}
# The ones a bus of this test started: persistent (the planted ones run without persistence).
our_servers() { servers 'appendonly yes'; }

no_servers() { [[ -z $(servers) ]]; }

reset_dirs() {
    local pid
    for pid in $(servers); do kill -KILL "$pid" 2>/dev/null; done
    wait_for -t 30 no_servers || fail "redis-servers of an earlier case still run"
    rm -rf "$rundir" "$datadir" "$T/elsewhere" "$T/datalink"
    mkdir -m 700 "$T/elsewhere"
}

# refused LABEL EXPECTED-STDERR-LINE CMD...: CMD exits 1 with exactly that line on stderr, prints
# nothing, and no redis-server was started nor a socket or data directory made.
refused() {
    local label=$1 want=$2
    shift 2
    run refused "$@"
    assert_rc 1 "$label"
    assert_eq "$want" "$(cat "$RUN_ERR")" "$label: stderr"
    assert_empty_file "$RUN_OUT" "$label: stdout"
    [[ -z $(our_servers) ]] || fail "$label: a redis-server was started: pids $(our_servers)"
    [[ ! -e $sock && ! -e $T/elsewhere/redis.sock ]] || fail "$label: a socket was made"
    [[ ! -e $datadir ]] || fail "$label: the data directory $datadir was made"
}

# bus_refuses LABEL REASON: tobus-bus, with and without --embedded, refuses the runtime directory.
bus_refuses() {
    local label=$1 reason=$2
    local want="tobus-bus: error: refusing runtime directory '$rundir': $reason"
    refused "$label: tobus-bus" "$want" tobus-bus
    refused "$label: tobus-bus --embedded" "$want" tobus-bus --embedded
}

# (a) The runtime directory exists and belongs to another user.
case_other_owner() {
    reset_dirs
    mkdir -m 700 "$rundir"
    chown 65534 "$rundir"
    bus_refuses "runtime dir of uid 65534" "owned by uid 65534, not you $runtime_hint"
}

# (b) The runtime directory is a symbolic link, even to a private directory of ours.
case_symlink() {
    reset_dirs
    ln -s "$T/elsewhere" "$rundir"
    bus_refuses "runtime dir a symlink" "it is a symbolic link $runtime_hint"
}

# (c) The runtime directory is ours but others can write in it.
case_writable() {
    reset_dirs
    mkdir "$rundir"
    chmod 777 "$rundir"
    bus_refuses "runtime dir mode 0777" "$writable"
}

# The data directory (the AOF: every message) is held to the same rules.
case_data_symlink() {
    reset_dirs
    ln -s "$T/elsewhere" "$T/datalink"
    refused "data dir a symlink" \
        "tobus-bus: error: refusing data directory '$T/datalink': it is a symbolic link $data_hint" \
        env TOBUS_DATA_DIR="$T/datalink" tobus-bus --embedded
}

case_data_other_owner() {
    reset_dirs
    mkdir -m 700 "$datadir"
    chown 65534 "$datadir"
    run refused tobus-bus --embedded
    assert_rc 1 "data dir of uid 65534"
    assert_eq "tobus-bus: error: refusing data directory '$datadir': owned by uid 65534, not you $data_hint" \
        "$(cat "$RUN_ERR")" "data dir of uid 65534: stderr"
    [[ -z $(our_servers) ]] || fail "data dir of uid 65534: a redis-server was started: pids $(our_servers)"
    [[ ! -e $sock ]] || fail "data dir of uid 65534: a socket was made"
    [[ -z $(ls -A "$datadir") ]] || fail "data dir of uid 65534: something was written in it"
}

# A directory of ours that others can only read is made private (0700) and used.
case_readable_tightened() {
    local bus_pid
    reset_dirs
    mkdir -m 755 "$rundir" "$datadir"
    start_bus --embedded
    bus_pid=$E2E_LAST_PID
    wait_for -t 60 redis-cli -s "$sock" ping || fail "runtime dir mode 0755: no embedded server on $sock"
    assert_eq 700 "$(stat -c %a "$rundir")" "the runtime directory made private"
    assert_eq 700 "$(stat -c %a "$datadir")" "the data directory made private"
    run send tobus-send --to m -m hello
    assert_rc 0 "tobus-send to the embedded server in a private directory"
    stop_proc "$bus_pid" TERM
    assert_eq 143 "$RC" "tobus-bus exit code after SIGTERM"
    wait_for -t 30 not test -e "$sock" || fail "socket $sock still there after the bus stopped"
}

# (d) The clients refuse a socket in a directory that is not the user's, or a socket of another
# user's, where a real server answers: they neither connect nor write anything.
server_pid=
start_server() { # start_server DIR: a redis-server on DIR/redis.sock
    redis-server --port 0 --unixsocket "$1/redis.sock" --unixsocketperm 777 --save '' --appendonly no \
        --daemonize no --dir "$T" >"$T/planted.log" 2>&1 &
    server_pid=$!
    E2E_PIDS+=("$server_pid")
    wait_for -t 30 redis-cli -s "$1/redis.sock" ping || fail "the planted redis-server did not answer in $1"
}
stop_server() {
    stop_proc "$server_pid" TERM
    server_pid=
}

# clients_refuse LABEL SOCKET WANT: every program refuses; the server there got nothing.
clients_refuse() {
    local label=$1 at=$2 want=$3 p
    for p in tobus-send tobus-module tobus-watch tobus-state tobus-bus; do
        local -a cmd=("$p")
        case $p in
            tobus-send) cmd+=(--to m -m secret) ;;
            tobus-module) cmd+=(m -- cat) ;;
            tobus-state) cmd+=(modules) ;;
        esac
        run client "${cmd[@]}"
        assert_rc 1 "$label: ${cmd[*]}"
        assert_eq "$p: error: $want" "$(cat "$RUN_ERR")" "$label: ${cmd[*]}: stderr"
        assert_empty_file "$RUN_OUT" "$label: ${cmd[*]}: stdout"
    done
    assert_eq 0 "$(redis-cli -s "$at" DBSIZE)" "$label: keys written to the planted server"
    [[ -z $(our_servers) ]] || fail "$label: a redis-server was started: pids $(our_servers)"
}

case_clients_writable() {
    reset_dirs
    mkdir "$rundir"
    chmod 777 "$rundir"
    start_server "$rundir"
    clients_refuse "socket in a dir of mode 0777" "$sock" "refusing runtime directory '$rundir': $writable"
    stop_server
}

case_clients_symlink() {
    reset_dirs
    ln -s "$T/elsewhere" "$rundir"
    start_server "$T/elsewhere"
    clients_refuse "socket behind a symlinked dir" "$T/elsewhere/redis.sock" \
        "refusing runtime directory '$rundir': it is a symbolic link $runtime_hint"
    stop_server
}

case_clients_other_owner() {
    reset_dirs
    mkdir -m 700 "$rundir"
    start_server "$rundir"
    chown 65534 "$rundir"
    clients_refuse "socket in a dir of uid 65534" "$sock" \
        "refusing runtime directory '$rundir': owned by uid 65534, not you $runtime_hint"
    stop_server
}

case_clients_socket_owner() {
    reset_dirs
    mkdir -m 700 "$rundir"
    start_server "$rundir"
    chown 65534 "$sock"
    clients_refuse "socket of uid 65534" "$sock" "refusing socket '$sock': owned by uid 65534, not you (remove it)"
    stop_server
}

# A server in a private directory of ours is used, with no option: the check lets the good through.
case_clients_trusted() {
    reset_dirs
    mkdir -m 700 "$rundir"
    start_server "$rundir"
    run send tobus-send --to m -m ok
    assert_rc 0 "tobus-send to a socket in a private directory of ours"
    assert_eq 1 "$(redis-cli -s "$sock" EXISTS "$NS:bus")" "the message reached the server in our directory"
    stop_server
}

((root)) && soft case_other_owner
soft case_symlink
soft case_writable
soft case_data_symlink
((root)) && soft case_data_other_owner
soft case_readable_tightened
soft case_clients_writable
soft case_clients_symlink
((root)) && soft case_clients_other_owner
((root)) && soft case_clients_socket_owner
soft case_clients_trusted
finish
