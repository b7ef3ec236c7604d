#!/usr/bin/env python3
"""Request/reply latency through tobus at low load: one message in flight at a time.

One long-lived `tobus-send --wait` reads payloads on its stdin and prints each result on its
stdout; this script writes one line, waits for that line to come back, and times the round trip
(send -> bus -> module -> bus -> reply stream -> sender). Starting a process per message would
measure process start-up, not the bus.

Prints one line: "N P50_MS P99_MS MEAN_MS MAX_MS", or "0 - - - - REASON" when it could not
measure. Exits 0 either way (the benchmark reports, it does not assert). Standard library only.
"""

import argparse
import os
import select
import subprocess
import sys
import time


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil(n * p / 100)
    return sorted_values[int(rank) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--send", required=True, help="path of tobus-send")
    ap.add_argument("--redis", required=True, help="Redis URL")
    ap.add_argument("--to", default="p", help="route (default p)")
    ap.add_argument("-n", type=int, default=2000, help="timed messages (default 2000)")
    ap.add_argument("--warmup", type=int, default=100, help="untimed messages first (default 100)")
    ap.add_argument("--each", type=float, default=5.0, help="seconds to wait for one reply (default 5)")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds for the whole run (default 60)")
    args = ap.parse_args()

    proc = subprocess.Popen(
        [args.send, "-r", args.redis, "-q", "--to", args.to, "--wait", "--timeout", "%ds" % int(args.each + 1)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
    out_fd = proc.stdout.fileno()
    in_fd = proc.stdin.fileno()
    buf = b""
    samples = []
    reason = ""
    end_of_run = time.monotonic() + args.budget
    try:
        for i in range(args.warmup + args.n):
            if time.monotonic() > end_of_run:
                reason = "run budget of %gs used up after %d messages" % (args.budget, i)
                break
            line = b"%d\n" % i
            t0 = time.perf_counter_ns()
            os.write(in_fd, line)
            deadline = time.monotonic() + args.each
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                ready, _, _ = select.select([out_fd], [], [], left)
                if not ready:
                    continue
                chunk = os.read(out_fd, 65536)
                if not chunk:
                    break
                buf += chunk
            t1 = time.perf_counter_ns()
            if b"\n" not in buf:
                reason = "no reply to message %d within %gs (tobus-send rc %s)" % (i, args.each, proc.poll())
                break
            got, buf = buf.split(b"\n", 1)
            if got + b"\n" != line:
                reason = "reply %r to message %d is not its payload" % (got[:40], i)
                break
            if i >= args.warmup:
                samples.append((t1 - t0) / 1e6)
    except OSError as e:
        reason = "i/o with tobus-send failed: %s" % e
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    if reason or not samples:
        print("0 - - - - %s" % (reason or "no samples"))
        return 0
    samples.sort()
    print("%d %.3f %.3f %.3f %.3f" % (len(samples), percentile(samples, 50), percentile(samples, 99),
                                      sum(samples) / len(samples), samples[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
