"""The persistent build cache: a second process loads what the first built; corrupt,
truncated, other-version and other-target entries are rejected and rebuilt, never
loaded; the size bound holds; concurrent processes lose nothing; without a C
compiler the JIT path works and schedules are still cached; and every Halide CPU
variant served from the cache passes the same reference checks as a fresh build.

Each test that looks at the cache's contents uses a home of its own (`home`)."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from annc.hardware import events
from annc.hardware.variants import get_variant, load_library, variants_for
from annc.hardware.variants.check import CHECK_SHAPES, DTYPES, check_variant
from annc.hardware.variants.compiled import clear_cache, compiled
from annc.hardware.variants.halide import build_cache
from annc.hardware.variants.halide.abi import LAYOUT
from annc.hardware.variants.reference import REFERENCE_FUNCTIONS

hl = pytest.importorskip("halide")
load_library()
from annc.hardware.variants.halide import aot as halide_aot  # noqa: E402  (after load_library)
from annc.hardware.variants.halide import cpu as halide_cpu  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
needs_cc = pytest.mark.skipif(halide_aot.c_compiler() is None, reason="no C compiler")

BUILD_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from annc.hardware.variants.halide import build_cache
    from annc.hardware.variants import get_variant, load_library
    from annc.hardware.variants.halide import cpu as halide_cpu
    from annc.hardware.variants.reference import REFERENCE_FUNCTIONS
    load_library()
    rng = np.random.default_rng(0)
    worst = 0.0
    for kernel, name, shapes in json.loads(sys.argv[1]):
        shapes = tuple(tuple(s) for s in shapes)
        built = get_variant(kernel, name).build(shapes, np.dtype(np.float32))
        operands = [rng.random(s).astype(np.float32) for s in shapes]
        expected = REFERENCE_FUNCTIONS[kernel](*[o.astype(np.float64) for o in operands])
        worst = max(worst, float(np.max(np.abs(built(*operands) - expected))))
    from annc.hardware import events
    counts = events.snapshot()
    stats = {k.removeprefix("cache "): n for k, n in counts.items() if k.startswith("cache ")}
    builds = {"aot_built": counts["halide kernel built"],
              "aot_loaded": counts["halide kernel loaded"], "jit": counts["halide kernel jit"]}
    print(json.dumps({"builds": builds, "stats": stats,
                      "notes": halide_cpu.notes, "worst": worst}))
""")

JOBS = [["matmul", "halide.tiled", [[24, 16], [16, 8]]],
        ["sum", "halide", [[7, 9]]],
        ["add", "halide", [[5, 3], [5, 3]]]]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("ANNC_HOME", str(folder))
    return folder


