"""The prepared GPU run (`scripts/gpu_run.sh`): where no GPU is seen it stops within
seconds, with one clear line and exit status 3, before installing or measuring anything.
The full pipeline is rehearsed by hand on another device (see the script's header)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu_run.sh"


def _run(out: Path, path: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "OUT": str(out), "PATH": path}
    for name in ("GPU_RUN_REHEARSAL", "GPU_RUN_KERNELS"):
        env.pop(name, None)
    start = time.monotonic()
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)
    return done, time.monotonic() - start


def _stopped_for_want_of_a_gpu(done: subprocess.CompletedProcess[str], seconds: float,
                               out: Path) -> None:
    assert done.returncode == 3, done.stderr
    assert "no GPU seen" in done.stderr
    assert seconds < 10
    assert "no GPU seen" in (out / "summary.txt").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["summary.txt"]


def test_without_nvidia_smi_the_run_stops_at_once(tmp_path: Path) -> None:
    if shutil.which("nvidia-smi"):
        pytest.skip("nvidia-smi is installed here")
    done, seconds = _run(tmp_path / "out", os.environ["PATH"])
    _stopped_for_want_of_a_gpu(done, seconds, tmp_path / "out")
    assert "nvidia-smi is not installed" in done.stderr


def test_when_nvidia_smi_lists_no_gpu_the_run_stops_at_once(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'No devices were found'\nexit 6\n")
    fake.chmod(0o755)
    done, seconds = _run(tmp_path / "out", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    _stopped_for_want_of_a_gpu(done, seconds, tmp_path / "out")
    assert "No devices were found" in done.stderr


@pytest.mark.parametrize("script", ["gpu_run.sh", "gpu_wheels.sh"])
def test_the_scripts_parse(script: str) -> None:
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / script)], check=True, timeout=30)


def test_placement_takes_cpu_and_one_device_that_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # its shared helper, harness.py
    spec = importlib.util.spec_from_file_location("placement", ROOT / "benchmarks" /
                                                  "placement.py")
    assert spec is not None and spec.loader is not None
    placement = importlib.util.module_from_spec(spec)
    sys.modules["placement"] = placement
    try:
        spec.loader.exec_module(placement)
        assert placement.ways("gpu") == {"annc": ["cpu", "gpu"], "all cpu": ["cpu"],
                                         "all gpu": ["gpu"]}
        for wrong in ("gpu", "cpu", "cpu,gpu,opencl", "cpu,tpu"):
            with pytest.raises(SystemExit):
                placement.second_device(wrong)
    finally:
        del sys.modules["placement"]
