"""One spelling of a dtype, and every conversion from and to it.

annc spells a dtype as the language does: `"f32"` or `"f64"`. Around it are numpy's
dtypes, xDSL's element types (`Float32Type`, `Float64Type`), and the names the
measurement store and sampling plan have always written (`"float32"`, numpy's names,
kept so that existing databases and reference data read unchanged). Code converts
with the functions here and nowhere else.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from xdsl.dialects.builtin import Float32Type, Float64Type, TensorType
from xdsl.ir import Attribute

Dtype = Literal["f32", "f64"]
DTYPES: tuple[Dtype, ...] = ("f32", "f64")
"""Every dtype of the language, narrowest first."""

_STORED = {"f32": "float32", "f64": "float64"}


def normalise(name: str) -> Dtype:
    """`"f32"` or `"f64"` from either spelling (`"float32"` too); a ValueError otherwise."""
    if name in ("f32", "float32"):
        return "f32"
    if name in ("f64", "float64"):
        return "f64"
    raise ValueError(f"unknown dtype {name!r}; dtypes are {', '.join(DTYPES)}")


def stored_name(name: str) -> str:
    """The store's and the sampling plan's spelling, `"float32"`, of either spelling."""
    return _STORED[normalise(name)]


def to_numpy(name: str) -> np.dtype:
    """numpy's dtype of either spelling."""
    return np.dtype(stored_name(name))


def from_numpy(dtype: np.dtype | type) -> Dtype:
    """The dtype of a numpy dtype (or scalar type): float32 or float64 only."""
    return normalise(np.dtype(dtype).name)


def itemsize(name: str) -> int:
    """Bytes per element."""
    return 4 if normalise(name) == "f32" else 8


def element_type(name: str) -> Float32Type | Float64Type:
    """xDSL's element type of a dtype."""
    return Float32Type() if normalise(name) == "f32" else Float64Type()


def from_element_type(element: Attribute) -> Dtype:
    """The dtype of an xDSL element type; a ValueError for any but f32 and f64."""
    if isinstance(element, Float32Type):
        return "f32"
    if isinstance(element, Float64Type):
        return "f64"
    raise ValueError(f"annc tensors are f32 or f64, not {element}")


def of_tensor(type_: Attribute) -> Dtype:
    """The dtype of an xDSL tensor type's elements."""
    if not isinstance(type_, TensorType):
        raise ValueError(f"expected a tensor type, got {type_}")
    return from_element_type(type_.element_type)
