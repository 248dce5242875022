"""Turns the harness's results.json and the package sizes into the table of BENCHMARKS.md:
each figure against its budget. Exits 1 if any budget is missed.

Usage: report.py <results.json> <packages.json>
"""

import json
import sys

# Earlier builds of the record function the harness measures beside today's (scripts/bench):
# commit -> (area, what came since, the most today's may cost as a ratio).
RECORD_BEFORE = {
    "1e376d4": ("8 Chain", "with the chain vs before it (1e376d4)", 1.3),
    "b244a14": ("9 Streaming", "with the feed vs before it (b244a14)", 1.05),
}

MB = 1000 * 1000
MIB = 1024 * 1024


def rounds(run):
    """Every round's CPU per request, as `a / b / c` us."""
    return " / ".join(f"{us:.0f}" for us in run.get("roundsCpuPerRequestUs", []))


def main():
    results = json.load(open(sys.argv[1]))
    packages = json.load(open(sys.argv[2]))
    rows = []

    def check(area, what, figure, budget, ok):
        rows.append((area, what, figure, budget, "met" if ok else "**MISSED**"))

    if results.get("init"):  # BENCH_ONLY may leave parts out
        init = results["init"]["binaries"]
        hello = init["hello-runtime"]["medianMs"]
        check("1 Init", "hello-world `lambda_runtime` (baseline)", f"{hello:.2f} ms median", "-", True)
        check("1 Init", "no-op `lambda_http`", f"{init['noop-http']['medianMs']:.2f} ms "
              f"({init['noop-http']['ratioToHello']:.2f}x)", "-", True)
        for name in ("record-activity", "query-activity", "export-activity", "export-worker", "integrity"):
            r = init[name]
            check("1 Init", name, f"{r['medianMs']:.2f} ms median = {r['ratioToHello']:.2f}x hello",
                  "<= 3x hello", r["ratioToHello"] <= 3)

        for name, p in sorted(packages.items()):
            if name not in ("record-activity", "query-activity", "export-activity", "export-worker",
                            "integrity"):
                continue
            check("2 Package", f"{name} (stripped: {p['stripped']})",
                  f"{p['zipped'] / MB:.2f} MB zipped ({p['bytes'] / MB:.2f} MB bootstrap)",
                  "<= 10 MB", p["zipped"] <= 10 * MB and p["stripped"])

    if results.get("requests"):
        req = results["requests"]
        noop = req["noop"]["cpuPerRequestUs"]
        check("3 Request CPU", "no-op `lambda_http` (baseline)",
              f"{noop:.1f} us (rounds: {rounds(req['noop'])})", "-", True)
        floor = req["sdkFloor"]
        check("3 Request CPU", "no-op + one DynamoDB GetItem through the SDK (floor)",
              f"{floor['run']['cpuPerRequestUs']:.1f} us = {floor['ratioToNoop']:.1f}x no-op "
              f"(rounds: {rounds(floor['run'])})", "-", True)
        for key, what, budget in (("record", "record (POST /activities, 1 activity)", 300),
                                  ("query", f"one-page query ({req['query']['itemsPerPage']} items)", 1000),
                                  ("exportStatus", "export status with presigned link", 200)):
            run = req[key]["run"]
            us = run["cpuPerRequestUs"]
            floor_us = floor["run"]["cpuPerRequestUs"]
            check("3 Request CPU", what, f"{us:.1f} us = {req[key]['ratioToNoop']:.1f}x no-op, "
                  f"{us / floor_us:.1f}x floor (rounds: {rounds(run)})", f"<= {budget} us", us <= budget)

    if results.get("exports") and results.get("limits"):
        ex = results["exports"]
        mem = ex["memory"]
        small, large = mem["rows10k"]["peakRssKib"], mem["rows1m"]["peakRssKib"]
        check("4 Export memory", "peak RSS, 10,000 rows (pages from memory)", f"{small / 1024:.1f} MiB", "-", True)
        check("4 Export memory", "peak RSS, 1,000,000 rows (pages from memory)",
              f"{large / 1024:.1f} MiB = {mem['ratio1mTo10k']:.2f}x 10k", "<= 1.5x 10k and <= 128 MB",
              mem["ratio1mTo10k"] <= 1.5 and large * 1024 <= 128 * MB)
        emu = ex["emulator"]
        ours = emu["ours"]
        check("4 Export memory", f"peak RSS, export-worker, {emu['rows']:,} rows from the emulator",
              f"{ours['peakRssKib'] / 1024:.1f} MiB", "<= 128 MB", ours["peakRssKib"] * 1024 <= 128 * MB)

        cpu = ex["cpu"]
        check("5 Export CPU", f"page -> CSV -> part buffer + SHA-256, {cpu['rows']:,} rows",
              f"{cpu['oursRowsPerSecond']:,.0f} rows/s = {cpu['ratio'] * 100:.0f}% of raw csv + SHA-256 "
              f"({cpu['rawCsvSha256RowsPerSecond']:,.0f} rows/s)", ">= 50% of raw csv + SHA-256",
              cpu["ratio"] >= 0.5)
        check("5 Export CPU", "the same, to raw csv without the hash",
              f"{cpu['ratioToCsvAlone'] * 100:.0f}% of raw csv ({cpu['rawCsvRowsPerSecond']:,.0f} rows/s)",
              "-", True)

        pq = ex.get("parquet")
        if pq:
            pm = pq["memory"]
            small, large = pm["rows10k"]["peakRssKib"], pm["rows1m"]["peakRssKib"]
            check("4 Export memory", "Parquet (OCSF): peak RSS, 10,000 rows (pages from memory)",
                  f"{small / 1024:.1f} MiB", "-", True)
            check("4 Export memory", "Parquet (OCSF): peak RSS, 1,000,000 rows (pages from memory)",
                  f"{large / 1024:.1f} MiB = {pm['ratio1mTo10k']:.2f}x 10k", "<= 1.5x 10k and <= 256 MB",
                  pm["ratio1mTo10k"] <= 1.5 and large * 1024 <= 256 * MB)
            f = pq["formats"]
            check("5 Export CPU", f"Parquet (OCSF) through the worker, {f['rows']:,} rows",
                  f"{f['parquetRowsPerSecond']:,.0f} rows/s = {f['parquetToCsv']:.2f}x CSV "
                  f"({f['csvRowsPerSecond']:,.0f} rows/s); {f['parquetBytes']:,} bytes vs {f['csvBytes']:,}",
                  "-", True)

        py = emu["boto3"]
        check("6 vs boto3", f"CPU per 100k rows, export-worker ({emu['rows']:,} rows)",
              f"{ours['cpuMsPer100k']:,.0f} ms", "-", True)
        check("6 vs boto3", "CPU per 100k rows, Python + boto3, same data and emulator",
              f"{py['cpuMsPer100k']:,.0f} ms = {emu['boto3CpuToOurs']:.1f}x ours", ">= 10x ours",
              emu["boto3CpuToOurs"] >= 10)

        lim = results["limits"]
        ops = lim["operations"]
        parts_ok = (lim["smallestNonFinalPartBytes"] is None or lim["smallestNonFinalPartBytes"] >= 5 * MIB)
        check("7 Limits", "non-final parts (emulator export)",
              f"smallest {lim['smallestNonFinalPartBytes']} bytes", ">= 5 MiB (5,242,880)", parts_ok)
        m = mem["rows1m"]
        check("7 Limits", "non-final parts (1M rows)", f"smallest {m['smallestNonFinalPart']} bytes, "
              f"{m['parts']} parts", ">= 5 MiB, <= 10,000 parts",
              m["smallestNonFinalPart"] >= 5 * MIB and m["parts"] <= 10000)
        check("7 Limits", "parts per upload (emulator export)", f"{lim['mostParts']}", "<= 10,000",
              lim["mostParts"] <= 10000)
        for op, limit in (("TransactWriteItems", 100), ("BatchGetItem", 100), ("BatchWriteItem", 25)):
            o = ops.get(op, {"calls": 0, "maxItems": 0})
            check("7 Limits", f"{op} items per call", f"max {o['maxItems']} in {o['calls']} calls",
                  f"<= {limit}", o["maxItems"] <= limit)
        b = lim["batchOf99"]
        get = ops.get("BatchGetItem", {"calls": 0})
        check("7 Limits", "UnprocessedKeys asked for again (BatchGetItem of a replayed 99-item batch)",
              f"{b['unprocessedKeysInjected']} partial answers injected, {get['calls']} calls, "
              f"replay {b['replayStatus']} with {b['replayItems']} items", "all 99 back",
              b["replayItems"] == 99 and get["calls"] > b["unprocessedKeysInjected"])
        exp = lim["presignExpiresSeconds"]
        check("7 Limits", "presigned link expiry", f"{exp} s", "<= 900 s", exp is not None and exp <= 900)

    if results.get("requests"):
        req = results["requests"]
        for commit, (area, since, most) in RECORD_BEFORE.items():
            before = req.get("recordBefore", {}).get(commit)
            if before:
                now_us, before_us = req["record"]["run"]["cpuPerRequestUs"], before["run"]["cpuPerRequestUs"]
                check(area, f"record CPU per request {since} (same rounds)",
                      f"{now_us:.1f} us vs {before_us:.1f} us = {now_us / before_us:.2f}x "
                      f"(rounds before: {rounds(before['run'])})", f"<= {most}x", now_us / before_us <= most)
            else:
                check(area, f"record CPU per request {since}",
                      f"not measured (no record-activity-before-{commit} build)", f"<= {most}x", False)
    ver = results.get("verifier")
    if ver:
        check("8 Chain", f"activity-log-verify, {ver['rows']:,} rows of JSON Lines ({ver['bytes'] / MB:.0f} MB), one core",
              f"{ver['rowsPerSecond']:,.0f} rows/s", ">= 200,000 rows/s", ver["rowsPerSecond"] >= 200_000)

    seal = results.get("sealer")
    if seal:
        check("8 Chain", f"the sealer, {seal['customers']:,} customers whose heads moved, one run against the emulator",
              f"{seal['seconds']:.0f} s ({seal['customersPerSecond']:.0f} customers/s), {seal['signatures']} signature",
              "<= 900 s (one invocation)", seal["seconds"] <= 900)

    if results.get("requests") and results["requests"].get("feed"):
        req = results["requests"]
        feed, floor = req["feed"], req["feedFloor"]
        check("9 Streaming", "the feed's storage calls, raw through the SDK (GetItem, Query, BatchGetItem; floor)",
              f"{floor['run']['cpuPerRequestUs']:.1f} us (rounds: {rounds(floor['run'])})", "-", True)
        check("9 Streaming", f"feed page (GET /feed, {feed['itemsPerPage']} items)",
              f"{feed['run']['cpuPerRequestUs']:.1f} us = {feed['ratioToFeedFloor']:.2f}x its floor "
              f"(rounds: {rounds(feed['run'])})", "-", True)
    seq = results.get("sequencer")
    if seq:
        check("9 Streaming", f"sequencer, {seq['activities']:,} activities in {seq['batches']} stream batches, emulator",
              f"{seq['activitiesPerSecond']:,.0f} activities/s, {seq['cpuPerActivityUs']:.0f} us CPU per activity, "
              f"{seq['transactions']} transactions", "-", True)
    dlv = results.get("delivery")
    if dlv:
        check("9 Streaming", f"delivery, {dlv['activities']:,} activities to a webhook on this machine, emulator",
              f"{dlv['activitiesPerSecond']:,.0f} activities/s in {dlv['requests']} requests, "
              f"{dlv['cpuPerActivityUs']:.0f} us CPU per activity, {dlv['storageCalls']} storage calls", "-", True)

    print("| budget | what | figure | budget | result |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    missed = [r for r in rows if r[4] != "met"]
    print()
    print(f"{len(rows) - len(missed)} of {len(rows)} met; harness run {results['seconds']:.0f} s at {results['when']}.")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
