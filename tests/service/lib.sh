# shellcheck shell=bash
# Harness of the service tests: the e2e harness (tests/e2e/lib.sh: $T, run, assert_*, cleanup of
# every process carrying the test's marker) without a Redis, plus the driver of the service
# framework's functions.
#   SVC_DRIVER   svc-driver (meson sets it; default ../../build/tests/service/svc-driver)
#   SVC_HOG      svc-hog, a memory hog

E2E_NO_REDIS=1
# shellcheck source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

SVC_SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${SVC_DRIVER:=$SVC_SRC_DIR/../../build/tests/service/svc-driver}"
: "${SVC_HOG:=$SVC_SRC_DIR/../../build/tests/service/svc-hog}"
[[ -x $SVC_DRIVER ]] || setup_fail "svc-driver not built at '$SVC_DRIVER'"
D=$SVC_DRIVER
HOG=$SVC_HOG

# stderr's last line (the verdict of `svc-driver once`).
verdict() { tail -n 1 "$RUN_ERR"; }

# elapsed_ms START_NS: milliseconds since START_NS ($(date +%s%N)).
elapsed_ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

# none_left PATTERN: no live process has PATTERN in its command line (zombies do not count).
none_left() {
    local pid
    for pid in $(pgrep -f -- "$1"); do
        [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
        alive "$pid" && return 1
    done
    return 0
}
