"""`annc train`: fit this machine's performance models from its measurements."""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import datetime
from pathlib import Path

from annc.modeling import measurement_source, train
from hardware.devices.home import ensure_home
from passes.models import DEFAULT_MODELS, user_models_path

HELP = "train the performance models of this machine from its calibration measurements"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH",
                        help="the measurement database (default: "
                        "$ANNC_HOME/measurements.sqlite)")
    parser.add_argument("--reference", action="store_true",
                        help="for maintainers: train the shipped default models from the "
                        "package's reference data")


def run(args: argparse.Namespace) -> int:
    source = measurement_source(Path(args.db) if args.db else None, args.reference)
    models = train(source.stored, source.fingerprint)
    models.trained_at = datetime.now().astimezone().isoformat(timespec="seconds")
    models.trained_on = source.description
    if args.reference:
        target = DEFAULT_MODELS
    else:
        ensure_home()
        target = user_models_path(source.fingerprint["id"])
    models.save(target)
    mapes = [m.summary["mape"] for m in models.models.values() if m.summary["mape"] is not None]
    median = f"{statistics.median(mapes):.1f}%" if mapes else "n/a"
    print(f"wrote {len(models.models)} models to {target} (trained on {source.description}; "
          f"median held-out MAPE {median})", file=sys.stderr)
    return 0
