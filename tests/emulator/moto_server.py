"""The AWS emulator as the tests, scripts/dev and scripts/bench run it: moto's server with changes
that let it carry the load test (20 concurrent writers, 10,000 records) and the benchmarks'
export of 100,000 activities. Reads return what moto returns (tests/emulator/check_patches.py).

1. Requests are served one at a time. moto's DynamoDB TransactWriteItems is not thread-safe:
   concurrent transactions fail inside moto with "dictionary changed size during iteration",
   which the SDK sees as a 500 without an error code.
2. A transaction's rollback snapshot copies each table's item index shallowly, once per
   transaction, instead of deep-copying the whole table once per item of the transaction
   (O(items x table size): a 25-item batch against a 10,000-item table took seconds). Puts
   replace items, so the shallow snapshot restores them exactly; an update inside a
   transaction first replaces the item with a copy of itself (moto changes items in place), so
   a cancelled transaction (the sequencer's, whose feed head moved) leaves no update behind.
   moto registers every model instance it creates (for its reset) and so kept every
   snapshot alive: seeding 100,000 activities grew the server past 20 GB. Snapshots are
   taken off that list.
3. Index queries reuse their sorted candidates while nothing has been written. moto sorts the
   whole table twice per Query call (a page of an export of 100,000 activities took seconds);
   any write through the DynamoDB API clears the cache, so results are the same as moto's.
4. Read results (Query, Scan, GetItem, BatchGetItem) are written out with `json.dumps`. moto's
   generic model-driven serializer took about 1 ms per item returned; the wire format of the
   DynamoDB JSON protocol is the result dictionary itself. Anything `json.dumps` cannot write
   (binary attributes) goes through moto's serializer as before.
5. A projection of top-level attributes (what the service's Query asks for) picks them from the
   item. moto converted the whole item to plain JSON and back once per projected attribute
   (12 times per item), which made an export's reads a third slower than unprojected ones.
   Nested paths and list elements go through moto's projection as before. The projected item
   skips moto's 400 KB check, which re-sized every attribute already set for each one added;
   a part of an item the table holds is within the limit.
6. A Query with a start key begins at that key. moto walked every item of the earlier pages,
   comparing each with the start key, so an export's reads grew with the square of its size.
   The sorted candidates cached by (3) remember each item's position; a start key that is no
   item's (it was deleted) falls back to moto's walk.
7. A string attribute's comparable value is the string itself. moto asked five questions about
   the type first, for each key compared while filtering and sorting candidates.

With the size check of (5), (6) and (7), the export-worker's export of 100,000 activities in
scripts/bench went from 80 s to 44 s, and the same export with boto3 from 77 s to 45 s.
tests/emulator/check_patches.py runs paged reads against moto with and without these changes
and requires the same pages.

Usage: python tests/emulator/moto_server.py -H 127.0.0.1 -p 4566
"""

import argparse
import copy
import inspect
import json
import os
import threading
from collections import defaultdict

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


# Snapshots of the transaction in progress, by table (requests are served one at a time).
_snapshots = None


