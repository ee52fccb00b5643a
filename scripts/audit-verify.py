#!/usr/bin/env python3
"""Checks an audit export (NDJSON from GET /api/v1/audit/export) on its own, without
the API: every event's hash, every link, and no gap in `seq`.

    python3 scripts/audit-verify.py [--head SEQ:HASH] [export.ndjson]   (or stdin)

hash = hex(SHA-256(prev_hash + "\\n" + canonical)), where canonical is the event
without `prev_hash` and `hash`, as JSON with sorted keys and no whitespace
(docs/audit.md). Event 1 must link to 64 zeros; an export of a later time range
starts wherever the range starts, and its first `prev_hash` is taken as given.
`--head` is the export's `X-Audit-Head` header: the last event must then be that one
(events cut off the end show). Exit 0: intact; 1: broken (the first broken link is
printed); 2: unreadable input.
"""
import hashlib
import json
import sys

GENESIS = "0" * 64


def main() -> int:
    args = sys.argv[1:]
    head = None
    if len(args) >= 2 and args[0] == "--head":
        seq, _, digest = args[1].partition(":")
        head = (int(seq), digest)
        args = args[2:]
    source = open(args[0], encoding="utf-8") if args else sys.stdin
    prev_seq = prev_hash = None
    count = 0
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            body = {k: v for k, v in event.items() if k not in ("prev_hash", "hash")}
            seq, prev, stated = event["seq"], event["prev_hash"], event["hash"]
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            print(f"line {number}: not an event: {e}", file=sys.stderr)
            return 2
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256((prev + "\n" + canonical).encode("utf-8")).hexdigest()
        if seq == 1 and prev != GENESIS:
            print("broken at seq 1: does not start from the genesis hash")
            return 1
        if prev_seq is not None and seq != prev_seq + 1:
            print(f"broken at seq {prev_seq + 1}: missing (next found is {seq})")
            return 1
        if prev_hash is not None and prev != prev_hash:
            print(f"broken at seq {seq}: does not link to the event before it")
            return 1
        if digest != stated:
            print(f"broken at seq {seq}: changed after it was written")
            return 1
        prev_seq, prev_hash = seq, stated
        count += 1
    if head is not None and (prev_seq, prev_hash) != head:
        print(f"broken at seq {(prev_seq or 0) + 1}: the head names event {head[0]}, the export ends at {prev_seq}")
        return 1
    print(f"ok: {count} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
