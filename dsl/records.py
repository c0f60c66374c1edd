"""What a cost model is asked, and the combination it is asked about.

A *combination* is one implementation of one kernel (or region) on one device: the
unit a performance model is trained for. A *query* is one configuration of it: the
kernel's operand shapes and dtype, with the variant's mathematical complexity (the
augmentation) and the decisions it makes per shape (its traits). Both are plain
values of the ground floor, beside the kernel table, so that every floor above (the
variants that make queries, the timing harness, the store, the predictor, the
passes) speaks of them in one vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from annc.dsl.kernels import Shapes


class Combination(NamedTuple):
    """One kernel (or `region.<class>`, `loop.<class>`) by one variant on one device.

    A tuple, so that it sorts and keys a dict as `(kernel, variant, device)` does."""

    kernel: str
    variant: str
    device: str


@dataclass(frozen=True)
class Query:
    """One configuration of a kernel–variant–device combination, as a model is asked it."""

    kernel: str
    shapes: Shapes
    dtype: str
    complexity: float
    traits: tuple[tuple[str, float], ...] = ()
    """What the variant decided for these shapes, by name (`("fused", 1.0)`): see
    `hardware.variants.halide.schedule_traits`. Empty for most variants."""
