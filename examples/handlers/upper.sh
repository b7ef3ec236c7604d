#!/bin/sh
# A --framed co-process in plain sh: upper-cases each payload. Binary-safe (docs/coprocess.md).
in=$(mktemp) out=$(mktemp) || exit 1
trap 'rm -f "$in" "$out"' EXIT
while IFS= read -r len; do                # "LEN"; the loop ends when stdin closes
    head -c "$len" >"$in"                 # exactly LEN bytes, NUL and newlines included
    if printf 'fail:' | cmp -s -n 5 - "$in"; then
        rc=1; tail -c +6 "$in" >"$out"    # fail this message; the bytes are the reason
    else
        rc=0; tr '[:lower:]' '[:upper:]' <"$in" >"$out"
    fi
    printf '%d %d\n' "$rc" "$(wc -c <"$out")"
    cat "$out"
done
