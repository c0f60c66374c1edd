"""Builds that outlive the process: a region spec as JSON; Halide regions compiled ahead
of time into the build cache (bit for bit the JIT's results) and loaded by a second
process; JAX builds, regions and kernels, served from XLA's cache in a second process
that knew beforehand from annc's marker; one compiled loop for any number of trips;
selection charging a cached region its load; `annc cache` over the new entries.

Each test that looks at a cache uses a home of its own (`home`); the helper
processes import only `hardware.variants` modules, as a build worker would."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_region_builders import FIXED, elementwise_chain, heat, operands

from annc.hardware import events
from annc.hardware.variants import LOAD_S
from annc.hardware.variants.halide import build_cache
from annc.hardware.variants.regions import catalogue
from annc.hardware.variants.regions.jax_keys import region_key
from annc.hardware.variants.regions.reference import run_reference
from annc.hardware.variants.regions.spec import RegionOp, RegionSpec, compiled_form

ROOT = Path(__file__).resolve().parents[1]

BUILD_SCRIPT = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np
    from annc.hardware.variants.halide import build_cache
    from annc.hardware.variants.regions import catalogue
    from annc.hardware.variants.regions.spec import RegionSpec
    results = []
    for job in json.loads(sys.argv[1]):
        spec = RegionSpec.from_json(job["spec"])
        rng = np.random.default_rng(0)
        dtype = np.float32 if spec.dtype == "f32" else np.float64
        inputs = [rng.uniform(0.5, 1.0, s).astype(dtype) for s in spec.inputs]
        cached = catalogue.cached(spec, job["variant"])
        outputs = catalogue.built(spec, job["variant"])(*inputs)
        results.append({"cached_before": cached,
                        "cached_after": catalogue.cached(spec, job["variant"]),
                        "digests": [hashlib.sha256(np.ascontiguousarray(o).tobytes())
                                    .hexdigest() for o in outputs]})
    events = {}
    if "annc.hardware.devices.jax_runtime" in sys.modules:
        events = dict(sys.modules["annc.hardware.devices.jax_runtime"].cache_events)
    from annc.hardware.events import snapshot
    stats = {k.removeprefix("cache "): n for k, n in snapshot().items() if k.startswith("cache ")}
    print(json.dumps({"results": results, "stats": stats,
                      "xla": events, "modules": sorted(
                          m for m in sys.modules if m.startswith("annc.")
                          and m.split(".")[1] not in ("hardware", "dsl"))}))
""")

KERNEL_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from annc.hardware.variants import load_variant
    from annc.hardware.variants.halide import build_cache
    variant = load_variant("matmul", "jax")
    shapes = ((24, 16), (16, 8))
    cached = variant.cached(shapes, np.dtype(np.float32))
    built = variant.build(shapes, np.dtype(np.float32))
    out = built(np.ones((24, 16), np.float32), np.ones((16, 8), np.float32))
    events = dict(sys.modules["annc.hardware.devices.jax_runtime"].cache_events)
    from annc.hardware.events import snapshot
    stats = {k.removeprefix("cache "): n for k, n in snapshot().items() if k.startswith("cache ")}
    print(json.dumps({"cached_before": cached, "sum": float(out.sum()), "xla": events,
                      "stats": stats}))
