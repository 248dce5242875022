#!/usr/bin/env python3
"""Writes shared/spec/chain-vectors.json: the hash chain's rules as data.

An implementation of the chain of its own (Python's hashlib and a JCS of RFC 8785 for the values
the service writes), independent of the Rust and TypeScript ones that read the file:
  - `members`: the record's members in JCS order and how each is written;
  - `records`: rows as the API shows them -> the record's JCS -> its hash;
  - `chains`: a customer's rows, a signed head and what a verifier must say of them (the
    summary, or the first finding). The expected outcomes are written here by hand;
  - `held`: the same with checkpoints signed earlier that the signed chain must extend.
Run it after a change to the record (`python3 scripts/chain_vectors.py`); the tests of the
domain, of the verifier's fast path and of the page read the file.
"""
import copy
import hashlib
import json
import pathlib

OUT = pathlib.Path(__file__).resolve().parent.parent / "shared" / "spec" / "chain-vectors.json"
GENESIS = "0" * 64
PARTNER = "p1"
MEMBERS = [
    ("action", "required"),
    ("customerId", "required"),
    ("customerName", "required"),
    ("details", "omittedWhenNull"),
    ("id", "required"),
    ("occurredAt", "required"),
    ("partnerId", "tenant"),
    ("partnerUser", "required"),
    ("previousRecordedAt", "nullWhenAbsent"),
    ("recordedAt", "required"),
    ("recordedBy", "nullWhenAbsent"),
    ("resourceType", "omittedWhenNull"),
    ("sequence", "sequence"),
    ("status", "required"),
]


