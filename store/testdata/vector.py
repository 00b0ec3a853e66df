#!/usr/bin/env python3
"""An implementation of the journal hash written apart from the Go code, from the
package documentation only. It writes vector.jsonl, which the Go tests verify, so the
documented encoding and the Go code cannot drift apart unnoticed.

Run: python3 vector.py > vector.jsonl"""
import hashlib, json, struct, sys

def field(b):
    return struct.pack(">Q", len(b)) + b

def entry_hash(journal, seq, at, typ, data, prev):
    parts = [b"hemicycle-journal-v1", journal.encode(), str(seq).encode(), at.encode(),
             typ.encode(), data.encode(), prev.encode()]
    return hashlib.sha256(b"".join(field(p) for p in parts)).hexdigest()

journal = "conseil-municipal/2026-03-05 séance"
events = [
    ("2026-03-05T18:30:00Z", "session.opened", {"chair": "seat-1", "title": "Séance ordinaire"}),
    ("2026-03-05T18:31:07.25Z", "attendance.arrived", {"seat": "12", "where": "remote"}),
    ("2026-03-05T18:45:59.123456789Z", "ballot.cast", {"choice": "for", "proxy": None, "seat": "12"}),
]
prev = ""
for seq, (at, typ, payload) in enumerate(events, start=1):
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    h = entry_hash(journal, seq, at, typ, data, prev)
    line = '{"journal":%s,"seq":%d,"at":"%s","type":%s,"data":%s,"prev":"%s","hash":"%s"}' % (
        json.dumps(journal, ensure_ascii=False), seq, at, json.dumps(typ), data, prev, h)
    sys.stdout.write(line + "\n")
    prev = h
