"""A back end's start: measured in fresh interpreters, known to be paid once per process."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from annc.hardware.devices import backend_start
from annc.hardware.variants import get_variant, load_library
from annc.hardware.variants.compiled import compiled


def test_jax_counts_as_started_once_imported(monkeypatch):
    import jax  # noqa: F401

    assert backend_start.started("jax")
    monkeypatch.delitem(sys.modules, "jax")  # put back after the test
    assert not backend_start.started("jax")


@pytest.mark.skipif(importlib.util.find_spec("halide") is None, reason="Halide not installed")
def test_halide_counts_as_started_after_its_first_compile(monkeypatch):
    monkeypatch.setattr(backend_start, "_STARTED", set())
    assert not backend_start.started("halide")
    load_library()
    # a shape no other test builds, so that it is compiled here, not loaded from a cache
    compiled(get_variant("neg", "halide", "cpu"), ((13, 29, 3),), np.float32)
    assert backend_start.started("halide")


def test_the_starts_are_measured_in_fresh_interpreters():
    jax = backend_start.start_seconds("jax", runs=1)
    assert 0.01 < jax < 30  # importing JAX takes time, in any interpreter
    if importlib.util.find_spec("halide") is not None:
        assert 0 < backend_start.start_seconds("halide", runs=1) < 30
