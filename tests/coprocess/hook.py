#!/usr/bin/env python3
"""A receive hook for the tests: logs every envelope to $HOOK_LOG, drops "drop me", reroutes
"reroute" to module b, passes the rest."""
import json
import os
import sys

log = open(os.environ["HOOK_LOG"], "a")
for line in sys.stdin:
    log.write(line)
    log.flush()
    payload = json.loads(line).get("payload", "")
    if payload == "drop me":
        answer = {"action": "drop", "reason": "no thanks"}
    elif payload == "reroute":
        answer = {"action": "reroute", "route": ["b"]}
    else:
        answer = {"action": "pass"}
    print(json.dumps(answer), flush=True)
