"""`annc store merge`: one measurement store from several nodes' calibrations.

A lab calibrates each kind of node it has once (`annc calibrate`, and `annc calibrate
--communication` on a node with several devices), each into its own store, then merges
them into one (`annc store merge NODE.db ... [--db PATH]`) that every node reads: every
row carries its node's fingerprint, so each node trains and picks with its own
measurements (`annc train` trains the models of the fingerprint it runs on). A row
already present is not added again, so merging is safe to repeat; a store written by an
older annc is migrated in memory (`hardware.calibration.store`) and its file only read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from annc.hardware.calibration.store import MeasurementStore
from annc.hardware.devices.home import default_database

HELP = "merge other measurement stores (other nodes' calibrations) into this one"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("merge",), help="merge: add the other stores' rows")
    parser.add_argument("stores", nargs="+", metavar="OTHER.db",
                        help="the stores to read (each is only read)")
    parser.add_argument("--db", metavar="PATH",
                        help="the store to merge into (default: $ANNC_HOME's)")
    parser.add_argument("--report", choices=("table", "json"), default="table",
                        help="what was added: lines (default) or one JSON object")


def run(args: argparse.Namespace) -> int:
    path = Path(args.db) if args.db else default_database()
    added = {}
    with MeasurementStore(path) as store:
        for other in args.stores:
            added[other] = store.merge(other)
    if args.report == "json":
        print(json.dumps({"store": str(path), "added": added}))
        return 0
    for other, counts in added.items():
        rows = ", ".join(f"{count} {table}" for table, count in counts.items())
        print(f"{other}: added {rows} to {path}")
    return 0
