"""Every test starts from the same state: a session-wide `$ANNC_HOME` of its own,
recording off, so no test learns from another's runs, and runs that wait for the
builds they start beside them, so that no helper process outlives its test. Tests
of recording turn it on (`monkeypatch.delenv("ANNC_NO_RECORD")`) in a home of their
own.

Test modules that need an optional library this machine lacks are not collected: the
GPU machines lent to the project run without Halide (its wheel is too large to travel
there), so `pytest -m gpu` must collect without it."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from entry_points import install_entry_point


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ValueError:  # a module without a spec, e.g. one blocked in sys.modules
        return False


collect_ignore = [] if _installed("halide") else ["test_halide.py"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/ from the current output instead of "
                     "comparing with it")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """Whether this run rewrites the golden files (`pytest --update-golden`)."""
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("annc-home")


@pytest.fixture(autouse=True)
def isolated_state(session_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ANNC_HOME", str(session_home))
    monkeypatch.setenv("ANNC_NO_RECORD", "1")
    monkeypatch.setenv("ANNC_WAIT_FOR_BUILDS", "1")
    yield


@pytest.fixture
def misbehaving_variants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tests/calibration_variants.py` installed as a variant plugin for one test: variants
    that fail, crash or hang on purpose, in this process and the measuring worker's."""
    site = install_entry_point(tmp_path / "site", "annc-test-variants",
                               "calibration_variants:variants")
    monkeypatch.syspath_prepend(str(site))