""")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("ANNC_HOME", str(folder))
    return folder


def in_fresh_process(script: str, *args: str, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def build_jobs(jobs: list[tuple[RegionSpec, str]], env: dict[str, str] | None = None) -> dict:
    """Builds and runs region variants in a fresh process; what it saw and counted."""
    payload = json.dumps([{"spec": spec.to_json(), "variant": name} for spec, name in jobs])
    return in_fresh_process(BUILD_SCRIPT, payload, env=env)


# The JSON form of a spec.


def test_a_region_spec_round_trips_through_json_exactly() -> None:
    weights = (0.1, -0.0, 1e-300, 1 / 3, -4.0, 2.5e38, 0.0, 1.0, -1.0)
    folded = RegionSpec(((12, 15), (3, 3), ()), "f32", heat((12, 15), 3, "f32").ops, (5,),
                        trips=7, carried=1, constants=((1, weights), (2, (0.25,))))
    specs = [folded, heat((4, 5), 3, "f64"), elementwise_chain(2, (), "f64"),
             *(make("f32") for make, _, _ in FIXED.values())]
    for spec in specs:
        data = json.loads(json.dumps(spec.to_json(), allow_nan=False))
        again = RegionSpec.from_json(data)
        assert again == spec and again.to_json() == spec.to_json()
    signs = [math.copysign(1.0, v) for v in RegionSpec.from_json(folded.to_json()).constants[0][1]]
    assert signs == [math.copysign(1.0, v) for v in weights]


def test_non_finite_constants_are_strict_json_and_read_back() -> None:
    spec = RegionSpec(((3,), (3,)), "f64", (RegionOp("mul", (0, 1)),), (2,),
                      constants=((1, (math.inf, -math.inf, math.nan)),))
    data = json.loads(json.dumps(spec.to_json(), allow_nan=False))
    values = RegionSpec.from_json(data).constants[0][1]
    assert values[:2] == (math.inf, -math.inf) and math.isnan(values[2])


@pytest.mark.parametrize("damage", [
    lambda d: d.pop("ops"), lambda d: d.update(trips="3"), lambda d: d.update(dtype="f16"),
    lambda d: d.update(outputs=[9]), lambda d: d.update(inputs=[[2.0, 3]])])
def test_json_that_is_not_a_spec_is_a_value_error(damage) -> None:
    data = heat((4, 4), 3, "f32", trips=2).to_json()
    damage(data)
    with pytest.raises(ValueError):
        RegionSpec.from_json(data)


def test_loops_that_differ_only_in_trips_have_one_compiled_form() -> None:
    assert compiled_form(heat((8, 8), 3, "f32", trips=5)) == compiled_form(
        heat((8, 8), 3, "f32", trips=900))
    assert compiled_form(heat((8, 8), 3, "f32", trips=5)).is_loop
    chain = heat((8, 8), 3, "f32")
    assert compiled_form(chain) is chain


# Halide regions ahead of time.


def _c_compiler() -> str | None:
    try:
        from annc.hardware.variants.halide.aot import c_compiler
    except ImportError:
        return None
    return c_compiler()


needs_cc = pytest.mark.skipif(_c_compiler() is None, reason="no Halide or no C compiler")

HALIDE_SPECS = {
    "heat": (heat((12, 15), 3, "f32"), ()),
    "heat_large": (heat((67, 131), 5, "f32"), ()),
    "chain": (elementwise_chain(3, (5, 9), "f64"), (2, 3)),
    "scalar_chain": (elementwise_chain(0, (), "f32"), (2, 3)),
    **{name: (make("f64"), divisors) for name, (make, divisors, _) in FIXED.items()},
}
"""Several inputs, 0-d inputs and outputs, several and repeated outputs."""


@needs_cc
@pytest.mark.parametrize("schedule", ["annc", "mullapudi2016"])
@pytest.mark.parametrize("name", HALIDE_SPECS)
def test_a_halide_region_compiled_ahead_of_time_gives_the_jits_bits(
        name: str, schedule: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from annc.hardware.variants.regions import halide_region

    spec, divisors = HALIDE_SPECS[name]
    inputs = operands(spec, divisors=divisors)
    built = events.snapshot()
    ahead = halide_region.build_halide(spec, schedule)(*inputs)
    assert events.snapshot()["halide region jit"] == built["halide region jit"]
    monkeypatch.setattr(halide_region, "c_compiler", lambda: None)
    jitted = halide_region.build_halide(spec, schedule)(*inputs)
    assert events.snapshot()["halide region jit"] == built["halide region jit"] + 1
    for a, b in zip(ahead, jitted, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.array_equal(a, b, equal_nan=True)
    for got, want in zip(ahead, run_reference(spec, inputs, np.float64), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@needs_cc
def test_a_second_process_loads_halide_regions_from_the_build_cache(home: Path) -> None:
    jobs = [(heat((40, 33), 3, "f32"), "halide"),
            (heat((40, 33), 3, "f32"), "halide.mullapudi2016"),
            (FIXED["multiple_outputs"][0]("f64"), "halide"),
            (FIXED["dot_div"][0]("f32"), "halide.mullapudi2016")]
    first, second = build_jobs(jobs), build_jobs(jobs)
    assert first["stats"].get("written:region") == 4
    assert first["stats"].get("written:schedule") == 2  # Mullapudi2016's, kept as well
    assert second["stats"].get("hit:region") == 4 and not second["stats"].get("written")
    assert not second["stats"].get("hit:schedule")  # the compiled region needs none
    for before, after in zip(first["results"], second["results"], strict=True):
        assert not before["cached_before"] and before["cached_after"]
        assert after["cached_before"] and after["digests"] == before["digests"]
    assert len(list((home / "builds").glob("*.region"))) == 4


@needs_cc
def test_without_a_c_compiler_regions_are_jit_compiled_and_their_schedules_kept(
        home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    no_cc = {"PATH": str(empty), "CC": ""}
    jobs = [(heat((20, 18), 3, "f32"), "halide.mullapudi2016"), (heat((20, 18), 3, "f32"),
                                                                   "halide")]
    first, second = build_jobs(jobs, no_cc), build_jobs(jobs, no_cc)
    assert first["stats"].get("written:schedule") == 1 and not first["stats"].get(
        "written:region")
    assert second["stats"].get("hit:schedule") == 1
    assert not any(r["cached_before"] for r in first["results"] + second["results"])
    with_cc = build_jobs(jobs)
    assert [r["digests"] for r in with_cc["results"]] == [
        r["digests"] for r in first["results"]]


# JAX: XLA's cache, annc's markers, the same configuration in every process.


def test_a_second_process_gets_a_jax_region_from_xlas_cache_and_knew_it(home: Path) -> None:
    loop = heat((64, 48), 3, "f32", trips=6)
    jobs = [(loop, "jax"), (elementwise_chain(4, (7,), "f64"), "jax")]
    first, second = build_jobs(jobs), build_jobs(jobs)
    assert first["xla"].get("miss", 0) >= 2 and not first["xla"].get("hit")
    assert second["xla"].get("hit", 0) >= 2 and not second["xla"].get("miss")
    for before, after in zip(first["results"], second["results"], strict=True):
        assert not before["cached_before"] and before["cached_after"]
        assert after["cached_before"] and after["digests"] == before["digests"]
    assert first["stats"].get("written:jax") == 2 and not second["stats"].get("written")
    assert second["modules"] == []  # a helper that imports only `annc.hardware`
    other_trips = build_jobs([(heat((64, 48), 3, "f32", trips=9), "jax")])
    assert other_trips["results"][0]["cached_before"] and not other_trips["xla"].get("miss")


def test_a_second_process_gets_a_jax_kernel_from_xlas_cache_and_knew_it(home: Path) -> None:
    first, second = in_fresh_process(KERNEL_SCRIPT), in_fresh_process(KERNEL_SCRIPT)
    assert not first["cached_before"] and first["stats"].get("written:jax") == 1
    assert second["cached_before"] and second["xla"].get("hit", 0) >= 1
    assert not second["xla"].get("miss") and first["sum"] == second["sum"] == 24 * 8 * 16


def test_no_marker_is_kept_where_xlas_cache_is_elsewhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's XLA cache was set when JAX was first configured, in another home:
    a marker here would promise what this home's cache does not hold."""
    from annc.hardware.devices import jax_runtime
    from annc.hardware.variants.regions.jax_region import build_jax

    other = tmp_path / "other-home"
    monkeypatch.setenv("ANNC_HOME", str(other))
    assert jax_runtime.persistent_cache_folder() != other / "jax-cache"
    spec = elementwise_chain(1, (3,), "f32")
    build_jax(spec)
    assert not catalogue.cached(spec, "jax") and not (other / "builds").exists()


