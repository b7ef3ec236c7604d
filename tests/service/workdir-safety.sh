#!/usr/bin/env bash
# Work dirs and the pool against tampering, through tobus-module on a real bus: a job dir swapped
# after it was made (its `output` a symlink to a victim file) or planted under the job's name
# before is never written through; a --workdir base others could write (and not sticky) is refused
# at startup; job dirs are 0700, input 0600; two deliveries of one id at once get a dir each; a
# symlink planted in a work dir is removed, not followed; a pool symlink leading out of the pool
# is not run.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

start_bus

# --- a job dir swapped for another whose `output` is a symlink to a victim ------------------------
# --before plays the other user: it runs once the dir is made, before the handler and its output.
printf 'precious\n' >"$T/victim"
mkdir -m 0755 "$T/base"
start_module swap --workdir "$T/base" --keep-workdir always \
    --before "d=\$(pwd); mv \"\$d\" \"\$d.old\"; mkdir \"\$d\"; ln -s '$T/victim' \"\$d/output\"" -- \
    sh -c 'echo overwritten; cat >/dev/null'
run swap tobus-send --to swap -m x --id s1 --wait --timeout 60s
assert_rc 0 "a job whose dir was swapped after it was made"
assert_bytes "$T/victim" 'precious\n' "the victim file is untouched"
assert_bytes "$T/base/s1.1.old/output" 'overwritten\n' "stdout went to the dir the module made"

# --- a dir planted under the job's name beforehand: not used, not touched ---------------------------
mkdir "$T/base/s2.1"
ln -s "$T/victim" "$T/base/s2.1/output"
start_module planted --workdir "$T/base" --keep-workdir always -- sh -c 'echo overwritten; cat >/dev/null'
run planted tobus-send --to planted -m x --id s2 --wait --timeout 60s
assert_rc 0 "a job whose dir name was taken"
assert_bytes "$T/victim" 'precious\n' "the victim file is untouched"
[[ -L $T/base/s2.1/output && ! -e $T/base/s2.1/input ]] || fail "the planted dir was used: $(ls -la "$T/base/s2.1")"
assert_bytes "$T/base/s2.1-2/output" 'overwritten\n' "the job ran in a dir of its own"
wait_for -t 30 eval '[[ $(tobus-state get job:s2 status) == done ]]' || fail "job:s2 is not done"
assert_eq "$T/base/s2.1-2" "$(tobus-state get job:s2 workdir)" "the job record names the dir it ran in"

# --- modes, and a sticky world-writable base (like /tmp) is fine -----------------------------------
mkdir "$T/sticky" && chmod 1777 "$T/sticky"
start_module modes --workdir "$T/sticky" --keep-workdir always -- cat
run modes tobus-send --to modes -m secret --id s3 --wait --timeout 60s
assert_rc 0 "a job in a sticky world-writable base"
assert_bytes "$RUN_OUT" 'secret\n' "its result"
assert_eq 700 "$(stat -c %a "$T/sticky/s3.1")" "the job dir's mode"
assert_eq 600 "$(stat -c %a "$T/sticky/s3.1/input")" "input's mode"
assert_eq 600 "$(stat -c %a "$T/sticky/s3.1/output")" "output's mode"

# A base the module makes itself is private.
start_module fresh --workdir "$T/new/base" --keep-workdir always -- cat
run fresh tobus-send --to fresh -m x --id s4 --wait --timeout 60s
assert_rc 0 "a job in a base the module made"
assert_eq 700 "$(stat -c %a "$T/new/base")" "the base the module made"

# --- bases others could write: refused at startup, one line, exit 2 --------------------------------
mkdir "$T/open" && chmod 0777 "$T/open"
run open tobus-module open --workdir "$T/open" -- cat
assert_rc 2 "a world-writable, non-sticky --workdir"
assert_eq "tobus-module: error: --workdir '$T/open' is writable by others (mode 0777) and not sticky: chmod go-w or chmod +t it" \
    "$(head -n 1 "$RUN_ERR")" "it says so"
