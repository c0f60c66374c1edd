"""Golden files of printed IR: `annc compile --emit ir`, `fused` and `selected` of two
examples, compared as text so that a change of the IR is reviewed as a diff.

Selection runs in a fresh `$ANNC_HOME` with the shipped models, `--measure never` and
`--target cpu`, so its choices are the same on every machine with the same variant
library; predicted times (`predicted_s` and its interval) are masked, since the last
digits of a float32 network may differ between CPUs. After an intended change,
rewrite the files with `pytest tests/test_golden.py --update-golden` and review the
diff."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
EXAMPLES = ("heat", "gram_matrix")
STAGES = ("ir", "fused", "selected")
PREDICTED = re.compile(r"(predicted(?:_low|_high)?_s = )[-+0-9.eE]+( : f64)?")


def masked(text: str) -> str:
    """The IR with every predicted time replaced by `<predicted>`."""
    return PREDICTED.sub(r"\1<predicted>", text)


def compiled(example: str, stage: str, home: Path) -> str:
    env = {**os.environ, "ANNC_HOME": str(home), "ANNC_NO_RECORD": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "annc", "compile", f"examples/{example}.ann", "--emit", stage,
         "--target", "cpu", "--measure", "never", "--no-record"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    return masked(done.stdout)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("example", EXAMPLES)
def test_printed_ir_matches_its_golden_file(example: str, stage: str, tmp_path: Path,
                                            update_golden: bool) -> None:
    golden = GOLDEN / f"{example}.{stage}.mlir"
    text = compiled(example, stage, tmp_path / "home")
    if update_golden:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no {golden.name}; create it with pytest --update-golden"
    assert text == golden.read_text(), (
        f"{golden.name} differs; if the change is intended, run "
        "`pytest tests/test_golden.py --update-golden` and review the diff")


def test_masking_keeps_variants_and_devices() -> None:
    line = ('%0 = kernel.sum %1 {kernel.variant = "numpy", kernel.device = "cpu", '
            'kernel.predicted_s = 1.25e-05 : f64, kernel.predicted_low_s = 1.0e-05 : f64}')
    assert masked(line) == ('%0 = kernel.sum %1 {kernel.variant = "numpy", '
                            'kernel.device = "cpu", kernel.predicted_s = <predicted>, '
                            'kernel.predicted_low_s = <predicted>}')
