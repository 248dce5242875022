"""Reads a Parquet export as a user of Athena or DuckDB would, and checks it.

usage: check_parquet.py EXPECT.json

EXPECT.json (written by tests/tests/analytics.rs) names:
  dir        the export's files, laid out under their paths (region=…/accountId=…/eventDay=…/)
  same_as    another export's directory that must read the same (an export handed over between
             runs against one made in one run), or null
  rows       how many rows the files hold
  values     the README queries' placeholders ('<partner id>', …) and their values
  queries    per README query (its name in README's `analytics-query` comment), the rows it
             must return, as JSON

Checks, in order: the pinned OCSF schema is what ocsf-json-schema generates for OCSF 1.5.0 API
Activity with the cloud profile; the row count; every column's type; every event (its OCSF
attributes, without the chain's columns) valid against that schema, with type_uid and the
names matching their ids; README's queries and their rows; the other export's rows, equal and
in the same order. Prints a line per check and `N passed, 0 failed`; exits 1 on the first
failure.
"""

import datetime
import json
import pathlib
import re
import sys

import duckdb
from jsonschema import Draft202012Validator

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SCHEMA = HERE / "ocsf-1.5.0-api_activity-cloud.schema.json"

# The files' schema as DuckDB reads it (the partition columns from the paths, as text).
COLUMN_TYPES = {
    "time": "TIMESTAMP WITH TIME ZONE",
    "activity_id": "INTEGER",
    "activity_name": "VARCHAR",
    "category_uid": "INTEGER",
    "category_name": "VARCHAR",
    "class_uid": "INTEGER",
    "class_name": "VARCHAR",
    "type_uid": "BIGINT",
    "type_name": "VARCHAR",
    "severity_id": "INTEGER",
    "severity": "VARCHAR",
    "status_id": "INTEGER",
    "status": "VARCHAR",
    "actor": "STRUCT(\"user\" STRUCT(\"name\" VARCHAR))",
    "api": "STRUCT(operation VARCHAR, service STRUCT(\"name\" VARCHAR))",
    "resources": "STRUCT(uid VARCHAR, \"name\" VARCHAR, \"type\" VARCHAR)[]",
    "src_endpoint": "STRUCT(svc_name VARCHAR, uid VARCHAR)",
    "cloud": "STRUCT(provider VARCHAR, region VARCHAR)",
    "metadata": "STRUCT(\"version\" VARCHAR, product STRUCT(\"name\" VARCHAR, vendor_name VARCHAR, \"version\" VARCHAR), uid VARCHAR, tenant_uid VARCHAR, logged_time TIMESTAMP WITH TIME ZONE, \"sequence\" BIGINT)",
    "unmapped": "VARCHAR",
    "sequence": "BIGINT",
    "hash": "VARCHAR",
    "previous_hash": "VARCHAR",
    "previous_recorded_at": "TIMESTAMP WITH TIME ZONE",
    "feed_position": "BIGINT",
    "recorded_by": "VARCHAR",
    "region": "VARCHAR",
    "accountId": "VARCHAR",
    "eventDay": "VARCHAR",
    "export_id": "VARCHAR",
}
# Beside OCSF's attributes (shared/src/domain/ocsf.rs, EXTENSION_COLUMNS), and the partitions.
EXTENSION_COLUMNS = ["sequence", "hash", "previous_hash", "previous_recorded_at", "feed_position", "recorded_by"]
PARTITION_COLUMNS = ["region", "accountId", "eventDay", "export_id"]
ACTIVITY_NAMES = {0: "Unknown", 1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}
STATUS_NAMES = {1: "Success", 2: "Failure", 99: "In progress"}

passed = 0


def ok(what):
    global passed
    passed += 1
    print(f"ok: {what}")


def fail(what):
    print(f"FAILED: {what}")
    print(f"{passed} passed, 1 failed")
    sys.exit(1)


def relation(con, directory, name, export_id):
    """A view over the export's files, as Athena's table reads them: the partitions from their
    paths, as text, and the export's id (a partition of the table, here the directory's)."""
    pattern = str(pathlib.Path(directory) / "**" / "*.parquet").replace("'", "''")
    export_id = export_id.replace("'", "''")
    con.execute(
        f"CREATE OR REPLACE VIEW {name} AS SELECT *, '{export_id}' AS export_id FROM read_parquet("
        f"'{pattern}', hive_partitioning = true, "
        "hive_types = {'region': VARCHAR, 'accountId': VARCHAR, 'eventDay': VARCHAR})"
    )


