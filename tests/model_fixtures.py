"""Model sets with known predictions, for testing selection without training anything.

A *constant model* predicts the same time for every configuration: zero weights,
and a normalisation whose target mean is the log of that time.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from annc.hardware.devices.fingerprint import fingerprint
from annc.predictor.features import Normalisation, feature_names
from annc.predictor.models import Model, ModelSet
from annc.predictor.transfers import Link, TransferModel


def constant_model(kernel: str, variant: str, device: str, seconds: float,
                   compile_s: float = 0.0) -> Model:
    names = feature_names(kernel, augmented=True)
    d = len(names)
    params = {"w1": np.zeros((d, 8)), "b1": np.zeros(8), "w2": np.zeros(8),
              "b2": np.zeros(())}
    normalisation = Normalisation((0.0,) * d, (1.0,) * d, math.log(seconds), 1.0)
    return Model(kernel, variant, device, names, normalisation, params,
                 {"train_n": 0, "test_n": 0, "mape": None, "params": 8 * (d + 2) + 1,
                  "compile_s": compile_s})


def model_set(times: dict[tuple[str, str, str], float | tuple[float, float]],
              copy_seconds_per_byte: float = 1e-9, copy_latency: float = 1e-5) -> ModelSet:
    """Constant models by (kernel, variant, device) -> seconds or (seconds, compile_s)."""
    models = {}
    for combo, value in times.items():
        seconds, compile_s = value if isinstance(value, tuple) else (value, 0.0)
        models[combo] = constant_model(*combo, seconds, compile_s)
    link = Link(copy_latency, copy_seconds_per_byte)
    transfers = TransferModel({("opencl", "to_device"): link, ("opencl", "to_host"): link})
    return ModelSet({"id": fingerprint().id}, models, transfers)


def install_for_this_machine(models: ModelSet, home: Path) -> Path:
    """Saves the set where `annc` looks first: `$ANNC_HOME/models/<fingerprint>.json`."""
    path = home / "models" / f"{fingerprint().id}.json"
    models.save(path)
    return path
