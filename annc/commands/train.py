"""`annc train`: fit this machine's performance models from its measurements.

The models trained here are added to the set in use (this machine's earlier models, else
the shipped ones): a combination with enough measurements gets a new model, every other
keeps the one it had, so calibrating one variant (a plugin's) and training leaves no
other without a model. `--reference` (maintainers) trains the shipped set from scratch."""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import datetime
from pathlib import Path

from annc.dsl.errors import AnncError
from annc.modeling import measurement_source, on_top_of, train
from annc.passes.models import (
    DEFAULT_MODELS,
    SHIPPED_MACHINES,
    for_writing,
    trained_models_in_use,
    user_models_path,
)
from annc.predictor.models import ModelFileError, ModelSet

HELP = "train the performance models of this machine from its calibration measurements"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH",
                        help="the measurement database (default: "
                        "$ANNC_HOME/measurements.sqlite)")
    parser.add_argument("--reference", action="store_true",
                        help="for maintainers: train the shipped default models from the "
                        "package's reference data")
    parser.add_argument("--machine", metavar="FINGERPRINT",
                        help="with --reference: train the shipped models of that machine "
                        "(a lent GPU machine) from its shipped measurements")


def run(args: argparse.Namespace) -> int:
    if args.machine and not args.reference:
        raise AnncError("train: --machine names shipped reference data; give --reference too")
    source = measurement_source(Path(args.db) if args.db else None, args.reference,
                                args.machine)
    # Another machine's plan-step overhead and back-end starts were measured there:
    # keep those of its shipped models rather than measure this machine's.
    shipped = SHIPPED_MACHINES / f"{args.machine}.json" if args.machine else None
    models = train(source.stored, source.fingerprint,
                   _measured_there(shipped) if shipped else None)
    mapes = [m.summary["mape"] for m in models.models.values() if m.summary["mape"] is not None]
    median = f"{statistics.median(mapes):.1f}%" if mapes else "n/a"
    trained = f"{len(models.models)} trained on {source.description}"
    if shipped:
        target = shipped
    elif args.reference:
        target = DEFAULT_MODELS
    else:
        target = for_writing(user_models_path(source.fingerprint["id"]))
        models, kept = _on_top_of_the_set_in_use(models)
        trained += kept
    models.trained_at = datetime.now().astimezone().isoformat(timespec="seconds")
    models.trained_on = trained.split(" trained on ", 1)[1]
    models.save(target)
    print(f"wrote {len(models.models)} models to {target} ({trained}; median held-out MAPE "
          f"of those trained {median})", file=sys.stderr)
    return 0


def _on_top_of_the_set_in_use(models: ModelSet) -> tuple[ModelSet, str]:
    """This machine's new models added to the set in use, and a phrase saying how many
    of the set's were kept."""
    notes: list[str] = []
    base, origin = trained_models_in_use(notes)
    for note in notes:
        print(note, file=sys.stderr)
    merged = on_top_of(base, models)
    kept = len(merged.models) - len(models.models)
    return merged, (f", on top of the {origin}, of which {kept} kept" if kept else "")


def _measured_there(path: Path) -> tuple[float, dict[str, float]]:
    """The step overhead and back-end starts in a machine's shipped models (none where
    there are no shipped models yet)."""
    try:
        shipped = ModelSet.load(path)
    except ModelFileError:  # a missing file too
        return 0.0, {}
    return shipped.step_overhead_s, shipped.backend_start_s