# One compiled loop for any number of trips.


def test_one_compiled_loop_runs_any_number_of_trips_and_chunks_agree() -> None:
    from annc.hardware.variants.regions.jax_region import build_jax

    spec = heat((20, 17), 3, "f32", trips=5)
    inputs = operands(spec)
    inputs[2] = np.asarray(0.1, np.float32)
    run = build_jax(spec)
    (five,) = run(*inputs)
    assert np.array_equal(five, run(*inputs, trips=None)[0])
    (two,) = run(*inputs, trips=2)
    (then_three,) = run(two, *inputs[1:], trips=3)
    assert np.array_equal(five, then_three)
    for trips in (0, 1, 3, 8):
        (out,) = run(*inputs, trips=trips)
        (want,) = run_reference(RegionSpec(spec.inputs, spec.dtype, spec.ops, spec.outputs,
                                           trips, spec.carried), inputs, np.float64)
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
        assert not np.shares_memory(out, inputs[0])
    with pytest.raises(ValueError, match="trips"):
        run(*inputs, trips=-1)


def test_a_traced_trip_count_gives_the_bits_of_a_fixed_one() -> None:
    import jax

    from annc.hardware.variants.regions.jax_region import body_function, build_jax

    spec = heat((33, 21), 3, "f64", trips=7)
    inputs = operands(spec)
    inputs[2] = np.asarray(0.05, np.float64)
    once = body_function(spec)

    @jax.jit
    def fixed(*values):
        carried, invariant = tuple(values[:1]), tuple(values[1:])
        return jax.lax.fori_loop(0, 7, lambda _, c: once(c + invariant), carried)

    assert np.array_equal(build_jax(spec)(*inputs)[0], np.asarray(fixed(*inputs)[0]))


