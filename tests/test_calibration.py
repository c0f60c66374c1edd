"""Calibration: the sampling plan, budgets, resuming, Ctrl-C, misbehaving variants, concurrency."""

from __future__ import annotations

import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from annc.cli import main
from annc.dsl import dtypes
from annc.dsl.records import Combination, Query, Record
from annc.hardware.calibration.reference_data import load_reference
from annc.hardware.calibration.runs import (
    Calibration,
    kernel_jobs,
    noise_floor,
    noise_passes,
    repeat_error,
    select_variants,
)
from annc.hardware.calibration.sampling import (
    DRAWS,
    calibration_plan,
    configurations,
    interleave,
    noise_plan,
    noise_size,
    plan_size,
)
from annc.hardware.calibration.store import MeasurementStore
from annc.hardware.variants import load_library, variants_for

TESTS = Path(__file__).parent
REFERENCE_MEMORY = 24 * 2**30
"""The reference machine's memory, which decides which configurations its plan could take."""
CHEAP = ["--variants", "numpy,numpy.reference"]


def rows(path: Path) -> list[Record]:
    with MeasurementStore(path) as store:
        return list(store.calibration())


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def annc_process(*args: str, home: Path, **env: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "ANNC_HOME": str(home), "PYTHONPATH": str(TESTS), **env}
    return subprocess.Popen([sys.executable, "-m", "annc", *args], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# --- the plan -------------------------------------------------------------------------------

def test_plan_is_seeded_and_train_test_are_disjoint() -> None:
    for kernel in DRAWS:
        train, test = configurations(kernel)
        assert (train, test) == configurations(kernel)
        assert len(train) == 250 and len(test) == 50
        assert not set(train) & set(test)
        assert {c.dtype for c in train} == {"float32", "float64"}


def test_sizes_span_the_ranges() -> None:
    train, _ = configurations("conv2d")
    kernels = [c.shapes[1] for c in train]
    assert all(p % 2 == 1 and q % 2 == 1 and 1 <= p <= 31 and 1 <= q <= 31 for p, q in kernels)
    assert any(p != q for p, q in kernels)
    assert {1, 3} <= {p for p, _ in kernels} and max(p for p, _ in kernels) >= 25
    images = [c.shapes[0] for c in train]
    assert min(min(s) for s in images) < 16 and max(max(s) for s in images) > 512
    matmuls = [c.shapes for c in configurations("matmul")[0]]
    assert all(a[1] == b[0] and a[0] * a[1] * b[1] <= 2**30 for a, b in matmuls)
    assert any(a[0] != b[1] for a, b in matmuls) and any(a[0] == a[1] == b[1]
                                                         for a, b in matmuls)
    assert max(a[0] for a, _ in matmuls) > 1000 and min(a[0] for a, _ in matmuls) < 16
    sizes = [max(len(s) and s[0] * (s[1] if len(s) > 1 else 1) for s in c.shapes)
             for c in configurations("add")[0]]
    assert min(sizes) < 100 and max(sizes) > 1_000_000


def test_matvec_samples_sizes_around_the_cache_capacities() -> None:
    """Matrix–vector products put half their configurations or more between 0.5 and 64 MB
    of operands, where their time steps with the caches, and keep the small and the
    largest sizes."""
    train, test = configurations("matvec")
    megabytes = [sum(math.prod(s) for s in c.shapes) * (8 if c.dtype == "float64" else 4)
                 / 2**20 for c in train + test]
    around = sum(0.5 <= m <= 64 for m in megabytes) / len(megabytes)
    assert around >= 0.48, around
    assert sum(4 <= m <= 32 for m in megabytes) >= 50
    assert min(megabytes) < 0.01 and max(megabytes) > 40


def test_the_shipped_reference_holds_exactly_the_plans_configurations() -> None:
    """Every kernel combination of the shipped reference was measured on the configurations
    the plan gives it now, no more and no fewer: a plan changed without re-measuring
    would train the shipped models on rows another calibration would not take."""
    load_library()
    reference = load_reference()
    assert reference is not None
    stored = {m.calibration_key for m in reference.measurements
              if m.split in ("train", "test")}
    combinations = {config[:3] for config in stored}
    variants = [v for v in select_variants() if (v.kernel, v.name, v.device) in combinations]
    assert len(variants) >= 73  # every CPU combination at least
    planned = {job.key for job in calibration_plan(variants, memory_bytes=REFERENCE_MEMORY)}
    registered = {(v.kernel, v.name, v.device) for v in variants}
    differ = {key[:3] for key in planned ^ {k for k in stored if k[:3] in registered}}
    assert not differ, differ


def test_the_shipped_reference_carries_the_traits_its_machine_decided() -> None:
    """Mullapudi2016's rows come with whether their schedule fused, as decided on the
    reference machine; on that machine its auto-scheduler decides the same again."""
    from annc.hardware.devices.fingerprint import fingerprint
    from annc.hardware.variants import traits_of
    from annc.hardware.variants.halide.schedule_traits import TRAITED

    reference = load_reference()
    assert reference is not None
    rows = [m for m in reference.measurements if m.status == "ok"
            and m.split in ("train", "test") and (m.kernel, m.variant) in TRAITED]
    assert len(rows) >= 500 and all(m.query.traits for m in rows)
    assert {dict(m.query.traits)["fused"] for m in rows} == {0.0, 1.0}
    if fingerprint().id == reference.metadata["fingerprint"]["id"]:
        for m in rows[::97]:
            assert traits_of(m.kernel, m.variant, m.device, m.shapes,
                             dtypes.normalise(m.dtype)) == m.query.traits, m


def test_plan_sizes_follow_build_cost_and_interleave() -> None:
    load_library()
    variants = variants_for("conv2d", "cpu")
    jobs = calibration_plan(variants, memory_bytes=8 * 2**30)
    counts = Counter((j.variant.name, j.split) for j in jobs)
    for variant in variants:
        size = plan_size(variant)
        assert counts[(variant.name, "train")] == size.train
        assert counts[(variant.name, "test")] == size.test
    first_round = {j.variant.name for j in jobs[: len(variants)]}
    assert first_round == {v.name for v in variants}
    assert interleave([[1, 2, 3], [4]]) == [1, 4, 2, 3]  # type: ignore[list-item]


def test_noise_plan_measures_the_same_sample_twice() -> None:
    load_library()
    variants = list(variants_for("add"))
    first, second = noise_plan(variants, memory_bytes=2**33)
    assert len(first) == len(second) == sum(noise_size(v) for v in variants)
    assert [(j.variant, j.config) for j in first] == [(j.variant, j.config) for j in second]
    assert {j.noise_pass for j in first} == {1} and {j.noise_pass for j in second} == {2}


def test_a_budgeted_calibration_measures_its_noise_sample_first() -> None:
    """A budget may stop the plan anywhere: the noise floor must not depend on finishing it."""
    load_library()
    variants = list(variants_for("add", "cpu"))
    noise = [j.noise_pass for j in kernel_jobs(variants, noise=True, budgeted=True)]
    repeats = noise.count(1) + noise.count(2)
    assert repeats > 0 and set(noise[:repeats]) == {1, 2} and set(noise[repeats:]) == {0}
    whole = [j.noise_pass for j in kernel_jobs(variants, noise=True, budgeted=False)]
    assert set(whole[:-repeats]) == {0} and set(whole[-repeats:]) == {1, 2}
    assert {j.noise_pass for j in kernel_jobs(variants, noise=False, budgeted=True)} == {0}


def test_noise_plan_repeats_each_combinations_own_test_configurations() -> None:
    load_library()
    variants = list(variants_for("matmul", "cpu"))
    first, _ = noise_plan(variants, memory_bytes=2**33)
    plan = calibration_plan(variants, memory_bytes=2**33)
    for variant in variants:
        tests = {j.config for j in plan if j.variant == variant and j.split == "test"}
        repeated = [j.config for j in first if j.variant == variant]
        assert len(repeated) == noise_size(variant) >= 2
        assert set(repeated) <= tests


def neg(shape: int, split: str, noise_pass: int, seconds: float) -> Record:
    """A calibration record of `neg` on one vector."""
    return Record(Combination("neg", "numpy", "cpu"),
                  Query("neg", ((shape,),), "float32", float(shape)), seconds, "calibration",
                  split=split, noise_pass=noise_pass, fingerprint="f")


def test_noise_floor_is_mean_relative_difference() -> None:
    def m(shape: int, noise_pass: int, median: float) -> Record:
        return neg(shape, "noise", noise_pass, median)

    floor = noise_floor([m(1, 1, 1.0), m(1, 2, 1.2), m(2, 1, 2.0), m(2, 2, 1.8), m(3, 1, 5.0)])
    assert floor.pairs == 2
    assert floor.mape == pytest.approx(0.15)
    assert floor.by_combination == {("neg", "numpy", "cpu"): pytest.approx(0.15)}
    assert floor.median_combination == pytest.approx(0.15)


def test_noise_floor_measures_repeats_against_the_held_out_row() -> None:
    def m(split: str, noise_pass: int, median: float, shape: int = 1) -> Record:
        return neg(shape, split, noise_pass, median)

    # The two passes agree with each other (run back to back) but not with the test
    # row taken minutes earlier with another build: the floor is the latter distance.
    rows = [m("test", 0, 1.0), m("noise", 1, 1.3), m("noise", 2, 1.3),
            m("test", 0, 2.0, shape=2), m("noise", 1, 2.0, shape=2), m("noise", 2, 1.0, shape=2),
            m("test", 0, 9.0, shape=3)]  # a test row the passes did not repeat
    floor = noise_floor(rows)
    assert floor.pairs == 2
    assert floor.mape == pytest.approx((0.3 + 0.25) / 2)
    assert repeat_error({0: 1.0, 1: 1.3, 2: 1.3}) == pytest.approx(0.3)
    assert repeat_error({1: 2.0, 2: 1.0}) == pytest.approx(0.5)  # no test row: the passes
    assert repeat_error({0: 1.0, 1: 1.5}) == pytest.approx(0.5)  # one pass is enough
    assert repeat_error({0: 1.0}) is None and repeat_error({1: 1.0}) is None


# --- running calibrations -------------------------------------------------------------------

def test_small_budget_stores_rows_within_budget_then_resumes(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["calibrate", "--kernels", "neg,add", *CHEAP, "--budget", "8"]
    start = time.monotonic()
    assert main(args) == 0
    assert time.monotonic() - start < 8 + 2
    first = rows(home / "measurements.sqlite")
    assert len(first) >= 10
    assert {m.variant for m in first} == {"numpy", "numpy.reference"}
    assert {m.kernel for m in first} == {"neg", "add"}
    assert all(m.status == "ok" and m.seconds and m.seconds > 0 for m in first)
    assert "budget spent" in capsys.readouterr().err

    assert main(args) == 0
    second = rows(home / "measurements.sqlite")
    assert len(second) > len(first)
    configs = [m.calibration_key for m in second]
    assert len(configs) == len(set(configs))
    assert "already stored were skipped" in capsys.readouterr().err


def test_failing_crashing_and_hanging_variants_are_recorded(
        home: Path, misbehaving_variants: None) -> None:
    names = "numpy,test.failing,test.exiting,test.segfault,test.hanging"
    assert main(["calibrate", "--kernels", "neg", "--variants", names, "--budget", "16",
                 "--timeout", "1.5"]) == 0
    by_variant: dict[str, Counter[str]] = {}
    for m in rows(home / "measurements.sqlite"):
        by_variant.setdefault(m.variant, Counter())[m.status] += 1
    assert by_variant["test.failing"]["failed"] >= 1
    assert by_variant["test.exiting"]["crashed"] >= 1
    assert by_variant["test.segfault"]["crashed"] >= 1
    assert by_variant["test.hanging"]["timeout"] >= 1
    assert by_variant["numpy"]["ok"] >= 2  # it carried on after each
    errors = {m.variant: m.error for m in rows(home / "measurements.sqlite")}
    assert "always fails" in str(errors["test.failing"])
    assert "SIGSEGV" in str(errors["test.segfault"])
    assert "status 3" in str(errors["test.exiting"])


def test_ctrl_c_keeps_every_row_and_the_database_intact(tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite"
    process = annc_process("calibrate", "--kernels", "neg,add", *CHEAP, "--db", str(db),
                           home=tmp_path / "home")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if db.exists() and sqlite3.connect(db).execute(
                "SELECT COUNT(*) FROM records").fetchone()[0] >= 5:
            break
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    kept = int(re.search(r"kept the (\d+) measurement", err).group(1))  # type: ignore[union-attr]
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert connection.execute("SELECT COUNT(*) FROM records").fetchone()[0] == kept >= 5
    assert "Traceback" not in err


def test_two_calibrations_into_one_database_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite"
    processes = [annc_process("calibrate", "--kernels", "neg,sum", *CHEAP, "--budget", "10",
                              "--db", str(db), home=tmp_path / "home") for _ in range(2)]
    stored = 0
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        stored += int(re.search(r"stored (\d+) measurement", err).group(1))  # type: ignore[union-attr]
    assert stored > 0
    assert len(rows(db)) == stored


def test_noise_passes_are_stored_and_give_a_floor(tmp_path: Path) -> None:
    variants = select_variants(["neg", "abs"], ["cpu"], ["numpy"])
    jobs = noise_passes(variants)
    with MeasurementStore(tmp_path / "m.sqlite") as store:
        calibration = Calibration(store, "test-fingerprint")
        assert calibration.run(jobs) == "complete"
        measured = list(store.calibration())
    pairs = sum(noise_size(v) for v in variants)
    assert Counter(m.noise_pass for m in measured) == {1: pairs, 2: pairs}
    assert {m.split for m in measured} == {"noise"}
    floor = noise_floor(measured)
    assert floor.pairs == pairs and floor.mape is not None and floor.mape >= 0
    assert set(floor.by_combination) == {v.key for v in variants}


def test_reference_calibration_exports_data_with_its_noise_floor(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import annc.hardware.calibration.reference_data as reference_data

    monkeypatch.setattr(reference_data, "DATA_FOLDER", tmp_path / "data")
    db = tmp_path / "m.sqlite"
    assert main(["calibrate", "--reference", "--kernels", "neg", "--variants", "numpy",
                 "--db", str(db)]) == 0
    reference = reference_data.load_reference()
    assert reference is not None
    metadata = reference.metadata
    assert metadata["rows"] == len(rows(db)) == 250 + 50 + 2 * 12
    assert metadata["noise_floor"]["pairs"] == 12 and metadata["noise_floor"]["mape"] >= 0
    assert metadata["noise_floor"]["combinations"] == 1
    assert metadata["calibration_s"] > 0 and metadata["fingerprint"]["id"]
    assert metadata["combinations"] == [{"kernel": "neg", "variant": "numpy", "device": "cpu",
                                         "noise": 24, "test": 50, "train": 250}]
    assert len(reference.measurements) == metadata["rows"]
