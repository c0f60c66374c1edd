"""The sampling plan: which configurations calibration measures, in which order.

A *configuration* is a kernel's operand shapes and dtype. Every kernel has one
seeded list of training configurations and a separate list of held-out test
configurations (no configuration is in both); all variants of a kernel are
measured on prefixes of the same lists, so their times are comparable. Sizes
are log-uniform across the range where variants differ, a fifth of them moved to a
power of two or one off it, with matrices, fields and stencils shaped as physics
has them; they are capped so that one measurement of the slowest sane variant
stays well under a second.

Variants whose build is expensive (JAX and Halide compile per shape; Halide's
auto-schedulers also search for a schedule) get shorter prefixes. Jobs are
interleaved round-robin over the kernel–variant–device combinations so a
budgeted run measures every combination a little rather than one fully.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from annc.dsl.kernels import KERNELS
from annc.hardware.variants.registry import Shapes, Variant

DTYPES = ("float32", "float64")
SEED = 20261124

MAX_TRAIN = 250
"""The paper's limit: at most 250 training measurements per combination."""


@dataclass(frozen=True)
class PlanSize:
    train: int
    test: int


PLAN_SIZES = {
    "cheap": PlanSize(train=250, test=50),
    "compiled": PlanSize(train=100, test=25),
    "autoscheduled": PlanSize(train=250, test=40),
    "offload": PlanSize(train=80, test=20),
}
"""Configurations per combination by the cost of building a variant and by how hard its
time is to learn: numpy-only builds are free; JAX and Halide compile per shape
(0.1–0.3 s), and a smooth function of the sizes follows their times from 100 rows;
variants on another device also pay for copies and a device compile. Halide's
auto-schedulers search and compile per shape (0.14–0.23 s a row, as cheap as a
compile), but they write a different schedule per shape, so their times switch
with shape: they get the paper's full 250 rows, and 40 held-out ones. From 60 to 250
rows, on the same 40 held-out rows of one run (mean of 4 seeds), the matmul models
went 88% → 33% (Adams2019), 26% → 23% (Li2018), 40% → 36% (Mullapudi2016), the
conv2d ones 30% → 21% and 44% → 34%, the matvec ones 24–30% → 20–23%; that is 8 more
minutes of calibration. `PLAN_OVERRIDES` sets it for single combinations."""


PLAN_OVERRIDES = {("conv2d", "halide.auto.adams2019"): PlanSize(train=20, test=8),
                  ("conv2d", "jax.lax"): PLAN_SIZES["autoscheduled"]}
"""Combinations whose plan differs from their cost class's. Fewer rows where a build
alone takes far longer: Adams2019's schedule search for a convolution takes 3–45 s per
shape (13 s on average) on the reference machine. More where the time switches with
shape and dtype as the auto-schedulers' does: XLA's convolution (on the reference
machine a 3x3 stencil takes about 2.7 ns a pixel and tap in float32, 0.15–0.2 ns in
float64) gets their 250 training rows. On the same 40 held-out rows its model's median
error went from 26% (100 rows, mean of three seeds) to 17%, and on the examples' `tune`
measurements from 28% to 17%."""


def plan_size(variant: Variant) -> PlanSize:
    """How many training and test configurations this variant is measured on."""
    return PLAN_OVERRIDES.get((variant.kernel, variant.name),
                              PLAN_SIZES[cost_class(variant)])


def cost_class(variant: Variant) -> str:
    """How expensive building this variant is: a key of `PLAN_SIZES`."""
    if variant.device != "cpu":
        return "offload"
    if ".auto." in variant.name or variant.name.startswith("halide.auto"):
        return "autoscheduled"
    if variant.backend in ("jax", "halide"):
        return "compiled"
    return "cheap"


@dataclass(frozen=True)
class Config:
    kernel: str
    shapes: Shapes
    dtype: str


@dataclass(frozen=True)
class Job:
    """One measurement to take: a variant on a configuration, in a split."""

    variant: Variant
    config: Config
    split: str
    noise_pass: int = 0

    @property
    def key(self) -> tuple[str, str, str, str, str, Shapes, int]:
        """Matches `Record.calibration_key` of the stored record."""
        return (self.variant.kernel, self.variant.name, self.variant.device, self.split,
                self.config.dtype, self.config.shapes, self.noise_pass)


def _log_uniform(rng: np.random.Generator, low: int, high: int) -> int:
    return round(math.exp(rng.uniform(math.log(low), math.log(high))))


POWER_OF_TWO_SHARE = 0.2
"""The share of drawn sizes moved to a power of two, or one off it: the sizes people
choose (and where caches, vector widths and FFTs switch behaviour)."""