def build_in_process(jobs: list, env: dict[str, str] | None = None) -> dict:
    """Builds the jobs in a fresh Python process; returns what it counted."""
    done = subprocess.run(
        [sys.executable, "-c", BUILD_SCRIPT, json.dumps(jobs)], capture_output=True,
        text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def kernel_entries(home: Path) -> list[Path]:
    return sorted((home / "builds").glob("*.kernel"))


def fresh_build(kernel: str, name: str, shapes: tuple, dtype: type = np.float32):
    return get_variant(kernel, name).build(shapes, np.dtype(dtype))


def matches_reference(built, kernel: str, shapes: tuple, dtype: type = np.float32) -> bool:
    rng = np.random.default_rng(1)
    operands = [rng.random(s).astype(dtype) for s in shapes]
    expected = REFERENCE_FUNCTIONS[kernel](*[o.astype(np.float64) for o in operands])
    return bool(np.allclose(built(*operands), expected, rtol=1e-4, atol=1e-4))


@needs_cc
def test_ctypes_structures_match_the_header_halide_emits(tmp_path: Path) -> None:
    a = hl.ImageParam(hl.Float(32), 1, "A")
    x = hl.Var("x")
    f = hl.Func("annc_layout")
    f[x] = a[x]
    f.compile_to({hl.OutputFileType.c_header: str(tmp_path / "k.h")}, [a], "k",
                 halide_aot.aot_target(hl.get_jit_target_from_environment()))
    checks = []
    for struct, (_, fields) in LAYOUT.items():
        checks.append(f'printf("{struct} size %zu\\n", sizeof(struct {struct}));')
        checks += [f'printf("{struct} {n} %zu\\n", offsetof(struct {struct}, {n}));'
                   for n in fields]
    (tmp_path / "layout.c").write_text(
        '#include <stdio.h>\n#include <stddef.h>\n#include "k.h"\nint main(void) {\n'
        + "\n".join(checks) + "\nreturn 0;\n}\n")
    compiler = halide_aot.c_compiler()
    assert compiler is not None
    subprocess.run([compiler, "-o", str(tmp_path / "layout"), str(tmp_path / "layout.c")],
                   check=True, cwd=tmp_path)
    printed = subprocess.run([str(tmp_path / "layout")], capture_output=True, text=True,
                             check=True).stdout.split("\n")
    expected = []
    for struct, (size, fields) in LAYOUT.items():
        expected.append(f"{struct} size {size}")
        expected += [f"{struct} {n} {offset}" for n, offset in fields.items()]
    assert [line for line in printed if line] == expected
    assert LAYOUT["halide_buffer_t"][0] == 56 and ctypes.sizeof(ctypes.c_void_p) == 8


@needs_cc
def test_a_second_process_loads_instead_of_building(home: Path) -> None:
    first = build_in_process(JOBS)
    second = build_in_process(JOBS)
    assert first["builds"] == {"aot_built": 3, "aot_loaded": 0, "jit": 0}
    assert second["builds"] == {"aot_built": 0, "aot_loaded": 3, "jit": 0}
    assert second["stats"].get("hit:runtime") == 1 and "written" not in second["stats"]
    assert first["worst"] < 1e-3 and second["worst"] < 1e-3
    assert len(kernel_entries(home)) == 3 and len(list((home / "builds").glob("*.runtime"))) == 1


@needs_cc
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_artifact_is_rebuilt_and_never_loaded(home: Path, damage: str) -> None:
    """An entry whose signed header is whole is annc's: damaged, it is removed, rebuilt
    and kept again."""
    shapes = ((9, 7), (7, 5))
    fresh_build("matmul", "halide.tiled", shapes)
    (path,) = kernel_entries(home)
    data = path.read_bytes()
    path.write_bytes({"flip": data[:-100] + bytes([data[-100] ^ 0xFF]) + data[-99:],
                      "truncate": data[: len(data) // 2]}[damage])
    before = events.snapshot()
    rejected = events.snapshot()["cache rejected:kernel"]
    built = fresh_build("matmul", "halide.tiled", shapes)
    assert events.snapshot()["cache rejected:kernel"] == rejected + 1
    assert events.snapshot()["halide kernel built"] == before["halide kernel built"] + 1
    assert not built.cached and matches_reference(built, "matmul", shapes)
    key = halide_cpu.kernel_key("matmul", "halide.tiled", shapes, np.dtype(np.float32))
    assert build_cache.read("kernel", key) is not None  # rebuilt and rewritten, whole
    again = fresh_build("matmul", "halide.tiled", shapes)
    assert again.cached and matches_reference(again, "matmul", shapes)


@needs_cc
@pytest.mark.parametrize("damage", ["empty", "garbage"])
def test_a_file_annc_cannot_prove_it_wrote_is_never_loaded_nor_removed(home: Path,
                                                                       damage: str) -> None:
    """Without annc's signed header, the file is not provably annc's: it stays as it is,
    the kernel is built (and works) without being kept, and a note says so."""
    shapes = ((9, 7), (7, 5))
    fresh_build("matmul", "halide.tiled", shapes)
    (path,) = kernel_entries(home)
    damaged = {"empty": b"", "garbage": b"\x7fELF" + path.read_bytes()[4:]}[damage]
    path.write_bytes(damaged)
    before = events.snapshot()
    untrusted = events.snapshot()["cache untrusted:kernel"]
    built = fresh_build("matmul", "halide.tiled", shapes)
    assert events.snapshot()["cache untrusted:kernel"] >= untrusted + 1
    assert events.snapshot()["halide kernel built"] == before["halide kernel built"] + 1
    assert not built.cached and matches_reference(built, "matmul", shapes)
    assert path.read_bytes() == damaged
    assert any("cannot prove it wrote" in note for note in build_cache.notes)


@needs_cc
def test_a_run_after_corruption_still_matches_numpy(home: Path, tmp_path: Path) -> None:
    import annc

    program = tmp_path / "cache.ann"
    program.write_text("param N = 12\ninput A : f32[N, N]\nB = matmul(A, A) + A\noutput B\n")
    try:
        forced = {"matmul": "halide.tiled", "add": "halide"}
        annc.run_file(program, variants=forced, record=False)
        for path in kernel_entries(home):
            path.write_bytes(path.read_bytes()[:-7] + b"corrupt")
        clear_cache()
        rejected = events.snapshot()["cache rejected:kernel"]
        a = np.random.default_rng(3).random((12, 12)).astype(np.float32)
        result = annc.run_file(program, inputs={"A": a}, variants=forced, record=False)
        assert events.snapshot()["cache rejected:kernel"] == rejected + 2
        np.testing.assert_allclose(result.outputs["B"], a @ a + a, rtol=1e-5)
    finally:
        clear_cache()


@needs_cc
def test_an_entry_of_another_halide_version_or_target_is_ignored(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shapes = ((6, 4), (4, 3))
    fresh_build("matmul", "halide.tiled", shapes)
    (path,) = kernel_entries(home)
    key = halide_cpu.kernel_key("matmul", "halide.tiled", shapes, np.dtype(np.float32))
    payload = build_cache.read("kernel", key)
    assert payload is not None
    for field, other in (("halide", "20.0.0"), ("target", "x86-64-linux-sse41")):
        # A well-formed entry, checksum and all, written for another version or target
        # and found under this key's name, is rejected.
        path.unlink()
        build_cache.write("kernel", {**key, field: other}, payload)
        (written,) = (home / "builds").glob("*.kernel")
        written.rename(path)
        built = events.snapshot()["halide kernel built"]
        assert not fresh_build("matmul", "halide.tiled", shapes).cached
        assert events.snapshot()["halide kernel built"] == built + 1
    # A later Halide version looks under other names, and builds.
    monkeypatch.setattr(halide_aot, "halide_version", lambda: "99.0.0")
    built = events.snapshot()["halide kernel built"]
    assert not fresh_build("matmul", "halide.tiled", shapes).cached
    assert events.snapshot()["halide kernel built"] == built + 1


def test_eviction_keeps_the_bound_and_the_recently_used(home: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(build_cache.LIMIT_ENV, str(50_000 / 2**20))
    keys = [{"n": n} for n in range(12)]
    for i, key in enumerate(keys):
        build_cache.write("kernel", key, bytes([i]) * 8000)
        os.utime(build_cache.cache_folder() / build_cache.entry_name("kernel", key),
                 (1000 + i, 1000 + i))
        if i >= 2:
            assert build_cache.read("kernel", keys[0]) is not None  # used, so kept
            os.utime(build_cache.cache_folder() / build_cache.entry_name("kernel", keys[0]),
                     (5000 + i, 5000 + i))
        total = sum(e.size for e in build_cache.entries())
        assert total <= 50_000
    kept = {e.path.name for e in build_cache.entries()}
    assert build_cache.entry_name("kernel", keys[0]) in kept
    assert build_cache.entry_name("kernel", keys[-1]) in kept
    assert build_cache.entry_name("kernel", keys[1]) not in kept


def test_an_unwritable_home_keeps_nothing_and_fails_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ANNC_HOME", str(blocker / "home"))
    assert build_cache.write("kernel", {"n": 1}, b"x") is None
    assert build_cache.read("kernel", {"n": 1}) is None
    assert build_cache.entries() == []


def test_clear_empties_the_cache(home: Path) -> None:
    for n in range(3):
        build_cache.write("schedule", {"n": n}, b"abc")
    count, size, left = build_cache.clear()
    assert count == 3 and size > 0 and left == 0 and build_cache.entries() == []


@needs_cc
def test_concurrent_processes_lose_nothing_and_load_nothing_half_written(home: Path) -> None:
    jobs = [*JOBS, ["matmul", "halide.auto.mullapudi2016", [[20, 12], [12, 16]]]]
    command = [sys.executable, "-c", BUILD_SCRIPT, json.dumps(jobs)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    running = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = []
    for process in running:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["worst"] < 1e-3 for r in results)
    assert not any(r["stats"].get("rejected") for r in results)
    assert not list((home / "builds").glob(".tmp-*"))
    after = build_in_process(jobs)
    assert after["builds"]["aot_loaded"] == len(jobs) and after["builds"]["aot_built"] == 0
    assert not after["stats"].get("rejected")


def test_without_a_c_compiler_the_jit_path_works_and_schedules_are_cached(
        home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    no_cc = {"PATH": str(empty), "CC": ""}
    jobs = [*JOBS, ["conv2d", "halide.auto.adams2019", [[16, 12], [3, 3]]]]
    first = build_in_process(jobs, no_cc)
    second = build_in_process(jobs, no_cc)
    for result in (first, second):
        assert result["builds"] == {"aot_built": 0, "aot_loaded": 0, "jit": len(jobs)}
        assert result["notes"] == [halide_cpu.JIT_NOTE]
        assert result["worst"] < 1e-3
    assert first["stats"].get("written:schedule") == 1
    assert second["stats"].get("hit:schedule") == 1 and not second["stats"].get("written")
    assert not kernel_entries(home)


def _halide_cpu_cases() -> list:
    return [pytest.param(v, d, id=f"{v.kernel}-{v.name}-{d.name}")
            for kernel in CHECK_SHAPES for v in variants_for(kernel, "cpu")
            if v.backend == "halide" for d in DTYPES]


@needs_cc
@pytest.mark.parametrize(("variant", "dtype"), _halide_cpu_cases())
def test_every_halide_cpu_variant_served_from_the_cache_matches_the_reference(
        variant, dtype) -> None:
    """In the session's home, where `test_variants` built them already, or built here."""
    shapes_list = [s for s in CHECK_SHAPES[variant.kernel] if variant.applies(s, dtype)]
    for shapes in shapes_list:
        check_variant(variant, shapes, dtype)  # builds (or loads) and keeps it
    clear_cache()
    for shapes in shapes_list:
        result = check_variant(variant, shapes, dtype)
        assert result.passed, result.describe()
        assert compiled(variant, shapes, dtype).kernel.cached, shapes


@needs_cc
def test_selection_counts_a_cached_build_as_its_load_and_reports_say_so(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from annc.cli import main
    from annc.compiler import compile_source
    from annc.hardware.variants import LOAD_S
    from annc.passes.select_variants import plan_selection

    text = "param N = 20\ninput A : f32[N, N]\nB = matmul(A, A)\noutput B\n"
    program = tmp_path / "m.ann"
    program.write_text(text)
    clear_cache()
    fresh_build("matmul", "halide.tiled", ((20, 20), (20, 20)))

    plan = plan_selection(compile_source(text, emit="ir"))
    (op,) = plan.ops
    builds = {c.variant: (c.build, c.compile_s) for c in op.candidates}
    assert builds["halide.tiled"] == ("cached", LOAD_S["halide"])
    assert builds["halide.auto.li2018"][0] == "compile" and builds["numpy"][0] == "none"

    assert main(["explain", str(program), "--report", "json"]) == 0
    (op,) = json.loads(capsys.readouterr().out)["ops"]
    cached = {c["variant"] for c in op["candidates"] if c["cached"]}
    assert cached == {"halide.tiled"}

    assert main(["run", str(program), "--report", "json", "--variant",
                 "matmul=halide.tiled"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["startup_s"] >= 0 and report["execute_s"] > 0
    assert 0 < report["compile_s"] < 1.0  # loaded, not compiled
    assert report["ops"][0]["variant"] == "halide.tiled"
    clear_cache()


def test_the_cache_command_shows_and_clears(home: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from annc.cli import main

    build_cache.write("schedule", {"what": "halide-schedule", "kernel": "matmul",
                                   "variant": "halide.auto.li2018", "shapes": [[2, 3], [3, 4]],
                                   "dtype": "float32", "halide": "21.0.0"}, b"x" * 100)
    assert main(["cache", "--report", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert len(shown["entries"]) == 1 and shown["total_bytes"] > 100
    assert shown["entries"][0]["key"]["variant"] == "halide.auto.li2018"
    assert main(["cache"]) == 0
    assert "1 entries" in capsys.readouterr().out
    assert main(["cache", "--clear"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert build_cache.entries() == []


def test_a_command_imports_only_its_own_module() -> None:
    """Of the commands' modules (not their shared helpers, `common` and `tables`)."""
    code = ("import sys; from annc.cli import COMMANDS, build_parser; build_parser(['cache']); "
            "print(sorted(m for m in sys.modules if m.startswith('annc.commands.') "
            "and m.split('.')[-1] in COMMANDS))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert done.stdout.strip() == "['annc.commands.cache']"
