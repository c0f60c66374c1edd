"""Do the auto-schedulers' own schedules make their variants predictable?

    .venv/bin/python benchmarks/schedule_features.py [--seeds 3]

Halide's Mullapudi2016 and Li2018 auto-schedulers write a different schedule per
shape, in milliseconds. This benchmark asks each of them for its schedule at every
reference configuration of their CPU combinations (matmul, matvec, conv2d), reads
the decisions that switch with shape out of the schedule text — whether a producer
is fused into its consumer (`compute_at`), how many loops run in parallel, the
widest split (the vector width), and Li2018's parallel task size — and trains, on
the same rows, annc's network with and without those four features (7 hidden
units with them, 8 and 7 without), over several seeds. With them the networks exceed
the paper's 75 parameters (85 for a product, 92 for a convolution); what annc kept is
Mullapudi2016's fusion alone, in place of the bytes, within 73
(`hardware.variants.halide.schedule_traits`). Adams2019 is left out: its search takes
seconds per shape (1.2 s on average in calibration), too slow to run at prediction
time. Writes
`benchmarks/results/schedule_features.md`.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import re
import statistics
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from annc.modeling import to_training_rows
from hardware.calibration.reference_data import load_reference
from hardware.calibration.runs import noise_floor
from hardware.devices.fingerprint import fingerprint
from predictor import mlp
from predictor.features import Configuration, Normalisation, feature_matrix, feature_names
from predictor.fitting import Measurement, by_combo, mape, split
from predictor.training import TrainingSet, train_group

RESULTS = Path(__file__).resolve().parent / "results"
SCHEDULERS = ("halide.auto.mullapudi2016", "halide.auto.li2018")
KERNELS = ("matmul", "matvec", "conv2d")
SCHEDULE_FEATURES = ("fused", "parallel loops", "log widest split", "log parallel task")


def schedule_features(source: str) -> list[float]:
    """What the schedule decided, from its printed source."""
    splits = [int(x) for x in re.findall(r"split\([^,]+,[^,]+,[^,]+,\s*(\d+)", source)]
    tasks = [int(x) for x in re.findall(r"parallel\([^,)]+,\s*(\d+)", source)]
    return [float("compute_at(" in source), float(source.count(".parallel(")),
            math.log(max(splits, default=1)), math.log(max(tasks, default=1))]


def schedule_of(combo: tuple[str, str, str], config: Configuration) -> str:
    from hardware.variants.halide.pipeline import result_shape
    from hardware.variants.halide.scheduling import compiled_shapes, scheduled

    shapes = compiled_shapes(config.kernel, config.shapes)
    dtype = np.dtype("float32" if config.dtype == "f32" else "float64")
    _, _, schedule = scheduled(config.kernel, shapes, result_shape(config.kernel, shapes),
                               dtype, combo[1])
    assert schedule is not None
    return schedule.source


def held_out_mape(train: list[Measurement], test: list[Measurement], extra: dict,
                  hidden: int, seed: int, with_schedule: bool) -> float:
    names = feature_names(train[0].config.kernel, augmented=True)

    def matrix(rows: list[Measurement]) -> np.ndarray:
        x = feature_matrix([r.config for r in rows], names)
        if with_schedule:
            x = np.hstack([x, np.array([extra[r.config] for r in rows])])
        return x

    x, y = matrix(train), np.log([r.seconds for r in train])
    normalisation = Normalisation.fit(x, y)
    (params,) = train_group([TrainingSet(normalisation.features(x), normalisation.target(y))],
                            hidden, seed)
    weights = {k: jnp.asarray(v, mlp.DTYPE) for k, v in params.items()}
    queries = jnp.asarray(normalisation.features(matrix(test)), mlp.DTYPE)
    normalised = np.asarray(jax.vmap(mlp.predict, in_axes=(None, 0))(weights, queries),
                            dtype=np.float64)
    predicted = np.exp(normalisation.log_time(normalised))
    return mape(predicted, np.array([r.seconds for r in test]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("ANNC_HOME", tempfile.mkdtemp(prefix="annc-schedules-"))
    reference = load_reference()
    assert reference is not None
    noise = noise_floor(reference.measurements).by_combination
    groups = {c: rows for c, rows in by_combo(to_training_rows(reference.measurements)).items()
              if c[0] in KERNELS and c[1] in SCHEDULERS and c[2] == "cpu"}
    families = {"annc's features, 8 units": (8, False), "annc's features, 7 units": (7, False),
                "+ schedule features, 7 units": (7, True)}
    lines = ["| combination | rows (train/test) | schedules that fuse | noise | "
             + " | ".join(families) + " |", "|---|---|---|---|" + "---|" * len(families)]
    means: dict[str, list[float]] = {name: [] for name in families}
    for combo, rows in sorted(groups.items()):
        train, test = split(rows, "train"), split(rows, "test")
        extra = {r.config: schedule_features(schedule_of(combo, r.config)) for r in rows}
        fused = sum(extra[r.config][0] for r in rows)
        cells = []
        for name, (hidden, with_schedule) in families.items():
            scores = [held_out_mape(train, test, extra, hidden, seed, with_schedule)
                      for seed in range(args.seeds)]
            means[name] += scores
            cells.append(f"{statistics.fmean(scores):.1f}%")
        floor = noise.get(combo)
        lines.append(f"| {combo[0]} {combo[1]} | {len(train)}/{len(test)} | "
                     f"{fused:.0f} of {len(rows)} | "
                     f"{'-' if floor is None else format(100 * floor, '.1f') + '%'} | "
                     + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    lines.append("| mean over combinations and seeds | | | | "
                 + " | ".join(f"{statistics.fmean(v):.1f}%" for v in means.values()) + " |")
    text = "\n".join([
        "# Schedule features for the auto-schedulers", "",
        f"Reference data of machine `{fingerprint().id}`; {datetime.date.today().isoformat()}."
        f" Command: `python benchmarks/schedule_features.py --seeds {args.seeds}`. Held-out "
        f"MAPE, mean over {args.seeds} training seeds, on the same rows for every column. "
        f"Schedule features: {', '.join(SCHEDULE_FEATURES)}.", "", *lines, ""])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "schedule_features.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
