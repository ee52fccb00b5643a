#!/usr/bin/env python3
"""Checks an audit export (NDJSON from GET /api/v1/audit/export) on its own, without
the API: every event's hash, every link, and no gap in `seq`.

    python3 scripts/audit-verify.py export.ndjson      (or the export on stdin)

hash = hex(SHA-256(prev_hash + "\\n" + canonical)), where canonical is the event
without `prev_hash` and `hash`, as JSON with sorted keys and no whitespace
(docs/audit.md). An export of a time range starts wherever the range starts: the
first event's `prev_hash` is taken as given. Exit 0: intact; 1: broken (the first
broken link is printed); 2: unreadable input.
"""
import hashlib
import json
import sys


def main() -> int:
    source = open(sys.argv[1], encoding="utf-8") if len(sys.argv) > 1 else sys.stdin
    prev_seq = prev_hash = None
    count = 0
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as e:
            print(f"line {number}: not JSON: {e}", file=sys.stderr)
            return 2
        body = {k: v for k, v in event.items() if k not in ("prev_hash", "hash")}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256((event["prev_hash"] + "\n" + canonical).encode("utf-8")).hexdigest()
        seq = event["seq"]
        if prev_seq is not None and seq != prev_seq + 1:
            print(f"broken at seq {prev_seq + 1}: missing (next found is {seq})")
            return 1
        if prev_hash is not None and event["prev_hash"] != prev_hash:
            print(f"broken at seq {seq}: does not link to the event before it")
            return 1
        if digest != event["hash"]:
            print(f"broken at seq {seq}: changed after it was written")
            return 1
        prev_seq, prev_hash = seq, event["hash"]
        count += 1
    print(f"ok: {count} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