def _size(rng: np.random.Generator, low: int, high: int) -> int:
    """A log-uniform size in [low, high], now and then a power of two or one off it."""
    n = _log_uniform(rng, low, high)
    if rng.random() < POWER_OF_TWO_SHARE:
        power = 2 ** round(math.log2(n)) + int(rng.choice((-1, 0, 0, 1)))
        n = power if low <= power <= high else n
    return n


def _capped(rng: np.random.Generator, draw: Callable[[], Shapes],
            cost: Callable[[Shapes], float], cap: float) -> Shapes:
    """A draw whose cost is under the cap (redrawn until it is)."""
    while True:
        shapes = draw()
        if cost(shapes) <= cap:
            return shapes


def _split(rng: np.random.Generator, elements: int, low: int, high: int) -> tuple[int, int]:
    """Rows and columns of about `elements` elements, each in [low, high]: within 4x of
    each other in most draws, as fields and matrices are, else any split."""
    if rng.random() < 0.7:
        rows = round(math.sqrt(elements) * math.exp(rng.uniform(-math.log(2), math.log(2))))
    else:
        rows = _log_uniform(rng, max(low, elements // high), min(high, elements // low))
    rows = min(max(rows, low), high)
    return rows, min(max(elements // rows, low), high)


def _tensor(rng: np.random.Generator, low: int, high: int) -> tuple[int, ...]:
    """A vector, or a matrix of a log-uniform number of elements: mostly a field
    of rows and columns within 4x of each other, as grids are, else any split."""
    n = _size(rng, low, high)
    if rng.random() < 0.5:
        return (n,)
    return _split(rng, n, 1, n)


def _matmul(rng: np.random.Generator) -> Shapes:
    """Square products (30%), skinny and wide ones with one small dimension such as
    Gram matrices and blocked solvers have (20%), and any mix of sizes."""
    def draw() -> Shapes:
        m = _size(rng, 8, 1536)
        shape = rng.random()
        if shape < 0.3:
            k = n = m
        elif shape < 0.5:
            small, large = _size(rng, 8, 64), (_size(rng, 256, 4096) for _ in range(2))
            dims = [small, *large]
            rng.shuffle(dims)
            m, k, n = dims
        else:
            k, n = _size(rng, 8, 1536), _size(rng, 8, 1536)
        return ((m, k), (k, n))
    return _capped(rng, draw, lambda s: s[0][0] * s[0][1] * s[1][1], 2**30)


CACHE_BAND = (2**17, 2**23)
"""Element counts whose bytes (4 or 8 each) span 0.5 MB to 64 MB: the L2 (0.5–2 MB) and
L3 (8–64 MB) capacities of current CPUs, where the time of a kernel that streams its
operands steps (matvec in f64 on the reference machine: 130–140 GB/s up to 16 MB, 40
GB/s from 24 MB)."""

CACHE_SHARE = 0.3
"""The share of matrix–vector products whose element count is drawn log-uniformly in
`CACHE_BAND`. Log-uniform sizes over the whole range put few rows there: 23 of numpy's
250 matvec rows fell between 4 and 16 MB, and its model predicted twice their time. On
the examples' `tune` measurements the band lowered matvec's mean error from 26.2% to
21.6% (five runs, three seeds). The same band for transposes, dot products,
element-wise kernels and reductions raised theirs, and is not drawn."""


def _matvec(rng: np.random.Generator) -> Shapes:
    def draw() -> Shapes:
        if rng.random() < CACHE_SHARE:
            m, n = _split(rng, _size(rng, *CACHE_BAND), 8, 8192)
        else:
            m, n = _size(rng, 8, 8192), _size(rng, 8, 8192)
        return ((m, n), (n,))
    return _capped(rng, draw, lambda s: s[0][0] * s[0][1], 2**24)


def _conv2d(rng: np.random.Generator) -> Shapes:
    """Images up to 2048 on a side; small stencils (3x3 to 7x7) in 60% of draws, as
    physics has them, else odd sizes up to 31."""
    def draw() -> Shapes:
        h, w = _size(rng, 8, 2048), _size(rng, 8, 2048)
        if rng.random() < 0.6:
            p = int(rng.choice((3, 5, 7)))
            q = p if rng.random() < 0.8 else int(rng.choice((3, 5, 7)))
        else:
            p, q = (2 * _log_uniform(rng, 1, 16) - 1 for _ in range(2))
        return ((h, w), (p, q))
    return _capped(rng, draw, lambda s: math.prod(s[0]) * math.prod(s[1]), 2**28)


def _transpose(rng: np.random.Generator) -> Shapes:
    def draw() -> Shapes:
        return ((_size(rng, 8, 4096), _size(rng, 8, 4096)),)
    return _capped(rng, draw, lambda s: math.prod(s[0]), 2**23)


def _dot(rng: np.random.Generator) -> Shapes:
    n = _size(rng, 16, 4_000_000)
    return ((n,), (n,))


def _unary(rng: np.random.Generator) -> Shapes:
    return (_tensor(rng, 16, 4_000_000),)


SCALAR_OPERAND_SHARE = 0.25
"""The share of binary element-wise draws with a scalar first operand, and again with a
scalar second one. Physics programs scale fields by scalars everywhere (a time step
times a stencil, a field over its norm): of the eight examples' 56 binary ops, 18 are
scalar × field and 4 field / scalar. At 10% each, JAX's and Halide's scalar products
were predicted up to 2.6x too slow; at 25% each, on the same `tune` measurements of
the examples, the binary ops' median error went from 6.1–7.2% to 5.4–6.0% and their
mean from 15.1–17.9% to 12.2–14.2% over three training seeds (both plans measured
the same morning)."""


def _binary(rng: np.random.Generator) -> Shapes:
    shape = _tensor(rng, 16, 4_000_000)
    side = rng.random()
    if side < SCALAR_OPERAND_SHARE:
        return ((), shape)
    if side < 2 * SCALAR_OPERAND_SHARE:
        return (shape, ())
    return (shape, shape)


DRAWS: dict[str, Callable[[np.random.Generator], Shapes]] = {
    "matmul": _matmul, "matvec": _matvec, "conv2d": _conv2d, "transpose": _transpose,
    "dot": _dot,
    **{k: _unary for k, s in KERNELS.items() if s.any_shape and s.arity == 1},
    **{k: _binary for k, s in KERNELS.items() if s.any_shape and s.arity == 2},
}
"""How one configuration's shapes are drawn, per kernel."""


def configurations(kernel: str, train: int = MAX_TRAIN, test: int = 50,
                   seed: int = SEED) -> tuple[list[Config], list[Config]]:
    """The kernel's training and held-out configurations: disjoint, seeded, stable."""
    rng = np.random.default_rng([seed, zlib.crc32(kernel.encode())])
    seen: set[Config] = set()
    drawn: list[Config] = []
    attempts = 0
    while len(drawn) < train + test and attempts < 100 * (train + test):
        attempts += 1
        config = Config(kernel, DRAWS[kernel](rng), DTYPES[int(rng.integers(len(DTYPES)))])
        if config not in seen:
            seen.add(config)
            drawn.append(config)
    return drawn[:train], drawn[train:]


def usable(variant: Variant, config: Config, memory_bytes: int) -> bool:
    """Whether the variant applies to the configuration and its memory fits."""
    dtype = np.dtype(config.dtype)
    if not variant.applies(config.shapes, dtype):
        return False
    operands = sum(math.prod(s) for s in config.shapes) * dtype.itemsize
    largest = max(math.prod(s) for s in config.shapes) * dtype.itemsize
    workspace = variant.workspace_bytes(config.shapes, dtype.itemsize)
    return 4 * (operands + largest) + workspace <= memory_bytes


def combination_jobs(variant: Variant, train: Sequence[Config], test: Sequence[Config],
                     memory_bytes: int) -> list[Job]:
    """One combination's jobs: its prefix of train and test, test spread among train."""
    size = plan_size(variant)
    chosen_train = [c for c in train if usable(variant, c, memory_bytes)][:size.train]
    chosen_test = [c for c in test if usable(variant, c, memory_bytes)][:size.test]
    jobs = [Job(variant, c, "train") for c in chosen_train]
    for i, config in enumerate(chosen_test):
        position = (i + 1) * len(jobs) // (len(chosen_test) + 1) + i
        jobs.insert(position, Job(variant, config, "test"))
    return jobs


T = TypeVar("T")


def interleave(lists: Iterable[Sequence[T]]) -> list[T]:
    """Round-robin over the lists: the first job of each, then the second of each, ..."""
    lists = [list(jobs) for jobs in lists]
    order: list[T] = []
    for i in range(max((len(jobs) for jobs in lists), default=0)):
        order += [jobs[i] for jobs in lists if i < len(jobs)]
    return order


def _jobs_per_combination(variants: Sequence[Variant], memory_bytes: int,
                          seed: int) -> list[list[Job]]:
    """Each variant's calibration jobs, drawing each kernel's configurations once."""
    pools: dict[str, tuple[list[Config], list[Config]]] = {}
    per_combination = []
    for variant in variants:
        if variant.kernel not in pools:
            pools[variant.kernel] = configurations(variant.kernel, seed=seed)
        per_combination.append(combination_jobs(variant, *pools[variant.kernel], memory_bytes))
    return per_combination


def calibration_plan(variants: Sequence[Variant], memory_bytes: int,
                     seed: int = SEED) -> list[Job]:
    """Every job of a full calibration of these variants, interleaved."""
    return interleave(_jobs_per_combination(variants, memory_bytes, seed))


NOISE_SHARE = 4
"""The noise passes re-measure every `NOISE_SHARE`-th test configuration of each
combination (at least two): each combination gets its own noise floor."""


def noise_size(variant: Variant) -> int:
    """How many of the combination's test configurations the noise passes repeat."""
    return max(2, plan_size(variant).test // NOISE_SHARE)


def noise_plan(variants: Sequence[Variant], memory_bytes: int,
               seed: int = SEED) -> tuple[list[Job], list[Job]]:
    """The noise floor's two passes: the same configurations, measured twice.

    For every combination the sample is spread evenly over the test
    configurations it is calibrated on, so that its noise floor is measured
    where its held-out error is; each pass is interleaved like calibration.
    """
    per_combination = []
    for variant, jobs in zip(variants, _jobs_per_combination(variants, memory_bytes, seed),
                             strict=True):
        tests = [j.config for j in jobs if j.split == "test"]
        wanted = min(noise_size(variant), len(tests))
        picks = [tests[i * len(tests) // wanted] for i in range(wanted)] if wanted else []
        per_combination.append([Job(variant, c, "noise", 1) for c in picks])
    first = interleave(per_combination)
    return first, [Job(j.variant, j.config, "noise", 2) for j in first]


def _square(n: int) -> Shapes:
    return ((n, n), (n, n))


_ELEMENTWISE_QUICK: list[tuple[Shapes, str]]
_BINARY_QUICK: list[tuple[Shapes, str]]
_ELEMENTWISE_QUICK = [(((384, 384),), "float32"), (((1200,),), "float64"),
                      (((1536, 1536),), "float32"), (((768, 768),), "float64"),
                      (((2_000_000,),), "float64")]
_BINARY_QUICK = [(((384, 384), (384, 384)), "float32"), (((), (1200,)), "float64"),
                 (((1536, 1536), (1536, 1536)), "float32"), (((), (768, 768)), "float32"),
                 (((1200,), (1200,)), "float32"), (((768, 768), (768, 768)), "float64"),
                 (((), ()), "float64"), (((2_000_000,), (2_000_000,)), "float64")]

QUICK_SHAPES: dict[str, list[tuple[Shapes, str]]] = {
    "matmul": [(_square(384), "float32"), (((300, 1200), (1200, 300)), "float64"),
               (_square(1536), "float32"), (_square(768), "float64"),
               (((1200, 300), (300, 1200)), "float32"), (_square(96), "float64")],
    "matvec": [(((640, 640), (640,)), "float64"), (((300, 4000), (4000,)), "float32"),
               (((1800, 1800), (1800,)), "float32"), (((4000, 300), (300,)), "float64"),
               (((200, 200), (200,)), "float32")],
    "conv2d": [(((384, 384), (3, 3)), "float32"), (((768, 768), (5, 5)), "float64"),
               (((1536, 1536), (3, 3)), "float32"), (((640, 640), (13, 13)), "float64"),
               (((768, 768), (27, 27)), "float32"), (((128, 128), (7, 7)), "float64")],
    "transpose": [(((768, 768),), "float64"), (((300, 3000),), "float32"),
                  (((1536, 1536),), "float32")],
    "dot": [(((700,), (700,)), "float64"), (((2_000_000,), (2_000_000,)), "float32"),
            (((6000,), (6000,)), "float32")],
    **{k: _ELEMENTWISE_QUICK for k, s in KERNELS.items() if s.any_shape and s.arity == 1},
    **{k: _BINARY_QUICK for k, s in KERNELS.items() if s.any_shape and s.arity == 2},
}
"""What `calibrate --quick` measures: per kernel, shapes as physics workloads have them
(square matrices and images from small to large, skinny and wide products, tall and
wide matrix–vector products, 3x3 to 27x27 stencils, vectors of a thousand elements
to 2.4M-element fields, a scalar on either side or both), in both dtypes, the most
common first. Not the examples' sizes: adaptation is judged on those."""


def quick_configurations(kernel: str) -> list[Config]:
    return [Config(kernel, shapes, dtype) for shapes, dtype in QUICK_SHAPES[kernel]]