mkdir "$T/group" && chmod 0775 "$T/group"
run group tobus-module group --workdir "$T/group" -- cat
assert_rc 2 "a group-writable, non-sticky --workdir"
ln -s "$T/base" "$T/link"
run link tobus-module link --workdir "$T/link" -- cat
assert_rc 2 "a --workdir that is a symlink"
assert_eq "tobus-module: error: --workdir '$T/link' is a symlink: name the directory itself" "$(head -n 1 "$RUN_ERR")" "it says so"
if ((EUID == 0)); then
    mkdir "$T/theirs" && chown 65534 "$T/theirs"
    run theirs tobus-module theirs --workdir "$T/theirs" -- cat
    assert_rc 2 "a --workdir of another user"
    assert_eq "tobus-module: error: --workdir '$T/theirs' belongs to another user (uid 65534), who could replace the job dirs in it" \
        "$(head -n 1 "$RUN_ERR")" "it says so"
fi

# --- one id delivered twice at once: each job keeps its own dir ------------------------------------
# Each handler waits (bounded) until both have started, then checks its input is still its own.
start_module dup --workdir "$T/dupw" --keep-workdir always -j 2 -- sh -c '
    p=$(cat); : >"$0/started.$p"; i=0
    while [ ! -e "$0/started.A" ] || [ ! -e "$0/started.B" ]; do
        i=$((i + 1)); [ $i -gt 600 ] && break; sleep 0.1
    done
    if [ "$(cat input 2>/dev/null)" = "$p" ]; then echo "$p ok" >>"$0/dup.log"; else echo "$p lost its input" >>"$0/dup.log"; fi
    printf %s "$p"' "$T"
run dupA tobus-send --to dup --id dup -m A
assert_rc 0 "the first delivery of id dup"
run dupB tobus-send --to dup --id dup -m B
assert_rc 0 "the second delivery of id dup"
wait_for -t 90 eval '(($(wc -l <"$T/dup.log" 2>/dev/null || echo 0) >= 2))' || fail "the two jobs did not end: $(cat "$T/dup.log" 2>&1)"
assert_eq "A ok B ok" "$(sort "$T/dup.log" | paste -sd' ')" "both jobs kept their input to the end"
assert_eq "dup.1 dup.1-2" "$(ls "$T/dupw" | paste -sd' ')" "a work dir per delivery"
assert_eq "AB" "$(cat "$T/dupw/dup.1/input" "$T/dupw/dup.1-2/input" | fold -w1 | sort | paste -sd '')" "each with its own input"

# --- removal does not follow a symlink planted in the work dir --------------------------------------
mkdir "$T/outside" && printf keep >"$T/outside/file"
start_module rm --workdir "$T/rmw" --keep-workdir never -- \
    sh -c "ln -s '$T/outside' link; mkdir d; ln -s '$T/outside/file' d/f; cat"
run rm tobus-send --to rm -m x --id r1 --wait --timeout 60s
assert_rc 0 "a job that left symlinks in its dir"
assert_eq "" "$(ls -A "$T/rmw")" "its dir is removed"
assert_bytes "$T/outside/file" 'keep' "what the symlinks pointed to is untouched"

# --- a pool symlink leading out of the pool is not run ----------------------------------------------
pool=$T/pool
mkdir "$pool"
printf '#!/bin/sh\ntr a-z A-Z\n' >"$pool/up" && chmod +x "$pool/up"
ln -s up "$pool/alias"
ln -s /bin/sh "$pool/sh"
start_module tools --pool "$pool"
run alias tobus-send --to tools -H service=alias -m hi --wait --timeout 60s
assert_rc 0 "a symlink to a service of the pool"
assert_bytes "$RUN_OUT" 'HI\n' "it runs that service"
run shlink tobus-send --to tools -H service=sh -m "touch '$T/ran'" --id p1 --wait --timeout 60s
assert_rc 1 "a symlink to /bin/sh in the pool"
[[ ! -e $T/ran ]] || fail "the payload ran as a shell script"
assert_eq "tobus-send: error: message p1 failed at hop 'tools' (rc 127): service 'sh' leads out of the pool: '$pool/sh' is a symlink to '$(realpath /bin/sh)'" \
    "$(cat "$RUN_ERR")" "the sender is told why"

pass
