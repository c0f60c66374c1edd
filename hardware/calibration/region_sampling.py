"""What region calibration measures: the region shapes physics workloads have.

Each template draws one region as workloads write them — a stencil step
(stencil + scale + add), a wave step, a matrix product and its scaling, a
matrix–vector product with its update, element-wise chains of 2–6 ops, chains
ending in a reduction, a reduction that scales a vector — and whole loops of
such bodies (a stencil step, an element-wise update, a power-iteration step)
of 2–256 trips. Sizes are drawn log-uniformly over the ranges workloads use,
fields grid-shaped. Every compiled region variant that can run a drawn region
is measured on it, so the variants are compared on the same regions.

A row stores the region's summary (`RegionSpec` → `Summary`) as its shapes; a
loop's time is per trip.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from annc.dsl import dtypes
from annc.hardware.calibration.sampling import Config, interleave
from annc.hardware.variants.regions import catalogue
from annc.hardware.variants.regions.spec import RegionOp, RegionSpec, summary

SEED = 20261125
PLAN = (100, 25)
"""Training and test regions per combination (region class and variant)."""
NOISE_REGIONS = 6
"""Test regions per combination that the noise passes measure twice."""



@dataclass(frozen=True)
class RegionVariantName:
    """What a calibration job says about its variant: the models' combination."""

    kernel: str
    name: str
    device: str = "cpu"


@dataclass(frozen=True)
class RegionJob:
    """One measurement of a region variant on one drawn region, in a split."""

    variant: RegionVariantName
    region: RegionSpec = field(compare=False)
    split: str
    noise_pass: int = 0

    @property
    def config(self) -> Config:
        return Config(self.variant.kernel, summary(self.region).as_shapes(),
                      dtypes.stored_name(self.region.dtype))

    @property
    def key(self) -> tuple[str, str, str, str, str, tuple[tuple[int, ...], ...], int]:
        """Matches `Record.calibration_key` of the stored record."""
        config = self.config
        return (self.variant.kernel, self.variant.name, self.variant.device, self.split,
                config.dtype, config.shapes, self.noise_pass)


def _log_uniform(rng: np.random.Generator, low: int, high: int) -> int:
    return round(math.exp(rng.uniform(math.log(low), math.log(high))))


def _grid(rng: np.random.Generator, low: int, high: int) -> tuple[int, int]:
    """A grid-shaped 2-D field of `low`²…`high`² elements, sides within 2x."""
    side = _log_uniform(rng, low, high)
    return side, max(1, round(side * math.exp(rng.uniform(-math.log(2), math.log(2)))))


def _dtype(rng: np.random.Generator) -> str:
    return str(rng.choice(["f32", "f64"]))


def _field(rng: np.random.Generator, max_elements: int) -> tuple[int, ...]:
    if rng.random() < 0.3:
        return (_log_uniform(rng, 1000, max_elements),)
    side = math.isqrt(max_elements)
    return _grid(rng, 32, side)


STENCILS = (3, 3, 3, 5, 7)
"""Stencil sizes: mostly a Laplacian's 3×3, up to 7×7."""
KERNELS = (9, 11, 15, 21)
"""Larger convolution kernels: smoothing and detector response kernels."""

CONSTANT_STENCIL_SHARE = 0.5
"""The share of stencils that are program constants (a Laplacian, a difference
operator), which a builder may fold into its code; the others arrive at run time."""


