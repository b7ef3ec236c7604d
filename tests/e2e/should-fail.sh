#!/usr/bin/env bash
# Must FAIL (meson: should_fail): it runs a real pipeline and asserts a wrong output, so a harness
# that cannot fail (an assert_bytes that always passes, a trap that swallows exit codes) is caught.
# When the pipeline itself is broken it skips instead: quickstart reports that, and this test must
# fail only on its deliberate assertion.
E2E_SETUP_SKIPS=1
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_bus
start_module upper -- tr a-z A-Z

printf 'abc\n' | run send tobus-send --to upper --wait
[[ $RC == 0 && $(od -An -c "$RUN_OUT" | tr -d ' ') == 'ABC\n' ]] ||
    skip "the pipeline itself does not work (rc $RC); see e2e-quickstart"

# The true output is 'ABC\n'.
assert_bytes "$RUN_OUT" 'abc\n' "stdout (deliberately wrong expectation)"

pass