def plain(value):
    """A value DuckDB returned, as JSON: times as RFC 3339 with milliseconds, UTC."""
    if isinstance(value, datetime.datetime):
        utc = value.astimezone(datetime.timezone.utc)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def ocsf_json(value):
    """An event's value as OCSF JSON: times as milliseconds since the epoch, absent left out."""
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: ocsf_json(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [ocsf_json(v) for v in value]
    return value


def readme_queries():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"<!-- analytics-query: (\S+) -->\s*```sql\n(.*?)```", text, re.S)
    return dict(found)


def main():
    expect = json.loads(pathlib.Path(sys.argv[1]).read_text(encoding="utf-8"))

    from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

    ocsf = OcsfJsonSchemaEmbedded(get_ocsf_schema(version="1.5.0"))
    generated = ocsf.get_class_schema(class_name=ocsf.lookup_class_name_from_uid(6003), profiles=["cloud"])
    pinned = json.loads(SCHEMA.read_text(encoding="utf-8"))
    if generated != pinned:
        fail(f"{SCHEMA.name} is not what ocsf-json-schema generates (tests/analytics/pin_ocsf_schema.py)")
    ok(f"{SCHEMA.name} is OCSF 1.5.0's API Activity (6003) with the cloud profile")
    validator = Draft202012Validator(pinned)

    con = duckdb.connect()
    relation(con, expect["dir"], "activity_log", expect["values"]["<export id>"])

    rows = con.execute("SELECT count(*) FROM activity_log").fetchone()[0]
    if rows != expect["rows"]:
        fail(f"{rows} rows, want {expect['rows']}")
    ok(f"{rows} rows")

    types = {name: kind for name, kind, *_ in con.execute("DESCRIBE activity_log").fetchall()}
    if types != COLUMN_TYPES:
        diff = {k: (types.get(k), COLUMN_TYPES.get(k)) for k in types.keys() | COLUMN_TYPES.keys() if types.get(k) != COLUMN_TYPES.get(k)}
        fail(f"column types (got, want): {diff}")
    ok(f"{len(types)} columns of the expected types")

    cursor = con.execute("SELECT * FROM activity_log")
    names = [d[0] for d in cursor.description]
    events = 0
    for row in cursor.fetchall():
        event = {k: v for k, v in zip(names, row) if k not in EXTENSION_COLUMNS + PARTITION_COLUMNS}
        event = ocsf_json(event)
        if "unmapped" in event:
            event["unmapped"] = json.loads(event["unmapped"])
        errors = sorted(validator.iter_errors(event), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            fail(f"event {event['metadata']['uid']}: {'/'.join(map(str, e.path))}: {e.message}")
        if event["type_uid"] != event["class_uid"] * 100 + event["activity_id"]:
            fail(f"event {event['metadata']['uid']}: type_uid {event['type_uid']}")
        if event["activity_name"] != ACTIVITY_NAMES[event["activity_id"]]:
            fail(f"event {event['metadata']['uid']}: activity_name {event['activity_name']}")
        if event["status"] != STATUS_NAMES[event["status_id"]]:
            fail(f"event {event['metadata']['uid']}: status {event['status']}")
        if event["type_name"] != f"API Activity: {event['activity_name']}":
            fail(f"event {event['metadata']['uid']}: type_name {event['type_name']}")
        events += 1
    ok(f"{events} events valid OCSF 1.5.0 API Activity")

    queries = readme_queries()
    if set(queries) != set(expect["queries"]):
        fail(f"README's queries {sorted(queries)}, want {sorted(expect['queries'])}")
    for name, sql in queries.items():
        for placeholder, value in expect["values"].items():
            sql = sql.replace(placeholder, value)
        got = plain(con.execute(sql).fetchall())
        if got != expect["queries"][name]:
            fail(f"README query {name}:\n{sql}\ngot  {json.dumps(got)}\nwant {json.dumps(expect['queries'][name])}")
        ok(f"README query {name}: {len(got)} rows as expected")

    if expect.get("same_as"):
        relation(con, expect["same_as"], "other", "other")
        order = "ORDER BY time DESC, metadata.uid"
        a = plain(con.execute(f"SELECT * EXCLUDE (export_id) FROM activity_log {order}").fetchall())
        b = plain(con.execute(f"SELECT * EXCLUDE (export_id) FROM other {order}").fetchall())
        if a != b:
            fail("the other export reads differently")
        ok(f"the other export reads the same ({len(b)} rows)")

    print(f"{passed} passed, 0 failed")


if __name__ == "__main__":
    main()
