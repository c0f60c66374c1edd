"""IR fed back in at every stage, the user's passes (`--passes`), `cse` on located ops,
the selection attributes' checks and a variant pin that selection keeps."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_ir import xdsl_opt
from xdsl.dialects.builtin import StringAttr

import annc
from annc.compiler import compile_program
from annc.dsl import dialect

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = """\
param N = 16
input T : f32[N, N]
input alpha : f32
const L : f32[3, 3] = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
repeat 3 {
  T = T + alpha * conv2d(T, L)
}
E = sum(T * T)
output T, E
"""
INPUTS = {"T": np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16),
          "alpha": np.float32(0.1)}


def cli(*args: str, home: Path, extra_path: str = "") -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (extra_path, str(ROOT)) if p)
    env = {**os.environ, "ANNC_HOME": str(home), "ANNC_NO_RECORD": "1", "PYTHONPATH": path}
    return subprocess.run([sys.executable, "-m", "annc", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("stage", ["ir", "fused", "selected"])
def test_ir_at_every_stage_runs_as_the_program_does(stage: str, tmp_path: Path) -> None:
    printed = compile_program(PROGRAM, "heat.ann", emit=stage, measure="never",
                              record=False).printed()
    want = annc.run_source(PROGRAM, "heat.ann", inputs=INPUTS, measure="never", record=False)
    got = annc.run_source(printed, f"heat.{stage}.mlir", inputs=INPUTS, measure="never",
                          record=False)
    for name in ("T", "E"):
        np.testing.assert_allclose(got.outputs[name], want.outputs[name], rtol=1e-5)
    assert {op["kernel"] for op in got.report["ops"]} <= {"conv2d", "mul", "add", "sum"}


def test_selected_ir_runs_its_selection_as_written(tmp_path: Path) -> None:
    compiled = compile_program(PROGRAM, "heat.ann", emit="selected", measure="never",
                               record=False, variants={"conv2d": "numpy.reference"})
    again = compile_program(str(compiled.ir), "heat.selected.mlir", emit="selected")
    assert again.plan is None  # nothing selected again
    assert str(again.ir) == str(compiled.ir)
    result = annc.run_source(str(compiled.ir), "heat.selected.mlir", inputs=INPUTS)
    assert {op["variant"] for op in result.report["ops"] if op["kernel"] == "conv2d"} == {
        "numpy.reference"}


def test_ir_is_known_by_its_content_whatever_the_file_is_called(tmp_path: Path) -> None:
    path = tmp_path / "heat.txt"
    path.write_text("// lowered by annc\n" + compile_program(PROGRAM, "heat.ann",
                                                             emit="ir").printed())
    done = cli("compile", str(path), "--emit", "fused", home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert "kernel.region" in done.stdout


def test_parse_ir_and_run_module_run_ir_without_a_context_of_ones_own() -> None:
    text = compile_program(PROGRAM, "heat.ann", emit="selected", measure="never",
                           record=False).printed()
    result = annc.run_module(annc.parse_ir(text, "heat.mlir"), INPUTS)
    want = annc.run_source(PROGRAM, "heat.ann", inputs=INPUTS, measure="never", record=False)
    np.testing.assert_allclose(result.outputs["E"], want.outputs["E"], rtol=1e-5)


@pytest.mark.parametrize(("change", "message"), [
    (('kernel.variant = "numpy"', 'kernel.variant = "no.such.variant"'),
     "kernel.variant 'no.such.variant' is no variant of"),
    (('kernel.device = "cpu"', 'kernel.device = "tpu9"'), "unknown device 'tpu9'"),
    (('kernel.variant = "ops"', 'kernel.variant = "warp-drive"'),
     "kernel.variant 'warp-drive' is no region variant"),
])
def test_unknown_names_in_the_ir_are_located_errors(change: tuple[str, str], message: str,
                                                    tmp_path: Path) -> None:
    text = compile_program(PROGRAM, "heat.ann", emit="selected", measure="never",
                           record=False).printed()
    assert change[0] in text
    path = tmp_path / "bad.mlir"
    path.write_text(text.replace(change[0], change[1], 1))
    done = cli("run", str(path), home=tmp_path / "home")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    line = text.replace(change[0], change[1], 1)[:text.index(change[0])].count("\n") + 1
    assert re.search(rf"bad\.mlir:{line}:\d+: error: .*{re.escape(message)}", done.stderr), \
        done.stderr


def test_ir_that_does_not_parse_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.mlir"
    path.write_text("builtin.module {\n  %x = kernel.add 1 2\n}\n")
    done = cli("run", str(path), home=tmp_path / "home")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "bad.mlir:2:19: error: this is not valid annc IR" in done.stderr


def test_xdsl_opt_verify_selection_rejects_an_unknown_variant(tmp_path: Path) -> None:
    text = compile_program(PROGRAM, "heat.ann", emit="selected", measure="never",
                           record=False).printed()
    path = tmp_path / "bad.mlir"
    path.write_text(text.replace('kernel.variant = "numpy"', 'kernel.variant = "nope"', 1))
    done = subprocess.run([xdsl_opt(), str(path), "-p", "verify-selection"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "'nope' is no variant" in done.stdout + done.stderr
    path.write_text(text)
    done = subprocess.run([xdsl_opt(), str(path), "-p", "verify-selection"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


DUPLICATES = """\
input A : f64[64, 64]
input v : f64[64]
y = matvec(A, v)
z = matvec(A, v)
s = dot(y, z)
output s
"""


def test_cse_merges_two_identical_ops_from_different_lines() -> None:
    module = compile_program(DUPLICATES, "d.ann", emit="ir").ir
    matvecs = [op for op in module.walk() if isinstance(op, dialect.MatvecOp)]
    assert [dialect.where(op) for op in matvecs] == ["d.ann:3:5", "d.ann:4:5"]
    compiled = compile_program(DUPLICATES, "d.ann", emit="fused", passes="cse")
    assert len([op for op in compiled.ir.walk() if isinstance(op, dialect.MatvecOp)]) == 1
    a = np.arange(64 * 64, dtype=np.float64).reshape(64, 64) / 4096
    v = np.linspace(-1, 1, 64)
    got = annc.run_source(DUPLICATES, "d.ann", inputs={"A": a, "v": v}, measure="never",
                          record=False, passes="cse")
    np.testing.assert_allclose(got.outputs["s"], (a @ v) @ (a @ v), rtol=1e-12)
    assert [op["kernel"] for op in got.report["ops"]].count("matvec") == 1


def test_a_pass_that_does_not_exist_is_a_plain_error(tmp_path: Path) -> None:
    done = cli("compile", "examples/heat.ann", "--passes", "cse,no-such-pass",
               home=tmp_path / "home")
    assert done.returncode == 1
    assert "no-such-pass" in done.stderr and "Traceback" not in done.stderr


def test_a_variant_set_by_hand_is_a_pin_that_selection_keeps() -> None:
    text = "input A : f64[64, 64]\nB = matmul(A, A)\noutput B\n"
    module = compile_program(text, "m.ann", emit="ir").ir
    matmul = next(op for op in module.walk() if isinstance(op, dialect.MatmulOp))
    matmul.pin_variant = StringAttr("numpy.reference")
    compiled = compile_program(str(module), "m.mlir", emit="selected", measure="never",
                               record=False)
    matmul = next(op for op in compiled.ir.walk() if isinstance(op, dialect.MatmulOp))
    assert matmul.variant == StringAttr("numpy.reference")
    assert matmul.pin_variant == StringAttr("numpy.reference")
    planned = compiled.selection.ops[0]
    assert {c.variant for c in planned.candidates} == {"numpy.reference"}


def test_a_variant_override_is_a_pin_in_the_ir() -> None:
    compiled = compile_program("input A : f64[8, 8]\nB = matmul(A, A)\noutput B\n", "m.ann",
                               measure="never", record=False,
                               variants={"matmul": "numpy.reference"})
    assert 'kernel.pin_variant = "numpy.reference"' in compiled.printed()
    assert 'kernel.variant = "numpy.reference"' in compiled.printed()


def test_print_debuginfo_shows_every_ops_location(tmp_path: Path) -> None:
    done = cli("compile", "examples/heat.ann", "--emit", "ir", "--print-debuginfo",
               home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if " = kernel." in line]
    assert lines and all('loc("examples/heat.ann":' in line for line in lines)
    reparsed = compile_program(done.stdout, "heat.mlir", emit="ir").ir
    assert all(dialect.where(op).startswith("examples/heat.ann:")
               for op in reparsed.walk() if isinstance(op, dialect.KernelOp))


def _docs_pass() -> str:
    """The example pass of docs/compiler.md, as written there."""
    page = (ROOT / "docs" / "compiler.md").read_text()
    found = re.search(r"```python\n(# annc_example_passes/__init__\.py\n.*?)```", page, re.S)
    assert found, "docs/compiler.md has no example pass"
    return found.group(1)


def test_the_docs_example_pass_is_found_by_annc_and_by_xdsl_opt(tmp_path: Path) -> None:
    site = tmp_path / "site"
    package = site / "annc_example_passes"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(_docs_pass())
    info = site / "annc_example_passes-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: annc-example-passes\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[xdsl.universe]\nannc_example_passes = annc_example_passes:UNIVERSE\n")
    program = tmp_path / "m.ann"
    program.write_text("input A : f64[16, 16]\nB = matmul(A, A) + A\noutput B\n")
    done = cli("run", str(program), "--measure", "never", "--report", "json",
               "--passes", 'pin-kernel{kernel=matmul variant="numpy.reference"}',
               home=tmp_path / "home", extra_path=str(site))
    assert done.returncode == 0, done.stderr
    assert '"kernel": "matmul", "variant": "numpy.reference"' in done.stdout
    lowered = tmp_path / "m.mlir"
    lowered.write_text(compile_program(program.read_text(), "m.ann", emit="ir").printed())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(site), str(ROOT)))}
    done = subprocess.run([xdsl_opt(), str(lowered), "-p", "pin-kernel"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert 'kernel.pin_variant = "numpy"' in done.stdout


def test_pin_variants_is_a_rewrite_pattern_that_makes_its_regions_run_op_by_op() -> None:
    from xdsl.pattern_rewriter import PatternRewriteWalker

    from annc.passes.pins import PinVariants

    compiled = compile_program(PROGRAM, "heat.ann", measure="never", record=False)
    walker = PatternRewriteWalker(PinVariants({"conv2d": "numpy.reference"}),
                                  apply_recursively=False)
    assert walker.rewrite_module(compiled.ir)  # the rewriter saw the change
    conv = next(op for op in compiled.ir.walk() if isinstance(op, dialect.Conv2dOp))
    assert conv.pin_variant == conv.variant == StringAttr("numpy.reference")
    around = conv.parent_op()
    while around is not None and not isinstance(around, dialect.RegionOp):
        around = around.parent_op()
    assert around is not None and around.variant == StringAttr("ops")
    assert around.device is None and around.predicted_s is None


def test_params_and_targets_do_not_apply_to_ir() -> None:
    text = compile_program(PROGRAM, "heat.ann", emit="ir").printed()
    with pytest.raises(annc.AnncError, match="-D and --target apply to programs"):
        compile_program(text, "heat.mlir", params={"N": 8})
    with pytest.raises(annc.AnncError, match="-D and --target apply to programs"):
        compile_program(text, "heat.mlir", targets=["cpu"])
