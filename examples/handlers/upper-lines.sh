#!/bin/sh
# A --lines co-process: one line in, one line out. `sed -u`, `tr` with unbuffered output or an
# awk that calls fflush() do the same; what matters is one answer line per line, right away.
exec sed -u 's/.*/\U&/'
