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

Usage: python tests/emulator/moto_server.py -H 127.0.0.1 -p 4566
"""

import argparse
import copy
import os
import threading
from collections import defaultdict

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
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