class _SnapshotCopy:
    """Stands in for the `copy` module inside moto's DynamoDB backend."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        if not isinstance(value, Table):
            return copy.deepcopy(value, memo)
        if _snapshots is not None and id(value) in _snapshots:
            return _snapshots[id(value)]
        snapshot = copy.copy(value)
        tracked = type(value).instances_tracked
        if tracked and tracked[-1] is snapshot:
            tracked.pop()
        snapshot.items = defaultdict(
            dict,
            {h: (dict(v) if isinstance(v, dict) else v) for h, v in value.items.items()},
        )
        if _snapshots is not None:
            _snapshots[id(value)] = snapshot
        return snapshot


dynamodb_models.copy = _SnapshotCopy()
_transact_write_items = DynamoDBBackend.transact_write_items


def _one_snapshot_per_transaction(self, *args, **kwargs):
    global _snapshots
    _snapshots = {}
    try:
        return _transact_write_items(self, *args, **kwargs)
    finally:
        _snapshots = None


DynamoDBBackend.transact_write_items = _one_snapshot_per_transaction
_update_item = DynamoDBBackend.update_item


def _copy_on_update(self, table_name, key, *args, **kwargs):
    """Inside a transaction, an update changes a copy of the item the snapshot holds."""
    if _snapshots is not None:
        table = self.get_table(table_name)
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        current = table.get_item(hash_value, range_value)
        if current is not None:
            copied = copy.deepcopy(current)
            if range_value is None:
                table.items[hash_value] = copied
            else:
                table.items[hash_value][range_value] = copied
    return _update_item(self, table_name, key, *args, **kwargs)


DynamoDBBackend.update_item = _copy_on_update


# Read caches for Query, valid until the next write (any table).
_reads = {"version": 0, "all": {}, "sorted": {}}
# The start key of the Query in progress, by table (requests are served one at a time).
_query_start = {}
_all_items = Table.all_items
_sorted_items = Table.sorted_items


def _written():
    _reads["version"] += 1
    _reads["all"].clear()
    _reads["sorted"].clear()


def _cached_all_items(self):
    key = id(self)
    if key not in _reads["all"]:
        _reads["all"][key] = _all_items(self)
    return list(_reads["all"][key])


def _key_of(values):
    return json.dumps(values, sort_keys=True, default=str)


def _cached_sorted_items(self, hash_key_attrs, range_key_attrs, items):
    key = (id(self), tuple(hash_key_attrs), tuple(range_key_attrs), tuple(map(id, items)))
    if key not in _reads["sorted"]:
        ordered = _sorted_items(self, hash_key_attrs, range_key_attrs, list(items))
        _reads["sorted"][key] = (ordered, {})
    ordered, positions = _reads["sorted"][key]
    start = _query_start.get(id(self))
    if start is None:
        return list(ordered)
    # The page starts right after the item whose keys are the start key: hand moto's loop the
    # list from that item on (in the order it will walk), so it skips one item, not all before.
    exclusive_start_key, forward = start
    names = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
    if not all(name in exclusive_start_key for name in names):
        return list(ordered)
    if not positions:
        for i, item in enumerate(ordered):
            if all(name in item.attrs for name in names):
                positions[_key_of([item.attrs[n].to_json() for n in names])] = i
    i = positions.get(_key_of([exclusive_start_key[n] for n in names]))
    if i is None:
        return list(ordered)
    return ordered[i:] if forward else ordered[: i + 1]


def _remembering_start(query):
    signature = inspect.signature(query)

    def wrapper(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs).arguments
        start = bound.get("exclusive_start_key")
        forward = bound.get("scan_index_forward")
        if start is None or not isinstance(forward, bool):
            return query(self, *args, **kwargs)
        _query_start[id(self)] = (start, forward)
        try:
            return query(self, *args, **kwargs)
        finally:
            _query_start.pop(id(self), None)

    return wrapper


def _invalidating(method):
    def wrapper(*args, **kwargs):
        _written()
        try:
            return method(*args, **kwargs)
        finally:
            _written()

    return wrapper


Table.all_items = _cached_all_items
Table.sorted_items = _cached_sorted_items
Table.query = _remembering_start(Table.query)
for _name in ("put_item", "delete_item"):
    setattr(Table, _name, _invalidating(getattr(Table, _name)))
for _name in dir(DynamoDBBackend):
    if _name.startswith(("put_", "update_", "delete_", "transact_write", "batch_write",
                         "create_", "restore_", "import_")) and callable(getattr(DynamoDBBackend, _name)):
        setattr(DynamoDBBackend, _name, _invalidating(getattr(DynamoDBBackend, _name)))


_serialized = DynamoHandler.serialized
_PLAIN_READS = {"Query", "Scan", "GetItem", "BatchGetItem"}


def _plain_serialized(self, action_result):
    result = action_result.result
    if isinstance(result, dict) and self._get_action() in _PLAIN_READS:
        try:
            body = json.dumps(result, separators=(",", ":"))
        except (TypeError, ValueError):
            return _serialized(self, action_result)
        headers = dict(self.response_headers)
        headers["Content-Type"] = "application/x-amz-json-1.0"
        return 200, headers, body
    return _serialized(self, action_result)


DynamoHandler.serialized = _plain_serialized


_project = Item.project


def _top_level_project(self, projection_expressions):
    if all(len(path) == 1 and "[" not in path[0] for path in projection_expressions):
        projected = Item(hash_key=self.hash_key, range_key=self.range_key, attrs={})
        for path in projection_expressions:
            name = path[0]
            if name in self.attrs:
                # A part of an item already held is within the item size limit: skip the
                # limit check, which re-sizes every attribute already set (O(n^2) per item).
                dict.__setitem__(projected.attrs, name, _copy_of(self.attrs[name]))
        return projected
    return _project(self, projection_expressions)


def _copy_of(value):
    if value.type in ("S", "N"):
        # A scalar's value is an immutable str: no need to take the dictionary form apart again.
        copied = DynamoType.__new__(DynamoType)
        copied.type, copied.value = value.type, value.value
        return copied
    return DynamoType(value.to_json())


Item.project = _top_level_project


_cast_value = DynamoType.cast_value.fget


def _string_cast_value(self):
    # A string's value is itself; moto asks five type questions first, on every key comparison.
    if self.type == "S":
        return self.value
    return _cast_value(self)


DynamoType.cast_value = property(_string_cast_value)


def serialised(app):
    lock = threading.Lock()

    def handle(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    return handle


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        serialised(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
