"""The inputs of a performance model: what a kernel's operands look like, in logs.

For one configuration of one kernel–variant–device combination the features are
the logs of the kernel's size parameters (m, k, n for a matrix product; h, w,
p, q for a convolution; the element count for the rest), the log of the
variant's mathematical complexity — the *augmentation* of the paper — the log
of the bytes its operands and result occupy, and 1 for f64 (0 for f32).
The plain baseline models get the same features without the complexity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dsl.kernels import KERNELS, Shapes

SIZE_NAMES: dict[str, tuple[str, ...]] = {k: s.size_names for k, s in KERNELS.items()}
"""Size parameters per kernel (`dsl.kernels`): m, k, n for matmul, the element count
for element-wise kernels and reductions."""

ITEMSIZE = {"f32": 4, "f64": 8}


def size_names(kernel: str) -> tuple[str, ...]:
    return SIZE_NAMES.get(kernel, ("elements",))


def sizes(kernel: str, shapes: Shapes) -> tuple[int, ...]:
    """The kernel's size parameters for these operand shapes."""
    return KERNELS[kernel].sizes(shapes)


def result_elements(kernel: str, shapes: Shapes) -> int:
    return math.prod(KERNELS[kernel].result_shape(shapes))


def bytes_touched(kernel: str, shapes: Shapes, dtype: str) -> int:
    """Bytes of every operand and the result: the least memory traffic of any variant."""
    elements = sum(math.prod(s) for s in shapes) + result_elements(kernel, shapes)
    return elements * ITEMSIZE[dtype]


ENCODINGS = ("log", "raw")
"""How sizes enter a model: their logs (annc's), or the raw values (the paper's), each
then standardised on the training rows."""


def feature_names(kernel: str, augmented: bool, encoding: str = "log") -> tuple[str, ...]:
    prefix = "log " if encoding == "log" else ""
    names = tuple(f"{prefix}{name}" for name in size_names(kernel))
    return (*names, *((f"{prefix}complexity",) if augmented else ()), f"{prefix}bytes", "f64")


def encoding_of(names: Sequence[str]) -> str:
    """The encoding a model's feature names were made with."""
    return "log" if names[0].startswith("log ") else "raw"


@dataclass(frozen=True)
class Configuration:
    """One measured or queried configuration of a kernel–variant–device combination."""

    kernel: str
    shapes: Shapes
    dtype: str
    complexity: float


def feature_row(config: Configuration, augmented: bool, encoding: str = "log") -> list[float]:
    values = [float(max(s, 1)) for s in sizes(config.kernel, config.shapes)]
    if augmented:
        values.append(max(config.complexity, 1.0))
    values.append(float(bytes_touched(config.kernel, config.shapes, config.dtype)))
    if encoding == "log":
        values = [math.log(v) for v in values]
    values.append(1.0 if config.dtype == "f64" else 0.0)
    return values


def feature_matrix(configs: Sequence[Configuration], augmented: bool,
                   encoding: str = "log") -> np.ndarray:
    return np.array([feature_row(c, augmented, encoding) for c in configs], dtype=np.float64)


@dataclass(frozen=True)
class Normalisation:
    """Per-feature mean and scale, and those of log time: fitted on training rows only."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    target_mean: float
    target_scale: float

    @staticmethod
    def fit(features: np.ndarray, log_times: np.ndarray) -> Normalisation:
        scale = features.std(axis=0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        target_scale = float(log_times.std()) or 1.0
        return Normalisation(tuple(features.mean(axis=0)), tuple(scale),
                             float(log_times.mean()), target_scale)

    def features(self, features: np.ndarray) -> np.ndarray:
        return (features - np.array(self.mean)) / np.array(self.scale)

    def target(self, log_times: np.ndarray) -> np.ndarray:
        return (log_times - self.target_mean) / self.target_scale

    def log_time(self, normalised: np.ndarray) -> np.ndarray:
        return normalised * self.target_scale + self.target_mean
