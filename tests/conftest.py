"""Every test starts from the same state: a session-wide `$ANNC_HOME` of its own, and
recording off, so no test learns from another's runs. Tests of recording turn it on
(`monkeypatch.delenv("ANNC_NO_RECORD")`) in a home of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("annc-home")


@pytest.fixture(autouse=True)
def isolated_state(session_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ANNC_HOME", str(session_home))
    monkeypatch.setenv("ANNC_NO_RECORD", "1")
    yield