def jcs(v):
    """RFC 8785 for strings, integers, the few fractions used here, booleans, null, arrays and
    objects (members sorted by UTF-16 code units)."""
    if isinstance(v, dict):
        names = sorted(v, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(jcs(k) + ":" + jcs(v[k]) for k in names) + "}"
    if isinstance(v, list):
        return "[" + ",".join(jcs(x) for x in v) + "]"
    if isinstance(v, float):
        assert v in (1.5, -0.25), "only fractions whose ECMAScript form is Python's repr"
        return repr(v)
    return json.dumps(v, ensure_ascii=False)


def record(row, partner=PARTNER):
    r = {}
    for name, presence in MEMBERS:
        if presence == "tenant":
            r[name] = partner
        elif presence == "omittedWhenNull":
            if row.get(name) is not None:
                r[name] = row[name]
        elif presence == "nullWhenAbsent":
            r[name] = row.get(name)
        else:
            r[name] = row[name]
    return r


def hash_of(row, previous):
    return hashlib.sha256(bytes.fromhex(previous) + jcs(record(row)).encode("utf-8")).hexdigest()


def activity(n, **over):
    row = {
        "id": f"01JDQ0000000000000000000{n:02d}",
        "customerId": "c1",
        "customerName": "客戶 #1",
        "action": f"Updated subscription {n}",
        "partnerUser": "admin@partner.example",
        "occurredAt": f"2026-11-25T01:02:{n:02d}.004Z",
        "recordedAt": f"2026-11-25T01:03:{n:02d}.000Z",
        "recordedBy": "writer-1",
        "status": "succeeded",
        "resourceType": "subscription",
        "details": {"quantity": n},
        "detailsIncluded": True,
    }
    row.update(over)
    return row


def chain(rows):
    previous, previous_recorded_at = GENESIS, None
    out = []
    for i, row in enumerate(rows, start=1):
        row = dict(row, sequence=i, previousHash=previous, previousRecordedAt=previous_recorded_at)
        row["hash"] = hash_of(row, previous)
        previous, previous_recorded_at = row["hash"], row["recordedAt"]
        out.append(row)
    return out


def records():
    full = activity(
        1,
        customerName='Ünïcode "quoted" \\ back\tslash \u000f \u2028 😀',
        details={"z": 1, "a": {"名稱": "台積電", "n": 1.5, "m": -0.25}, "\ufb33": True,
                 "\U0001f600": None, "list": [3, "x", False, {}, []]},
    )
    bare = activity(2, details=None, resourceType=None)
    del bare["recordedBy"]
    nulls = activity(3, details=None, resourceType=None, recordedBy=None)
    cases = []
    full["previousRecordedAt"] = "2026-11-25T01:02:59.000Z"
    nulls["previousRecordedAt"] = "2026-11-25T01:03:01.000Z"
    for name, row, seq, prev in [
        ("every member, escapes, non-ASCII and UTF-16 ordering", full, 7, "ab" * 32),
        ("no details, no resource type, the writer unknown (absent), sequence 1", bare, 1, GENESIS),
        ("details and resource type null are left out; recordedBy null", nulls, 2, "0f" * 32),
    ]:
        row = dict(row, sequence=seq, previousHash=prev)
        row["hash"] = hash_of(row, prev)
        cases.append({
            "name": name,
            "row": row,
            "canonical": jcs(dict(record(row))),
            "hash": row["hash"],
        })
    return cases


def ids(rows, *seqs):
    return [rows[s - 1]["id"] for s in seqs]


def chains():
    base = chain([activity(n) for n in range(1, 7)])
    head = {"sequence": 6, "hash": base[5]["hash"]}
    now = "2026-11-28T00:00:00.000Z"
    api = {"now": now, "retentionDays": 365}
    cases = []

    def case(name, rows, expect, checkpoint=head, expiry=api, contiguous=True):
        cases.append({
            "name": name,
            "rows": rows,
            "checkpoint": checkpoint,
            "contiguous": contiguous,
            "expiry": expiry if contiguous else None,
            "expect": expect,
        })

    def ok(rows, first, last, expired=0, reaches=True, past=0):
        return {"ok": {"rows": rows, "first": first, "last": last, "expired": expired,
                       "reachesCheckpoint": reaches, "pastCheckpoint": past}}

    rows = copy.deepcopy(base)
    case("an intact chain, in any order", list(reversed(rows)), ok(6, 1, 6))

    rows = copy.deepcopy(base)
    rows[2]["action"] = "Deleted everything"
    case("a changed member", rows, {"finding": {"kind": "altered", "id": ids(base, 3)[0], "sequence": 3}})

    rows = copy.deepcopy(base)
    rows[2]["details"] = {"quantity": 300}
    case("changed details", rows, {"finding": {"kind": "altered", "id": ids(base, 3)[0], "sequence": 3}})

    rows = copy.deepcopy(base)
    rows[2]["action"] = "Deleted everything"
    rows[2]["hash"] = hash_of(rows[2], rows[2]["previousHash"])
    case("a changed member, its hash recomputed", rows,
         {"finding": {"kind": "rehashed", "id": ids(base, 3)[0], "sequence": 3, "nextId": ids(base, 4)[0]}})

    rows = copy.deepcopy(base)
    del rows[2]
    case("a removed activity", rows,
         {"finding": {"kind": "missing", "id": ids(base, 4)[0], "sequence": 4, "after": 2}})
    case("a removed activity, long after: it had expired", copy.deepcopy(rows), ok(5, 1, 6, expired=1),
         expiry={"now": "2027-12-31T00:00:00.000Z", "retentionDays": 365})
    case("sequences left out of an export (not contiguous)", copy.deepcopy(rows), ok(5, 1, 6), contiguous=False)

    rows = copy.deepcopy(base)
    rows[1]["sequence"], rows[3]["sequence"] = 4, 2
    case("two sequences swapped", rows,
         {"finding": {"kind": "outOfOrder", "id": ids(base, 4)[0], "sequence": 2,
                      "followsId": ids(base, 3)[0], "followsSequence": 3}})

    rows = copy.deepcopy(base)
    rows[3]["sequence"] = 3
    case("two activities show the same sequence", rows,
         {"finding": {"kind": "duplicate", "id": ids(base, 4)[0], "sequence": 3, "otherId": ids(base, 3)[0]}})

    rows = copy.deepcopy(base)
    rows[0]["previousHash"] = "11" * 32
    rows[0]["hash"] = hash_of(rows[0], rows[0]["previousHash"])
    case("sequence 1 not chained to 64 zeros", rows,
         {"finding": {"kind": "altered", "id": ids(base, 1)[0], "sequence": 1}})

    case("the head is not the signed one", copy.deepcopy(base),
         {"finding": {"kind": "notSigned", "id": ids(base, 6)[0], "sequence": 6}},
         checkpoint={"sequence": 6, "hash": "22" * 32})

    case("the last activities before the signed head are missing", copy.deepcopy(base[:5]),
         {"finding": {"kind": "missingBeforeCheckpoint", "last": 5, "checkpoint": 6}})
    case("an export may end before the signed head", copy.deepcopy(base[:5]), ok(5, 1, 5, reaches=False),
         contiguous=False)

    case("the oldest activities deleted before they expired", copy.deepcopy(base[2:]),
         {"finding": {"kind": "missingAtStart", "id": ids(base, 3)[0], "sequence": 3,
                      "previousRecordedAt": base[1]["recordedAt"]}})
    case("a chain may start later (older activities expired)", copy.deepcopy(base[2:]),
         ok(4, 3, 6), expiry={"now": "2027-12-31T00:00:00.000Z", "retentionDays": 365})

    rows = chain([activity(n) for n in range(1, 4)]
                 + [activity(4, recordedAt="2026-11-25T01:03:01.000Z")]
                 + [activity(n) for n in range(5, 7)])
    case("a recording time earlier than the one before it", rows,
         {"finding": {"kind": "timeWentBack", "id": ids(base, 4)[0], "sequence": 4}},
         checkpoint={"sequence": 6, "hash": rows[5]["hash"]})

    rows = copy.deepcopy(base)
    rows[5]["action"] = "Recorded after the checkpoint was signed"
    case("activities after the signed head are set aside, not checked", rows, ok(5, 1, 5, past=1),
         checkpoint={"sequence": 5, "hash": base[4]["hash"]})
    return cases


def held():
    """Checks against checkpoints a verifier already holds (signed earlier): the rows and the
    signed head pass the chain's own check; what the held ones say of them is `expect`."""
    base = chain([activity(n) for n in range(1, 7)])
    signed_at = "2026-11-27T00:00:00.000Z"
    early = "2026-11-25T02:00:00.000Z"
    api = {"now": "2026-11-28T00:00:00.000Z", "retentionDays": 365}
    cases = []

    def case(name, rows, signed, held_heads, expect, expiry=api, contiguous=True, chain_finding=None):
        more = {"chainFinding": chain_finding} if chain_finding else {}
        cases.append({**more,
            "name": name,
            "rows": rows,
            "checkpoint": {"sequence": signed["sequence"], "hash": signed["hash"],
                           "issuedAt": signed.get("issuedAt", signed_at)},
            "held": held_heads,
            "contiguous": contiguous,
            "expiry": expiry if contiguous else None,
            "expect": expect,
        })

    def head(rows, seq, issued=signed_at):
        return {"sequence": seq, "hash": rows[seq - 1]["hash"], "issuedAt": issued}

    def ok(extended=0, expired=0, not_covered=0):
        return {"ok": {"extended": extended, "expired": expired, "notCovered": not_covered}}

    case("the chain extends a held checkpoint", copy.deepcopy(base), head(base, 6),
         [head(base, 3, early), head(base, 6, early)], ok(extended=2))

    case("the tail truncated and the head rolled back", copy.deepcopy(base[:4]), head(base, 4),
         [head(base, 6, "2026-11-26T00:00:00.000Z")],
         {"finding": {"kind": "rolledBack", "sequence": 4, "issuedAt": signed_at,
                      "heldSequence": 6, "heldIssuedAt": "2026-11-26T00:00:00.000Z"}})

    case("an older signed head (an earlier export's) before a newer held one",
         copy.deepcopy(base[:4]), head(base, 4, early), [head(base, 6, "2026-11-26T00:00:00.000Z")],
         ok(not_covered=1))

    rewritten = copy.deepcopy(base[:2]) + [dict(r) for r in base[2:]]
    previous = rewritten[1]["hash"]
    for r in rewritten[2:]:
        r["action"] = "Rewritten " + r["action"]
        r["previousHash"] = previous
        r["hash"] = hash_of(r, previous)
        previous = r["hash"]
    case("rewritten from the middle on, every hash recomputed", rewritten, head(rewritten, 6),
         [head(base, 4, early)],
         {"finding": {"kind": "heldRewritten", "id": ids(base, 4)[0], "sequence": 4,
                      "heldIssuedAt": early}})

    case("the oldest activities deleted before they expired", copy.deepcopy(base[3:]), head(base, 6),
         [head(base, 2, early)],
         {"finding": {"kind": "heldMissing", "sequence": 2, "heldIssuedAt": early}},
         chain_finding={"kind": "missingAtStart", "id": ids(base, 4)[0], "sequence": 4,
                        "previousRecordedAt": base[2]["recordedAt"]})
    case("the oldest activities gone long after: expired", copy.deepcopy(base[3:]), head(base, 6),
         [head(base, 2, early)], ok(expired=1),
         expiry={"now": "2027-12-31T00:00:00.000Z", "retentionDays": 365})

    rows = copy.deepcopy(base)
    del rows[2]
    case("an export that leaves the held activity out (not contiguous)", rows, head(base, 6),
         [head(base, 3, early)], ok(not_covered=1), contiguous=False)
    return cases


def main():
    doc = {
        "about": "The hash chain's rules as data (scripts/chain_vectors.py writes this file; "
                 "README, Tamper-evident log). hash = SHA-256(bytes(previousHash) || "
                 "UTF-8(JCS(record))); the record is `members` of a row; partnerId is the "
                 "tenant's. A chain case's rows are checked against its signed head; `expiry` "
                 "(when contiguous) excuses gaps and a later start where the activity before was "
                 "recorded more than retentionDays before now. `previousRecordedAt` (the recording time of the activity "
                 "before, null for sequence 1) is what tells an expired start or gap from a "
                 "deleted one; recording times never go back along a chain. A held case's rows "
                 "are also checked against checkpoints signed earlier (`held`): the signed chain "
                 "must extend each of them (`chainFinding`: what the chain's own check finds "
                 "first, when it does).",
        "genesisHash": GENESIS,
        "partnerId": PARTNER,
        "members": [{"name": n, "presence": p} for n, p in MEMBERS],
        "records": records(),
        "chains": chains(),
        "held": held(),
    }
    OUT.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
