"""One spelling of a dtype: every conversion round-trips, and nothing else is a dtype."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import Float32Type, Float64Type, IntegerType, TensorType

from annc.dsl import dtypes


@pytest.mark.parametrize("dtype", dtypes.DTYPES)
def test_every_conversion_round_trips(dtype: dtypes.Dtype) -> None:
    assert dtypes.normalise(dtypes.stored_name(dtype)) == dtype
    assert dtypes.from_numpy(dtypes.to_numpy(dtype)) == dtype
    assert dtypes.from_element_type(dtypes.element_type(dtype)) == dtype
    assert dtypes.of_tensor(TensorType(dtypes.element_type(dtype), [2])) == dtype
    assert dtypes.itemsize(dtype) == dtypes.to_numpy(dtype).itemsize


def test_the_spellings_meet() -> None:
    assert dtypes.to_numpy("float32") == np.float32
    assert dtypes.stored_name("f64") == "float64"
    assert isinstance(dtypes.element_type("float32"), Float32Type)
    assert isinstance(dtypes.element_type("f64"), Float64Type)


def test_other_dtypes_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown dtype 'i32'"):
        dtypes.normalise("i32")
    with pytest.raises(ValueError, match="f32 or f64"):
        dtypes.from_element_type(IntegerType(32))
    with pytest.raises(ValueError, match="unknown dtype 'int64'"):
        dtypes.from_numpy(np.int64)
