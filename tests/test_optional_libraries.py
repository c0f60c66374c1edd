"""annc without Halide, as on the lent GPU machines (its wheel is too large to travel):
the Halide variant modules are skipped with a note, the OpenCL device (whose copies go
through Halide) is not offered, and the tests still collect.

Halide's absence is simulated in a fresh interpreter by `sys.modules["halide"] = None`,
which makes `import halide` fail exactly as it does where the package is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK_HALIDE = "import sys; sys.modules['halide'] = None\n"


def _without_halide(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ANNC_HOME": str(tmp_path / "home")}
    return subprocess.run([sys.executable, "-c", BLOCK_HALIDE + code], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


def test_the_library_loads_without_halide_and_says_what_it_skipped(tmp_path: Path) -> None:
    code = (
        "import json\n"
        "from hardware.devices.available import available_devices\n"
        "from hardware.variants import all_variants, load_library, skipped_modules\n"
        "load_library(); load_library()\n"
        "print(json.dumps({'backends': sorted({v.backend for v in all_variants()}),\n"
        "                  'skipped': skipped_modules(), 'devices': list(available_devices())}))\n"
    )
    out = _without_halide(code, tmp_path)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert "halide" not in found["backends"] and "numpy" in found["backends"]
    assert found["skipped"] == {"annc.hardware.variants.halide.cpu": "halide",
                                "annc.hardware.variants.halide.opencl": "halide"}
    assert "opencl" not in found["devices"]


def test_annc_variants_notes_the_missing_library(tmp_path: Path) -> None:
    code = ("import runpy; sys.argv = ['annc', 'variants', '--kernels', 'add', "
            "'--report', 'json']\nrunpy.run_module('annc', run_name='__main__')\n")
    out = _without_halide(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert ("note: halide is not installed: the variants of "
            "annc.hardware.variants.halide.cpu") in out.stderr
    names = {row["variant"] for row in json.loads(out.stdout)["variants"]}
    assert names == {"numpy.reference", "numpy", "jax"}


def test_the_gpu_tests_collect_without_halide(tmp_path: Path) -> None:
    code = ("import pytest\nsys.exit(pytest.main(['--collect-only', '-q', '-m', 'gpu', "
            "'-p', 'no:cacheprovider', 'tests']))\n")
    out = _without_halide(code, tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "error" not in out.stdout.lower()


def test_without_halide_no_halide_region_is_cached(tmp_path: Path) -> None:
    code = ("from hardware.variants.regions import catalogue\n"
            "from hardware.variants.regions.spec import RegionOp, RegionSpec\n"
            "spec = RegionSpec(((4,), (4,)), 'f32', (RegionOp('add', (0, 1)),), (2,))\n"
            "print([catalogue.cached(spec, v.name) for v in catalogue.VARIANTS])\n")
    out = _without_halide(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[False, False, False, False]"
