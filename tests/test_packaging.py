"""annc installs as one package: `dsl/`, `hardware/`, `passes/` and `predictor/` stay at
the top of the repository but install as `annc.dsl`, `annc.hardware`, ... (the links
`annc/dsl` -> `../dsl` and so on), so nothing but `annc` lands in site-packages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("dsl", "hardware", "passes", "predictor")


def test_each_folder_is_linked_into_the_package() -> None:
    for folder in FOLDERS:
        link = ROOT / "annc" / folder
        assert link.is_symlink() and link.resolve() == (ROOT / folder).resolve(), folder


def test_the_wheel_holds_only_annc_and_runs_from_where_it_is_installed(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True, text=True)
    (wheel,) = wheels.glob("annc-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"annc", wheel.name.split("-")[0] + "-"
                                                      + wheel.name.split("-")[1] + ".dist-info"}
    for data in ("annc/dsl/grammar.lark", "annc/predictor/data/default_models.json"):
        assert data in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, text=True)
    program = ("import sys; sys.path.insert(0, sys.argv[1]); import annc.dsl.kernels, "
               "annc.passes.fusion, annc.predictor.models, annc.hardware.variants; "
               "import annc; assert annc.__file__.startswith(sys.argv[1]), annc.__file__; "
               "[__import__(name) for name in ('dsl', 'hardware', 'passes', 'predictor')]")
    answer = subprocess.run([sys.executable, "-I", "-c", program, str(target)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert "No module named 'dsl'" in answer.stderr, answer.stderr
