"""`benchmarks/regions.py`: its three implementations of every workload (annc, whole-program
`jax.jit`, numpy + scipy) compute the same outputs from the same inputs, on tiny sizes and
untimed; and the script itself runs end to end on one tiny workload."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import regions  # noqa: E402


@pytest.mark.parametrize("name", list(regions.WORKLOADS))
def test_implementations_agree(name: str) -> None:
    errors = regions.agreement(name)
    assert errors["annc"] <= errors["tolerance"], errors
    assert errors["jax.jit"] <= errors["tolerance"], errors


def test_every_workload_runs_its_example_with_its_params() -> None:
    for workload in regions.WORKLOADS.values():
        text = workload.example.read_text()
        for params in (workload.params, workload.small):
            for name in params:
                assert f"param {name} =" in text, (workload.name, name)


def test_the_script_writes_its_tables(tmp_path: Path) -> None:
    out = tmp_path / "regions.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "regions.py"), "--small", "--repeats", "1",
         "--workloads", "gram_matrix", "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**regions.environment("cpu")})
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "| gram_matrix | S=64, P=32 |" in text and "**geomean**" in text
    results = json.loads(out.with_suffix(".json").read_text())
    (case,) = results["cases"]
    assert case["agree"] and results["machine"]["id"]
    assert case["annc"]["execute_s"]["median"] > 0
