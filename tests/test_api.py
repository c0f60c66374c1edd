"""The Python API of DESIGN.md: what `import annc` offers, and programs run from text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import annc
from annc.history import recent_programs

HEAT = (Path(__file__).resolve().parent.parent / "examples" / "heat.ann").read_text()
SMALL = {"N": 8, "STEPS": 3}


def test_dir_shows_the_public_api_and_no_helpers() -> None:
    import annc.cli  # binds the submodule `cli` on the package

    public = [name for name in dir(annc) if not name.startswith("_")]
    assert public == sorted(annc.__all__)
    assert "__version__" in dir(annc)
    assert all(getattr(annc, name) is not None for name in annc.__all__)


def test_program_text_runs_as_its_file_does(tmp_path: Path) -> None:
    path = tmp_path / "heat.ann"
    path.write_text(HEAT)
    from_file = annc.run_file(path, params=SMALL, seed=3, builds="never")
    from_text = annc.run_source(HEAT, filename="plate.ann", params=SMALL, seed=3,
                                builds="never")
    assert from_text.outputs.keys() == from_file.outputs.keys()
    for name, value in from_file.outputs.items():
        np.testing.assert_allclose(from_text.outputs[name], value, rtol=1e-6)
    assert from_text.report.keys() == from_file.report.keys()
    assert {op["loc"].split(":")[0] for op in from_text.report["ops"]} == {"plate.ann"}
    assert recent_programs()[0].filename == "plate.ann"  # for `calibrate --quick`


def test_program_text_with_an_error_is_a_located_compile_error() -> None:
    with pytest.raises(annc.CompileError) as raised:
        annc.run_source("input x : f64[4]\ny = x ** 2\noutput y\n", filename="p.ann")
    assert (raised.value.filename, raised.value.line, raised.value.column) == ("p.ann", 2, 8)
    assert "no power operator" in raised.value.message
