#!/usr/bin/env bash
# Work dirs: DIR/<job-id>/ per job with the payload in `input` and stdout in `output`; the result
# is stdout or --result FILE; --keep-workdir always|failed|never.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# the_dir BASE: the one job dir under BASE.
the_dir() {
    local dirs=("$1"/*)
    ((${#dirs[@]} == 1)) && [[ -d ${dirs[0]} ]] || fail "expected one job dir in $1, found: ${dirs[*]}"
    echo "${dirs[0]}"
}

# Layout: the handler runs in its dir, input holds the payload, output what it wrote on stdout.
run layout "$D" once --workdir "$T/w1" --keep-workdir always -m 'pay load' -- \
    sh -c 'echo "cwd=$(pwd)"; echo "var=$TOBUS_WORKDIR"; ls; tr a-z A-Z <input'
assert_rc 0 "layout"
dir=$(the_dir "$T/w1")
[[ $(basename "$dir") =~ ^[A-Za-z0-9_.%-]+\.1$ ]] || fail "job dir name '$(basename "$dir")' is not ID.ATTEMPT"
assert_bytes "$dir/input" 'pay load' "layout: input"
assert_bytes "$RUN_OUT" "cwd=$dir\nvar=$dir\ninput\noutput\nPAY LOAD" "layout: the result is stdout"
assert_same_file "$RUN_OUT" "$dir/output" "layout: output holds stdout"

# Job dir names are filesystem-safe and distinct per id and attempt.
assert_eq "a%2F..%2Fb.2" "$("$D" dirname a/../b 2)" "dirname of an id with slashes"
assert_eq "%2E..1" "$("$D" dirname .. 1)" "dirname of '..'"

# --result FILE: the result is the file, stdout is only kept in output.
run result "$D" once --workdir "$T/w2" --keep-workdir always --result out/r.json -m x -- \
    sh -c 'echo log line; mkdir out; printf "{\"ok\":1}" >out/r.json'
assert_rc 0 "--result"
assert_bytes "$RUN_OUT" '{"ok":1}' "--result: the result"
assert_bytes "$(the_dir "$T/w2")/output" 'log line\n' "--result: output"

run noresult "$D" once --workdir "$T/w3" --result r.txt -m x -- sh -c 'echo forgot'
assert_rc 1 "missing --result file"
assert_empty_file "$RUN_OUT" "missing --result file: stdout"
dir=$(the_dir "$T/w3")
assert_eq "would dead-letter: no result file 'r.txt' in the work dir '$dir'" "$(verdict)" "missing --result file"

# A failed handler's result file is not read.
run failres "$D" once --workdir "$T/w4" --result r.txt -m x -- sh -c 'echo r >r.txt; exit 4'
assert_rc 4 "failed handler with --result"
assert_empty_file "$RUN_OUT" "failed handler with --result: stdout"

run badresult "$D" once --workdir "$T/w5" --result ../escape -m x -- true
assert_rc 2 "--result outside the work dir"
assert_contains "must stay inside the work dir" "$(cat "$RUN_ERR")" "--result outside the work dir"

# Keep policies. failed (the default): kept when the job failed, removed when it succeeded.
run k1 "$D" once --workdir "$T/k1" -m x -- true
assert_rc 0 "keep failed, ok"
assert_eq "" "$(ls -A "$T/k1")" "keep failed, ok: removed"
run k2 "$D" once --workdir "$T/k2" -m x -- false
assert_rc 1 "keep failed, failed"
[[ -f $(the_dir "$T/k2")/input ]] || fail "keep failed, failed: kept"
run k3 "$D" once --workdir "$T/k3" --keep-workdir never -m x -- false
assert_eq "" "$(ls -A "$T/k3")" "keep never, failed: removed"
run k4 "$D" once --workdir "$T/k4" --keep-workdir always -m x -- true
[[ -f $(the_dir "$T/k4")/output ]] || fail "keep always, ok: kept"
run k5 "$D" once --workdir "$T/k5" --keep-workdir never --timeout 200ms -m x -- sleep 10
assert_rc 124 "keep never, timed out"
assert_eq "" "$(ls -A "$T/k5")" "keep never, timed out: removed"

# Nested dirs go too.
run k6 "$D" once --workdir "$T/k6" --keep-workdir never -m x -- sh -c 'mkdir -p a/b/c; touch a/b/c/f'
assert_rc 0 "nested dirs removed"
assert_eq "" "$(ls -A "$T/k6")" "nested dirs removed"

# Binary payloads reach input intact.
run bin "$D" once --workdir "$T/w6" --keep-workdir always -m "$(printf 'a\377')" -- cat input
assert_rc 0 "binary payload"
assert_bytes "$(the_dir "$T/w6")/input" 'a\377' "binary payload: input"

# The work dir listing.
mkdir -p "$T/l/sub" && printf 12345 >"$T/l/b" && : >"$T/l/a" && printf xy >"$T/l/sub/c"
assert_eq '{"count":4,"truncated":false,"files":[{"name":"a","size":0},{"name":"b","size":5},{"name":"sub/","size":0},{"name":"sub/c","size":2}]}' \
    "$("$D" list "$T/l")" "listing"

pass
