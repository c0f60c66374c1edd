"""The inputs of a performance model: what a kernel's operands look like, in logs.

For one configuration of one kernel–variant–device combination the features are
the logs of the kernel's size parameters (m, k, n for a matrix product; h, w,
p, q for a convolution; the element count for the rest, and optionally its
innermost extent), the log of the variant's mathematical complexity with the
innermost loop rounded up to whole vectors — the *augmentation* of the paper — the log of the
bytes its operands and result occupy, and 1 for f64 (0 for f32). A variant whose
run time switches with a decision it makes per shape (Mullapudi2016 fusing a product
into its consumer) also gets that decision, a *trait* of the configuration, in place
of the bytes. The plain baseline models get the same features without the
complexity. Features are named, and a model computes the ones its file names, so
older model files keep working.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from annc.dsl.kernels import KERNELS, Shapes
from annc.dsl.records import Query

REGION_KINDS = ("region", "loop")
"""The models' names for a fused chain of kernels and for one trip of a whole loop,
each followed by the region's class (`region.conv2d`, `loop.elementwise`: see
`hardware.variants.regions.spec.region_class`). Their "shapes" are one tuple, the
region's summary: its largest value's elements, its op count, the bytes it moves
once (inputs and outputs), the bytes its ops move one by one, and its ops' summed
complexity."""

REGION_SIZES = ("elements", "ops", "bytes once", "bytes per op")
LOOP_SIZES = ("ops", "bytes once", "bytes per op", "trips")
"""A loop's: its body's (its bytes moved once stand for its size) and its trips, so
that its model stays under 75 parameters with the complexity prior."""


def is_region(kernel: str) -> bool:
    """Whether a model's "kernel" is a region class (`region.conv2d`, `loop.matvec`)."""
    return kernel.split(".", 1)[0] in REGION_KINDS


SIZE_NAMES: dict[str, tuple[str, ...]] = {k: s.size_names for k, s in KERNELS.items()}
"""Size parameters per kernel (`dsl.kernels`): m, k, n for matmul, the element count
for element-wise kernels and reductions; a region's summary for regions."""

ITEMSIZE = {"f32": 4, "f64": 8}


def size_names(kernel: str) -> tuple[str, ...]:
    if is_region(kernel):
        return LOOP_SIZES if kernel.startswith("loop.") else REGION_SIZES
    return SIZE_NAMES.get(kernel, ("elements",))


def sizes(kernel: str, shapes: Shapes) -> tuple[int, ...]:
    """The kernel's size parameters for these operand shapes."""
    if is_region(kernel):
        summary = dict(zip(("elements", *REGION_SIZES[1:], "complexity", "trips"), shapes[0],
                           strict=False))
        return tuple(summary[name] for name in size_names(kernel))
    return KERNELS[kernel].sizes(shapes)


def result_elements(kernel: str, shapes: Shapes) -> int:
    return math.prod(KERNELS[kernel].result_shape(shapes))


def bytes_touched(kernel: str, shapes: Shapes, dtype: str) -> int:
    """Bytes of every operand and the result: the least memory traffic of any variant
    (of a region: of its inputs and outputs)."""
    if is_region(kernel):
        return shapes[0][2]
    elements = sum(math.prod(s) for s in shapes) + result_elements(kernel, shapes)
    return elements * ITEMSIZE[dtype]


ENCODINGS = ("log", "raw")
"""How sizes enter a model: their logs (annc's), or the raw values (the paper's), each
then standardised on the training rows."""

VECTOR_BYTES = 64
"""The width of one vector register (AVX-512) and of one cache line: the unit in which
an innermost loop actually moves data."""

COMPLEXITY = "padded complexity"
"""The augmentation new models get: the textbook complexity with the innermost loop
rounded up to whole vectors (see `padded_complexity`). In log encoding the plain
complexity of most kernels is a sum of the size features, which the network forms by
itself; the rounding is not, so the augmentation carries information."""

SHAPE_AWARE = False
"""Whether element-wise kernels and reductions also get their innermost extent (a
(n, 2) field runs far slower than a (2, n) one of the same element count under XLA).
Off: it lowered held-out and real-workload error on the morning's reference data
but raised both on the evening's, which the shipped models are trained on (docs/design.md,
"Measurements behind the code")."""