def test_the_catalogue_builds_a_loop_once_for_every_trip_count(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalogue, "_BUILT", {})
    short, long = heat((9, 10), 3, "f64", trips=2), heat((9, 10), 3, "f64", trips=6)
    inputs = operands(short)
    inputs[2] = np.asarray(0.1, np.float64)
    (a,) = catalogue.built(short, "jax")(*inputs)
    assert catalogue.is_built(long, "jax") and len(catalogue._BUILT) == 1
    (b,) = catalogue.built(long, "jax")(*inputs)
    (c,) = catalogue.built(long, "jax")(*inputs, trips=2)
    np.testing.assert_allclose(b, run_reference(long, inputs)[0], rtol=1e-12)
    assert np.array_equal(a, c) and len(catalogue._BUILT) == 1


# Selection and the cache command.


def test_selection_charges_a_cached_region_its_load(home: Path) -> None:
    from test_regions import HEAT

    from annc.compiler import compile_program

    def loop_builds() -> dict[str, tuple[str, float]]:
        plan = compile_program(HEAT, "heat.ann", None, ["cpu"], "selected", measure="never",
                               record=False).selection
        return {c.variant: (c.build, c.compile_s) for c in plan.regions[0].candidates
                if c.predicted_s is not None}

    before = loop_builds()
    assert before["jax"][0] == "compile"
    spec = next(r for r in compile_program(HEAT, "heat.ann", None, ["cpu"], "selected",
                                           measure="never", record=False).selection.regions
                ).lowered.spec
    build_jobs([(spec, "jax")])
    assert loop_builds()["jax"] == ("cached", LOAD_S["jax"])


def test_the_cache_command_lists_and_clears_the_new_entries(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from annc.cli import main

    spec = heat((6, 6), 3, "f32", trips=3)
    build_cache.write("jax", region_key(spec), b'{"seconds": 0.3}')
    build_cache.write("region", {"what": "halide-region", "spec": spec.to_json(),
                                 "schedule": "annc", "halide": "21.0.0"}, b"x" * 50)
    foreign = home / "builds" / ("0" * 32 + ".region")
    foreign.write_bytes(b"not written by annc")
    (home / "jax-cache").mkdir()
    (home / "jax-cache" / "jit_f-abc").write_bytes(b"y" * 70)
    assert main(["cache", "--report", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {e["kind"] for e in shown["entries"]} == {"jax", "region"}
    assert shown["jax_cache"]["files"] == 1 and shown["jax_cache"]["bytes"] == 70
    assert main(["cache"]) == 0
    table = capsys.readouterr().out
    assert "loop.stencil" in table and "jax-cache" in table
    assert main(["cache", "--clear"]) == 0
    assert "removed 2 entries" in capsys.readouterr().out
    assert foreign.exists() and (home / "jax-cache" / "jit_f-abc").exists()
    assert [e.path for e in build_cache.entries()] == [foreign]


def test_numpy_regions_are_never_cached() -> None:
    assert not catalogue.cached(FIXED["matmul_scale"][0]("f32"), "numpy")
