#!/usr/bin/env bash
# docs/coprocess.md shows the example handlers exactly as examples/handlers/ has them, and its
# framed example is what both handlers really answer.
set -u
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
doc=$src/docs/coprocess.md
failures=0
fail() { printf 'FAIL: coprocess-docs: %s\n' "$*" >&2; failures=$((failures + 1)); }

# The first fenced block of language $1 in the doc.
block() { awk -v lang="$1" 'on && /^```$/ { exit } on { print } $0 == "```" lang { on = 1 }' "$doc"; }

diff <(block python) "$src/examples/handlers/upper.py" >/dev/null ||
    fail "the Python handler in docs/coprocess.md differs from examples/handlers/upper.py"
diff <(block sh) "$src/examples/handlers/upper.sh" >/dev/null ||
    fail "the shell handler in docs/coprocess.md differs from examples/handlers/upper.sh"

# The doc's example exchange, run through both handlers.
grep -qF 'stdin:  5\nhello0\n7\nfail:no' "$doc" || fail "the framed example's input is not in the doc"
grep -qF 'stdout: 0 5\nHELLO0 0\n1 2\nno' "$doc" || fail "the framed example's output is not in the doc"
handlers=("$src/examples/handlers/upper.sh")
command -v python3 >/dev/null && handlers+=("$src/examples/handlers/upper.py")
for h in "${handlers[@]}"; do
    got=$(printf '5\nhello0\n7\nfail:no' | timeout 10 "$h" | od -An -c | tr -s ' \n' ' ')
    want=$(printf '0 5\nHELLO0 0\n1 2\nno' | od -An -c | tr -s ' \n' ' ')
    [[ $got == "$want" ]] || fail "$(basename "$h") answers [$got], the doc says [$want]"
done
got=$(printf 'abc\nxyz\n' | timeout 10 "$src/examples/handlers/upper-lines.sh")
[[ $got == $'ABC\nXYZ' ]] || fail "upper-lines.sh answers '$got'"

((failures == 0)) || exit 1
echo "PASS: coprocess-docs" >&2