def innermost(kernel: str, shapes: Shapes) -> int:
    """The extent of the innermost loop over the result: the last axis longer than 1 of
    the largest operand (1 for scalars), the columns of a product, image or transpose
    (the first operand's, for a `matrix` kernel of the kernel table, but matmul's).
    Axes of length 1 are skipped: every backend drops them, so an (n, 1) column runs
    as the n-vector it is."""
    spec = KERNELS.get(kernel)
    if kernel == "matmul":
        candidates = [shapes[1][1], shapes[0][1]]
    elif spec is not None and spec.kind == "matrix":
        candidates = [shapes[0][1], shapes[0][0]]
    else:
        largest: tuple[int, ...] = max(shapes, key=lambda shape: math.prod(shape))
        candidates = list(reversed(largest))
    return next((extent for extent in candidates if extent > 1), 1)


def padded_complexity(config: Query) -> float:
    """The complexity with the innermost loop rounded up to whole vectors of this dtype:
    the work a vectorised loop does, remainder lanes included (a region's, as summed)."""
    if is_region(config.kernel):
        return max(config.complexity, 1.0)
    lanes = VECTOR_BYTES // ITEMSIZE[config.dtype]
    inner = max(innermost(config.kernel, config.shapes), 1)
    return max(config.complexity, 1.0) * (math.ceil(inner / lanes) * lanes / inner)


def feature_names(kernel: str, augmented: bool, encoding: str = "log",
                  shape_aware: bool = SHAPE_AWARE,
                  complexity: str = COMPLEXITY,
                  traits: Sequence[str] = ()) -> tuple[str, ...]:
    """A new model's inputs, in order; a model file keeps the names it was made with,
    and `feature_row` computes whatever names it is given.

    `traits` are the names of the decisions a variant reports per configuration
    (`Query.traits`): they enter as they are (0 or 1), in place of the bytes,
    which in log form are nearly a function of the sizes, so that a convolution's
    model keeps 7 inputs and 73 parameters at 8 hidden units."""
    prefix = "log " if encoding == "log" else ""
    names = list(size_names(kernel))
    if shape_aware and names == ["elements"]:
        names.append("inner")
    if augmented:
        names.append(complexity)
    if not is_region(kernel) and not traits:  # a region's sizes include the bytes it moves
        names.append("bytes")
    return (*(f"{prefix}{name}" for name in names), *traits, "f64")



class MissingTraitError(LookupError):
    """A model needs a trait that its query does not carry."""


def _value(config: Query, name: str) -> float:
    if name == "inner":
        return float(max(innermost(config.kernel, config.shapes), 1))
    if name == "complexity":
        return max(config.complexity, 1.0)
    if name == "padded complexity":
        return padded_complexity(config)
    if name == "bytes":
        return float(bytes_touched(config.kernel, config.shapes, config.dtype))
    if name not in size_names(config.kernel):
        traits = dict(config.traits)
        if name not in traits:
            raise MissingTraitError(f"the {config.kernel} model needs the variant's {name!r} "
                                    f"for {config.shapes}, and the query does not carry it")
        return traits[name]
    index = size_names(config.kernel).index(name)
    return float(max(sizes(config.kernel, config.shapes)[index], 1))


DERIVED = ("inner", "complexity", "padded complexity", "bytes", "f64")
"""Features computed from the kernel, shapes and dtype alone."""


def trait_names(kernel: str, names: Sequence[str]) -> tuple[str, ...]:
    """The features among `names` that are a variant's traits, which a query must carry."""
    sizes_ = size_names(kernel)
    return tuple(n for n in names if n.removeprefix("log ") not in (*DERIVED, *sizes_))


def feature_row(config: Query, names: Sequence[str]) -> list[float]:
    """The values of these features (a model's `features`) for one configuration."""
    row = []
    for name in names:
        if name == "f64":
            row.append(1.0 if config.dtype == "f64" else 0.0)
        elif name.startswith("log "):
            row.append(math.log(_value(config, name.removeprefix("log "))))
        else:
            row.append(_value(config, name))
    return row


def feature_matrix(configs: Sequence[Query], names: Sequence[str]) -> np.ndarray:
    return np.array([feature_row(c, names) for c in configs], dtype=np.float64)


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