def _with_constant_stencil(spec: RegionSpec, number: int, rng: np.random.Generator
                           ) -> RegionSpec:
    """The spec, with input `number` (a p×p stencil) made a known constant half of the
    time: a cross of ±1 and −2d taps (a Laplacian), or a sparse stencil of small
    integers, zero elsewhere, with at least two nonzero taps (a stencil of zeros or of
    one tap is no stencil: a compiler folds it into nothing or a shift)."""
    if rng.random() >= CONSTANT_STENCIL_SHARE:
        return spec
    p = spec.inputs[number][0]
    weights = np.zeros((p, p))
    if rng.random() < 0.5:
        weights[p // 2, :] = 1.0
        weights[:, p // 2] = 1.0
        weights[p // 2, p // 2] = -2.0 * (p - 1)
    else:
        while np.count_nonzero(weights) < 2:
            mask = rng.random((p, p)) < 0.4
            weights[mask] = rng.integers(-2, 3, size=int(mask.sum()))
    return RegionSpec(spec.inputs, spec.dtype, spec.ops, spec.outputs, spec.trips,
                      spec.carried, constants=((number, tuple(weights.ravel())),))


def _stencil_step(rng: np.random.Generator, sizes: tuple[int, ...] = STENCILS) -> RegionSpec:
    """T + s · conv2d(T, K), the scale sometimes a product of two scalars (0.2 · alpha)."""
    grid = _grid(rng, 32, 2048)
    p = int(rng.choice(sizes))
    ops: tuple[RegionOp, ...]
    if rng.random() < 0.5:
        ops = (RegionOp("conv2d", (0, 1)), RegionOp("mul", (2, 3)), RegionOp("add", (0, 4)))
        spec = RegionSpec((grid, (p, p), ()), _dtype(rng), ops, (5,))
    else:
        ops = (RegionOp("mul", (2, 3)), RegionOp("conv2d", (0, 1)), RegionOp("mul", (4, 5)),
               RegionOp("add", (0, 6)))
        spec = RegionSpec((grid, (p, p), (), ()), _dtype(rng), ops, (7,))
    return _with_constant_stencil(spec, 1, rng)


def _wave_step(rng: np.random.Generator) -> RegionSpec:
    """2 · U − U_prev + c · conv2d(U, K)."""
    grid = _grid(rng, 32, 2048)
    ops = (RegionOp("mul", (3, 0)), RegionOp("sub", (5, 1)), RegionOp("conv2d", (0, 2)),
           RegionOp("mul", (4, 7)), RegionOp("add", (6, 8)))
    return _with_constant_stencil(
        RegionSpec((grid, grid, (3, 3), (), ()), _dtype(rng), ops, (9,)), 2, rng)


def _matmul_scale(rng: np.random.Generator) -> RegionSpec:
    m, k, n = (_log_uniform(rng, 32, 1024) for _ in range(3))
    ops: tuple[RegionOp, ...] = (RegionOp("matmul", (0, 1)), RegionOp("mul", (2, 3)))
    if rng.random() < 0.5:
        return RegionSpec(((m, k), (k, n), ()), _dtype(rng), ops, (4,))
    ops = (*ops, RegionOp("add", (3, 4)))
    return RegionSpec(((m, k), (k, n), (), (m, n)), _dtype(rng), ops, (6,))


def _gram(rng: np.random.Generator) -> RegionSpec:
    """s · X Xᵀ (or Xᵀ X): a Gram or covariance matrix, the transpose read in place."""
    m, k = _log_uniform(rng, 32, 4000), _log_uniform(rng, 32, 1000)
    if m * m * k > 4e10:
        m = int(math.sqrt(4e10 / k))
    if rng.random() < 0.5:
        ops = (RegionOp("transpose", (0,)), RegionOp("matmul", (0, 2)),
               RegionOp("mul", (1, 3)))
    else:
        ops = (RegionOp("transpose", (0,)), RegionOp("matmul", (2, 0)),
               RegionOp("mul", (1, 3)))
    return RegionSpec(((m, k), ()), _dtype(rng), ops, (4,))


def _matvec_update(rng: np.random.Generator) -> RegionSpec:
    """y − s · A x, a step of an iterative solver."""
    m, n = _log_uniform(rng, 64, 3000), _log_uniform(rng, 64, 3000)
    ops = (RegionOp("matvec", (0, 1)), RegionOp("mul", (3, 4)), RegionOp("sub", (2, 5)))
    return RegionSpec(((m, n), (n,), (m,), ()), _dtype(rng), ops, (6,))


UNARY = ("exp", "sqrt", "abs", "neg")
BINARY = ("add", "sub", "mul", "div")


def _chain_ops(rng: np.random.Generator, fields: list[int], scalars: list[int],
               first: int, count: int) -> list[RegionOp]:
    """`count` element-wise ops, each reading the previous result and, for binary ops,
    a field or scalar input or an earlier result. A difference or quotient never takes
    one value twice: v − v and v / v are constants no workload computes, and a
    compiler may fold them away (Halide does without strict float), so their times
    would describe no real region."""
    ops: list[RegionOp] = []
    last = fields[0]
    made: list[int] = []
    for _ in range(count):
        if rng.random() < 0.3:
            op = RegionOp(str(rng.choice(UNARY)), (last,))
        else:
            kernel = str(rng.choice(BINARY))
            others = [v for v in fields + scalars + made
                      if v != last or kernel not in ("sub", "div")]
            if not others:  # the only value there is: v + v or v · v
                kernel, others = str(rng.choice(("add", "mul"))), [last]
            other = int(rng.choice(others))
            pair = (last, other) if rng.random() < 0.5 else (other, last)
            op = RegionOp(kernel, pair)
        ops.append(op)
        last = first + len(ops) - 1
        made.append(last)
    return ops


def _chain(rng: np.random.Generator, max_elements: int = 1 << 22) -> RegionSpec:
    shape = _field(rng, max_elements)
    n_fields, n_scalars = int(rng.integers(1, 4)), int(rng.integers(0, 3))
    inputs = (shape,) * n_fields + ((),) * n_scalars
    ops = _chain_ops(rng, list(range(n_fields)), list(range(n_fields, len(inputs))),
                     len(inputs), int(rng.integers(2, 7)))
    return RegionSpec(inputs, _dtype(rng), tuple(ops), (len(inputs) + len(ops) - 1,))


def _chain_reduce(rng: np.random.Generator) -> RegionSpec:
    """An element-wise chain of 1–4 ops ending in sum or norm (`sum(T * T)`)."""
    shape = _field(rng, 1 << 22)
    n_fields = int(rng.integers(1, 3))
    inputs: tuple[tuple[int, ...], ...] = (shape,) * n_fields
    ops = _chain_ops(rng, list(range(n_fields)), [], n_fields, int(rng.integers(1, 5)))
    ops.append(RegionOp(str(rng.choice(["sum", "norm"])), (n_fields + len(ops) - 1,)))
    return RegionSpec(inputs, _dtype(rng), tuple(ops), (n_fields + len(ops) - 1,))


def _reduce_scale(rng: np.random.Generator) -> RegionSpec:
    """z + (s / dot(x, y)) · x: a conjugate-gradient update."""
    n = _log_uniform(rng, 1000, 1 << 22)
    ops = (RegionOp("dot", (0, 1)), RegionOp("div", (3, 4)), RegionOp("mul", (5, 0)),
           RegionOp("add", (2, 6)))
    return RegionSpec(((n,), (n,), (n,), ()), _dtype(rng), ops, (7,))


def _loop(body: RegionSpec, trips: int) -> RegionSpec:
    return RegionSpec(body.inputs, body.dtype, body.ops, body.outputs[:1], trips=trips,
                      carried=1, constants=body.constants)


LOOP_WORK = 4e9
"""The most multiply-adds a drawn loop does in all (fewer trips for large stencils)."""


def _large_kernel_step(rng: np.random.Generator) -> RegionSpec:
    return _stencil_step(rng, KERNELS)


def _stencil_loop(rng: np.random.Generator, sizes: tuple[int, ...] = STENCILS
                  ) -> RegionSpec:
    body = _stencil_step(rng, sizes)
    h, w = body.inputs[0]
    p = body.inputs[1][0]
    most = max(2, int(LOOP_WORK / (h * w * p * p)))
    return _loop(body, min(_log_uniform(rng, 2, 256), most))


def _large_kernel_loop(rng: np.random.Generator) -> RegionSpec:
    return _stencil_loop(rng, KERNELS)


def _update_loop(rng: np.random.Generator) -> RegionSpec:
    """x ← a · x + g(y): a pointwise time step, g a chain of 1–4 element-wise ops on
    loop-invariant fields (a forcing term), a in [0, 1), so that x stays bounded and
    never underflows into subnormal numbers, which would time something else."""
    shape = _field(rng, 1 << 20)
    n_fields = int(rng.integers(1, 3))
    inputs = ((shape,) + (shape,) * n_fields + ((),))  # x, the fields y, the scalar a
    forcing = _chain_ops(rng, list(range(1, 1 + n_fields)), [], len(inputs),
                         int(rng.integers(1, 5)))
    g = len(inputs) + len(forcing) - 1
    ops = (*forcing, RegionOp("mul", (len(inputs) - 1, 0)), RegionOp("add", (g + 1, g)))
    return RegionSpec(inputs, _dtype(rng), ops, (g + 2,), trips=_log_uniform(rng, 2, 64),
                      carried=1)


def _power_loop(rng: np.random.Generator) -> RegionSpec:
    """v ← A v / ‖A v‖: a power-iteration step."""
    n = _log_uniform(rng, 64, 2000)
    ops = (RegionOp("matvec", (1, 0)), RegionOp("norm", (2,)), RegionOp("div", (2, 3)))
    return RegionSpec(((n,), (n, n)), _dtype(rng), ops, (4,), trips=_log_uniform(rng, 2, 256),
                      carried=1)


Template = Callable[[np.random.Generator], RegionSpec]

def _matmul_loop(rng: np.random.Generator) -> RegionSpec:
    """P ← P P / ‖P P‖: repeated squaring of a transition matrix."""
    n = _log_uniform(rng, 32, 512)
    ops = (RegionOp("matmul", (0, 0)), RegionOp("norm", (1,)), RegionOp("div", (1, 2)))
    return RegionSpec(((n, n),), _dtype(rng), ops, (3,), trips=_log_uniform(rng, 2, 16),
                      carried=1)


REGION_TEMPLATES: dict[str, tuple[Template, ...]] = {
    "stencil": (_stencil_step, _wave_step),
    "conv2d": (_large_kernel_step,),
    "matmul": (_matmul_scale, _gram),
    "matvec": (_matvec_update,),
    "reduction": (_chain_reduce, _reduce_scale),
    "elementwise": (_chain,),
}
"""The templates of each class of fused chain."""
LOOP_TEMPLATES: dict[str, tuple[Template, ...]] = {
    "stencil": (_stencil_loop,),
    "conv2d": (_large_kernel_loop,),
    "matmul": (_matmul_loop,),
    "matvec": (_power_loop,),
    "elementwise": (_update_loop,),
}
"""The templates of each class of whole loop."""


def draw(templates: tuple[Template, ...], count: int,
         rng: np.random.Generator) -> list[RegionSpec]:
    """`count` regions, cycling through the templates in a shuffled order."""
    order = rng.permutation(count) % len(templates)
    return [templates[int(i)](rng) for i in order]


def _jobs(kind: str, train: list[RegionSpec], test: list[RegionSpec]
          ) -> list[tuple[list[RegionJob], list[RegionJob]]]:
    """Per compiled variant: its training and test jobs, on the regions it can run."""
    per_variant = []
    for variant in catalogue.VARIANTS:
        name = RegionVariantName(kind, variant.name, variant.device)
        train_jobs, test_jobs = ([RegionJob(name, spec, split) for spec in specs
                                  if variant.why_not(spec) is None]
                                 for split, specs in (("train", train), ("test", test)))
        if train_jobs and test_jobs:
            per_variant.append((train_jobs, test_jobs))
    return per_variant


def region_plan(seed: int = SEED) -> tuple[list[RegionJob], list[RegionJob]]:
    """Every region job (training and test rows), and the noise passes' jobs."""
    rng = np.random.default_rng(seed)
    groups: list[list[RegionJob]] = []
    noise: list[list[RegionJob]] = []
    train, test = PLAN
    classes = [(f"{catalogue.REGION}.{name}", templates)
               for name, templates in REGION_TEMPLATES.items()]
    classes += [(f"{catalogue.LOOP}.{name}", templates)
                for name, templates in LOOP_TEMPLATES.items()]
    for kind, templates in classes:
        train_specs, test_specs = draw(templates, train, rng), draw(templates, test, rng)
        for train_jobs, test_jobs in _jobs(kind, train_specs, test_specs):
            groups.append(train_jobs + test_jobs)
            step = max(1, len(test_jobs) // NOISE_REGIONS)
            noise.append([RegionJob(j.variant, j.region, "noise", 1)
                          for j in test_jobs[::step][:NOISE_REGIONS]])
    first = interleave(noise)
    return interleave(groups), [*first, *(RegionJob(j.variant, j.region, "noise", 2)
                                          for j in first)]
