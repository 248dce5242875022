"""The AWS emulator as the tests and scripts/dev run it: moto's server with two changes that let
it carry the load test (20 concurrent writers, 10,000 records).

1. Requests are served one at a time. moto's DynamoDB TransactWriteItems is not thread-safe:
   concurrent transactions fail inside moto with "dictionary changed size during iteration",
   which the SDK sees as a 500 without an error code.
2. A transaction's rollback snapshot copies each table's item index shallowly, once per
   transaction, instead of deep-copying the whole table once per item of the transaction
   (O(items x table size): a 25-item batch against a 10,000-item table took seconds). Puts
   replace items, so the shallow snapshot restores them exactly; the service's transactions
   only put. moto registers every model instance it creates (for its reset) and so kept every
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
   Nested paths and list elements go through moto's projection as before.

Usage: python tests/emulator/moto_server.py -H 127.0.0.1 -p 4566
"""

import argparse
import copy
import json
import os
import threading
from collections import defaultdict

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import Item
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


# Read caches for Query, valid until the next write (any table).
_reads = {"version": 0, "all": {}, "sorted": {}}
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


def _cached_sorted_items(self, hash_key_attrs, range_key_attrs, items):
    key = (id(self), tuple(hash_key_attrs), tuple(range_key_attrs), tuple(map(id, items)))
    if key not in _reads["sorted"]:
        _reads["sorted"][key] = _sorted_items(self, hash_key_attrs, range_key_attrs, list(items))
    return list(_reads["sorted"][key])


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
        names = [path[0] for path in projection_expressions]
        attrs = {name: self.attrs[name].to_json() for name in names if name in self.attrs}
        return Item(hash_key=self.hash_key, range_key=self.range_key, attrs=attrs)
    return _project(self, projection_expressions)


Item.project = _top_level_project


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
