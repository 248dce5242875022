"""Differential check of moto_server.py's read changes: the same writes and paged reads run
against moto as shipped and against moto with the changes, each in its own process, and every
page (items, counts, LastEvaluatedKey) must be the same.

The reads are those the changes touch: Query on the global and the local index and on the
table, both directions, several page sizes, with a filter, with top-level and nested
projections, with a start key whose item was deleted, and after further writes; Scan of an
index and of the table; GetItem with projections. Index range values repeat, so ties are
broken by the table's keys, as for activities recorded in the same millisecond.

Usage: python tests/emulator/check_patches.py      (exit 1 and the first difference if any)
"""

import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def scenario():
    import boto3
    from moto import mock_aws

    out = []
    with mock_aws():
        c = boto3.client("dynamodb", region_name="us-east-1")
        c.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "tsk", "gpk", "gsk")
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            LocalSecondaryIndexes=[{
                "IndexName": "byTime",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "tsk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }],
            GlobalSecondaryIndexes=[{
                "IndexName": "byPartnerTime",
                "KeySchema": [
                    {"AttributeName": "gpk", "KeyType": "HASH"},
                    {"AttributeName": "gsk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }],
        )
        rnd = random.Random(7)

        def put(n):
            item = {
                "pk": {"S": f"P#{n % 3}#C#{n % 5}"},
                "sk": {"S": f"A#{rnd.randrange(10**6):06}"},
                "tsk": {"S": f"T{rnd.randrange(30):03}"},
                "gpk": {"S": f"P#{n % 3}"},
                "gsk": {"S": f"G{rnd.randrange(40):03}"},
                "action": {"S": rnd.choice(["create", "delete", "update"])},
                "n": {"N": str(rnd.randrange(100))},
                "m": {"M": {"a": {"S": "x"}, "l": {"L": [{"N": "1"}, {"S": "y"}]}}},
                "ss": {"SS": ["a", "b"]},
            }
            if n % 7 == 0:
                del item["gsk"]  # not in the global index
            c.put_item(TableName="t", Item=item)

        def pages(**request):
            got, start = [], None
            while len(got) < 1000:
                args = dict(request, **({"ExclusiveStartKey": start} if start else {}))
                r = c.query(**args) if "KeyConditionExpression" in request else c.scan(**args)
                got.append([r["Items"], r["Count"], r.get("ScannedCount"), r.get("LastEvaluatedKey")])
                start = r.get("LastEvaluatedKey")
                if not start:
                    break
            return got

        def partner(p):
            return {":p": {"S": f"P#{p}"}}

        for n in range(250):
            put(n)
        for p in range(3):
            for forward in (True, False):
                for page in ({"Limit": 3}, {"Limit": 40}, {}):
                    common = dict(TableName="t", ScanIndexForward=forward, **page)
                    out.append(pages(
                        IndexName="byPartnerTime",
                        KeyConditionExpression="gpk = :p AND gsk BETWEEN :a AND :b",
                        ExpressionAttributeValues={**partner(p), ":a": {"S": "G005"}, ":b": {"S": "G030"}},
                        **common))
                    out.append(pages(
                        IndexName="byTime", ConsistentRead=True, KeyConditionExpression="pk = :p",
                        ExpressionAttributeValues={":p": {"S": f"P#{p}#C#{p + 1}"}}, **common))
                    out.append(pages(
                        IndexName="byPartnerTime", KeyConditionExpression="gpk = :p",
                        FilterExpression="#a = :a", ProjectionExpression="#s, #m, n, ss, gsk",
                        ExpressionAttributeNames={"#a": "action", "#m": "m", "#s": "sk"},
                        ExpressionAttributeValues={**partner(p), ":a": {"S": "create"}}, **common))
                    out.append(pages(
                        IndexName="byPartnerTime", KeyConditionExpression="gpk = :p",
                        ProjectionExpression="m.l[1], m.a, sk", ExpressionAttributeValues=partner(p),
                        **common))
                    out.append(pages(
                        KeyConditionExpression="pk = :p",
                        ExpressionAttributeValues={":p": {"S": f"P#{p}#C#{p}"}}, **common))
        out.append(pages(TableName="t", IndexName="byPartnerTime", Limit=9))
        out.append(pages(TableName="t", Limit=13))

        # A start key whose item is gone, in both directions; then reads after more writes.
        query = dict(TableName="t", IndexName="byPartnerTime", KeyConditionExpression="gpk = :p",
                     ExpressionAttributeValues=partner(1), Limit=5)
        first = c.query(ScanIndexForward=False, **query)
        start = first["LastEvaluatedKey"]
        c.delete_item(TableName="t", Key={"pk": start["pk"], "sk": start["sk"]})
        for forward in (True, False):
            out.append(c.query(ScanIndexForward=forward, ExclusiveStartKey=start, **query)["Items"])
        for n in range(250, 300):
            put(n)
        out.append(pages(TableName="t", IndexName="byPartnerTime", KeyConditionExpression="gpk = :p",
                         ExpressionAttributeValues=partner(2), Limit=11, ScanIndexForward=False))
        kept = {"pk": first["Items"][0]["pk"], "sk": first["Items"][0]["sk"]}
        for projection in ("sk, m.a", "sk, n, ss, m"):
            answer = c.get_item(TableName="t", Key=kept, ProjectionExpression=projection)
            out.append(answer.get("Item"))
    return out


def canonical(value):
    """JSON with string sets sorted (DynamoDB does not define their order)."""
    def norm(x):
        if isinstance(x, dict):
            return {k: (sorted(v) if k in ("SS", "NS") else norm(v)) for k, v in x.items()}
        if isinstance(x, list):
            return [norm(v) for v in x]
        return x
    return json.dumps(norm(value), sort_keys=True)


def run(variant):
    result = subprocess.run([sys.executable, __file__, variant], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"the {variant} run failed:\n{result.stderr}")
    return json.loads(result.stdout)


def main():
    if len(sys.argv) > 1:
        if sys.argv[1] == "patched":
            sys.path.insert(0, HERE)
            import moto_server  # noqa: F401  (applies the changes)
        print(canonical(scenario()))
        return
    plain, patched = run("plain"), run("patched")
    pages = sum(len(x) for x in plain if isinstance(x, list))
    for i, (a, b) in enumerate(zip(plain, patched)):
        if canonical(a) != canonical(b):
            sys.exit(f"read {i} differs:\n  moto:    {canonical(a)[:2000]}\n  changed: {canonical(b)[:2000]}")
    if len(plain) != len(patched):
        sys.exit(f"{len(plain)} reads from moto, {len(patched)} with the changes")
    print(f"{len(plain)} reads ({pages} pages): the same with and without the emulator's changes")


if __name__ == "__main__":
    main()
