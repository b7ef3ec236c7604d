#!/usr/bin/env python3
"""A --framed co-process: upper-cases each payload. Binary-safe (docs/coprocess.md)."""
import sys

inp, out = sys.stdin.buffer, sys.stdout.buffer
while True:
    header = inp.readline()          # b"LEN\n"; b"" when the module closed our stdin
    if not header:
        break
    payload = inp.read(int(header))  # exactly LEN bytes: NUL, newlines, anything
    if payload.startswith(b"fail:"):
        answer, rc = payload[5:], 1  # fail this message; the bytes are the reason
    else:
        answer, rc = payload.upper(), 0
    out.write(b"%d %d\n" % (rc, len(answer)) + answer)
    out.flush()                      # answer now: the module is waiting for it
