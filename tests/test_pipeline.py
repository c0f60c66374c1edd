"""One pipeline: the compiled program comes back with the plan it was selected with, and
a forced variant (`--variant`) is a rewrite of the IR, so what is printed is what runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp

import annc
from annc.compiler import compile_program
from annc.dsl.dialect import KernelOp
from annc.passes.overrides import OverrideVariants, parse_overrides

PROGRAM = """
input A : f64[8, 8]
B = matmul(A, A) + A
output B
"""


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))


def _kernel_ops(module: ModuleOp) -> list[KernelOp]:
    return [op for op in module.walk() if isinstance(op, KernelOp)]


def test_the_selected_stage_holds_the_module_and_the_plan_it_applied() -> None:
    compiled = compile_program(PROGRAM, "p.ann", emit="selected", measure="never",
                               record=False)
    ops = _kernel_ops(compiled.ir)
    assert [op.kernel_name() for op in ops] == ["matmul", "add"]
    for op, planned in zip(ops, compiled.selection.ops, strict=True):
        assert planned.chosen is not None and op.variant is not None
        assert (op.variant.data, op.device.data) == (planned.chosen.variant,
                                                     planned.chosen.device)
    assert compiled.notes[-1].startswith("note: variants chosen with ")
    assert "kernel.matmul" in compiled.printed()


def test_the_earlier_stages_have_no_plan() -> None:
    ast_stage = compile_program(PROGRAM, emit="ast")
    assert ast_stage.module is None and ast_stage.plan is None and ast_stage.notes == []
    with pytest.raises(annc.AnncError, match="compiled to the ast stage"):
        _ = ast_stage.ir
    ir_stage = compile_program(PROGRAM, emit="ir")
    assert ir_stage.plan is None and "variant" not in ir_stage.printed()


def test_a_forced_variant_is_written_into_the_ir() -> None:
    compiled = compile_program(PROGRAM, emit="selected", measure="never", record=False,
                               variants={"matmul": "numpy.reference"})
    matmul, add = _kernel_ops(compiled.ir)
    assert matmul.variant is not None and matmul.variant.data == "numpy.reference"
    assert matmul.device is not None and matmul.device.data == "cpu"
    planned = next(c for c in compiled.selection.ops[0].candidates
                   if (c.variant, c.device) == ("numpy.reference", "cpu"))
    if planned.predicted_s is None:
        assert matmul.predicted_s is None
    else:
        assert matmul.predicted_s is not None
        assert matmul.predicted_s.value.data == pytest.approx(planned.predicted_s)
    assert add.variant is not None and add.variant.data == compiled.selection.ops[1].chosen.variant


def test_the_run_reports_the_variant_the_ir_names() -> None:
    a = np.random.default_rng(0).random((8, 8))
    result = annc.run_module(compile_program(PROGRAM, emit="ir").ir, {"A": a},
                             variants={"matmul": "numpy", "add": "numpy.reference"})
    assert [op["variant"] for op in result.report["ops"]] == ["numpy", "numpy.reference"]
    np.testing.assert_allclose(result.outputs["B"], a @ a + a)


def test_an_unknown_forced_variant_is_a_run_error_naming_the_known_ones() -> None:
    with pytest.raises(annc.RunError, match="matmul has no variant 'fast'; its variants are"):
        compile_program(PROGRAM, emit="selected", measure="never", record=False,
                        variants={"matmul": "fast"})


def test_the_override_pass_parses_its_option() -> None:
    assert parse_overrides("matmul=numpy, add=halide") == {"matmul": "numpy", "add": "halide"}
    with pytest.raises(ValueError, match="expected KERNEL=NAME"):
        parse_overrides("matmul")
    module = compile_program(PROGRAM, emit="ir").ir
    OverrideVariants(variants="add=numpy").apply(Context(), module)
    assert [op.variant.data if op.variant else None for op in _kernel_ops(module)] == [
        None, "numpy"]


def test_xdsl_opt_runs_both_passes_on_annc_ir(tmp_path: Path) -> None:
    source = tmp_path / "p.mlir"
    source.write_text(str(compile_program(PROGRAM, emit="ir").ir))
    done = subprocess.run(
        [sys.executable, "-c", "from xdsl.tools.xdsl_opt import main; main()", str(source),
         "-p", 'select-variants{measure="never"},override-variants{variants="add=numpy"}'],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert 'variant = "numpy"' in done.stdout


def test_run_json_reports_the_forced_variant(tmp_path: Path) -> None:
    program = tmp_path / "p.ann"
    program.write_text(PROGRAM)
    done = subprocess.run(
        [sys.executable, "-m", "annc", "run", str(program), "--report", "json", "--measure",
         "never", "--no-record", "--variant", "add=numpy"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ops"][1]["variant"] == "numpy"
