"""The fault suite, signals and trip counts: Ctrl-C inside every kind of long step is
answered within a few seconds with `annc: interrupted`, exit status 130 and no
traceback, however it is pressed; a loop's predicted time grows with its trips, and a
run predicted to take over a minute says so before it starts.

Where annc is when the signal comes is known, not guessed: the run's processes load a
`sitecustomize` (`benchmarks/interrupts.py`) that notes when they enter the step named,
and the signal goes to the run's process group, as a terminal's Ctrl-C does.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import interrupts  # noqa: E402

pytestmark = pytest.mark.fault

HEAT = str(ROOT / "examples" / "heat.ann")
SCALAR_LOOP = "input x : f32\nrepeat {trips} {{\n  x = x * 0.5 + 1\n}}\noutput x\n"
"""The issue's loop: line 3 runs `trips` times."""
CONVOLUTION = ("param N = 1024\ninput A : f32[N, N]\ninput K : f32[5, 5]\n"
               "B = conv2d(A, K)\noutput B\n")
LONG_RUN = re.compile(r"note: this run is predicted to take about [\d.]+ (minutes|hours|days"
                      r"|years) \(line 3 runs 10\^12 times\); Ctrl-C stops it")
ANSWER_S = 10.0
"""A few seconds, generous for a loaded machine: every step answers within about one."""


def _environment(tmp_path: Path) -> dict[str, str]:
    """A home of the test's own and a scratch folder whose leftovers the test can see."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "ANNC_HOME": str(tmp_path / "home"), "TMPDIR": str(scratch),
           "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("ANNC_WAIT_FOR_BUILDS", None)
    return env


def _interrupted(tmp_path: Path, argv: list[str], mark: str, argument: str = "",
                 delay_s: float = 1.0, presses: int = 1) -> interrupts.Answer:
    """Runs annc, sends Ctrl-C `delay_s` after it entered `mark`, returns how it ended."""
    marks = tmp_path / "marks"
    env = interrupts.marking(_environment(tmp_path), interrupts.write_site(tmp_path), marks,
                             mark)
    process = interrupts.start_annc(argv, env)
    at = interrupts.wait_until_entered(process, marks, argument, limit_s=300)
    return interrupts.interrupt(process, at + delay_s, presses=presses, limit_s=120)


def _assert_stopped(answer: interrupts.Answer) -> None:
    assert answer.answered_s is not None, f"still running after 120 s: {answer.stderr}"
    assert answer.exit == 130, answer.stderr
    assert "Traceback" not in answer.stderr, answer.stderr
    assert answer.stderr.strip().splitlines()[-1] == "annc: interrupted", answer.stderr
    assert answer.stderr.count("annc: interrupted") == 1, answer.stderr
    assert answer.answered_s < ANSWER_S, answer
    assert answer.left == 0


def _processes_naming(text: str) -> list[str]:
    """Command lines of live processes that mention `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in line:
            found.append(line)
    return found


def test_ctrl_c_in_a_compiled_heat_loop_of_a_billion_steps_exits_130_at_once(tmp_path):
    answer = _interrupted(tmp_path, ["run", HEAT, "-D", "N=128", "-D", "STEPS=1000000000",
                                     "--builds", "first"],
                          "annc.hardware.execution.loops:run_chunks")
    _assert_stopped(answer)
    assert "this run is predicted to take about" in answer.stderr  # told before it began


def test_ctrl_c_pressed_twice_still_exits_130_with_one_line_and_no_traceback(tmp_path):
    """The second press comes while annc cleans up after the first (0.05 s later)."""
    answer = _interrupted(tmp_path, ["run", HEAT, "-D", "N=128", "-D", "STEPS=1000000000",
                                     "--variant", "conv2d=shifted"],
                          "annc.hardware.execution.steps:run_trip", delay_s=0.5, presses=2)
    _assert_stopped(answer)


def test_ctrl_c_in_adams2019s_search_kills_its_build_process_and_leaves_nothing(tmp_path):
    """Adams2019 searches for 3.5 s or more on this convolution; a run waiting for it
    answers at once, and neither the process that searched nor its files remain."""
    program = tmp_path / "conv.ann"
    program.write_text(CONVOLUTION)
    answer = _interrupted(tmp_path, ["run", str(program), "--variant",
                                     "conv2d=halide.auto.adams2019", "--builds", "first",
                                     "--measure", "never"],
                          "annc.hardware.variants.halide.pipeline:autoschedule", "adams2019",
                          delay_s=0.3)
    _assert_stopped(answer)
    assert _processes_naming(str(tmp_path)) == []
    assert list((tmp_path / "tmp").iterdir()) == []  # the build's scratch folder is gone
    assert list((tmp_path / "home").glob("builds/.tmp-*")) == []  # no half-written entry


@pytest.mark.slow
def test_ctrl_c_in_one_long_matrix_product_is_answered_before_it_ends(tmp_path):
    """One product of 5000² f64 takes several seconds here: it runs in a helper thread,
    and the run stops without waiting for it (well within one product's time, measured
    here first)."""
    a = np.random.default_rng(0).random((5000, 5000))
    began = time.perf_counter()
    a @ a
    product_s = time.perf_counter() - began
    del a
    program = tmp_path / "product.ann"
    program.write_text("param N = 5000\ninput A : f64[N, N]\ninput B : f64[N, N]\n"
                       "repeat 20 {\n  A = matmul(A, B) * 0.0001\n}\noutput A\n")
    answer = _interrupted(tmp_path, ["run", str(program), "--variant", "matmul=numpy"],
                          "annc.hardware.execution.plan:ExecutablePlan.run", delay_s=1.0)
    _assert_stopped(answer)
    assert answer.answered_s is not None and answer.answered_s < max(1.0, product_s / 2)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["tune", "calibrate"])
def test_ctrl_c_while_the_measuring_worker_searches_stops_it_at_once(tmp_path, command):
    program = tmp_path / "conv.ann"
    program.write_text(CONVOLUTION)
    argv = (["tune", str(program), "--variants", "halide.auto.adams2019", "--no-record"]
            if command == "tune" else
            ["calibrate", "--kernels", "conv2d", "--variants", "halide.auto.adams2019",
             "--db", str(tmp_path / "measurements.sqlite")])
    answer = _interrupted(tmp_path, argv, "annc.hardware.variants.halide.pipeline:autoschedule",
                          "adams2019", delay_s=0.3)
    assert answer.exit == 130 and "Traceback" not in answer.stderr, answer.stderr
    assert answer.answered_s is not None and answer.answered_s < ANSWER_S
    assert answer.left == 0


def _plan(text: str, tmp_path: Path, name: str = "loop.ann"):
    """The selection plan, every back end counted as started (so that no candidate is
    left unpredicted for what starting JAX would cost)."""
    import jax  # noqa: F401  (JAX started: `hardware.devices.backend_start.started`)

    from annc.compiler import compile_program

    return compile_program(text, str(tmp_path / name), None, ["cpu"], "selected", "never",
                           record=False).selection


def _loop_candidate(plan, variant: str):
    (region,) = [r for r in plan.regions if r.lowered.spec.is_loop]
    return next(c for c in region.candidates if c.variant == variant)


def test_a_loops_predicted_time_grows_linearly_with_its_trips(tmp_path):
    """Both ways to run the issue's loop, compiled whole (one-time cost + cost per trip
    × trips) and op by op (every op × trips): 10¹² trips cost 10⁶ times 10⁶ trips, and
    every further 10⁹ trips the same."""
    plans = {trips: _plan(SCALAR_LOOP.format(trips=trips), tmp_path)
             for trips in (10**6, 10**9, 2 * 10**9, 3 * 10**9, 10**12)}
    for variant, cost in (("jax", lambda c: c.predicted_s), ("ops", lambda c: c.cost_s)):
        seconds = {trips: cost(_loop_candidate(plan, variant)) for trips, plan in plans.items()}
        assert seconds[10**12] / seconds[10**6] == pytest.approx(1e6, rel=0.05), variant
        assert seconds[3 * 10**9] - seconds[2 * 10**9] == pytest.approx(
            seconds[2 * 10**9] - seconds[10**9], rel=1e-6), variant
    many = plans[10**12]
    cheapest = min(_loop_candidate(many, "jax").cost_s, _loop_candidate(many, "ops").cost_s)
    assert math.isfinite(many.total_predicted_s) and many.total_predicted_s >= cheapest


def test_heats_loop_beyond_the_trips_it_was_calibrated_on_costs_its_trips(tmp_path):
    """A stencil loop's model was trained on up to 252 trips: beyond them each trip
    adds the same time, and 10¹⁰ steps are predicted at 10⁶ times 10⁴ (within the
    one-time cost's share)."""
    text = Path(HEAT).read_text().replace("param N = 256", "param N = 64")
    seconds = {steps: _loop_candidate(_plan(text.replace("param STEPS = 100",
                                                         f"param STEPS = {steps}"),
                                            tmp_path), "jax").predicted_s
               for steps in (10**4, 10**9, 2 * 10**9, 3 * 10**9, 10**10)}
    assert seconds[3 * 10**9] - seconds[2 * 10**9] == pytest.approx(
        seconds[2 * 10**9] - seconds[10**9], rel=1e-6)
    assert seconds[10**10] / seconds[10**4] == pytest.approx(1e6, rel=0.05)


def test_a_loop_of_the_most_trips_the_language_allows_has_a_finite_prediction(tmp_path):
    plan = _plan(SCALAR_LOOP.format(trips=2**63 - 1), tmp_path)
    assert math.isfinite(plan.total_predicted_s) and plan.total_predicted_s > 1e9


def test_a_run_predicted_to_take_an_hour_says_so_before_it_starts(tmp_path):
    """It still runs (not an error): the note comes first, then Ctrl-C stops it."""
    program = tmp_path / "loop.ann"
    program.write_text(SCALAR_LOOP.format(trips=10**12))
    answer = _interrupted(tmp_path, ["run", str(program)],
                          "annc.hardware.execution.plan:ExecutablePlan.run", delay_s=0.5)
    _assert_stopped(answer)
    assert LONG_RUN.search(answer.stderr), answer.stderr
    note = answer.stderr.index("predicted to take")
    assert note < answer.stderr.index("annc: interrupted")


def test_an_ordinary_run_has_no_such_note(tmp_path):
    done = subprocess.run([sys.executable, "-m", "annc", "run", HEAT],
                          env=_environment(tmp_path), cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "predicted to take" not in done.stderr


def test_explain_shows_a_loops_trips_and_its_total_in_hours(tmp_path):
    program = tmp_path / "loop.ann"
    program.write_text(SCALAR_LOOP.format(trips=10**12))
    done = subprocess.run([sys.executable, "-m", "annc", "explain", str(program)],
                          env={**_environment(tmp_path), "COLUMNS": "200"}, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    words = " ".join(done.stdout.split())  # the tables wrap their titles
    assert "a loop of 1000000000000 trips" in words
    assert re.search(r"predicted total [\d.]+ (h|days)", words), done.stdout


def test_the_note_names_the_line_and_its_trips_in_words():
    from annc.forecast import count_in_words, duration_in_words

    assert count_in_words(10**12) == "10^12"
    assert count_in_words(1_500_000) == "1,500,000"
    assert count_in_words(2**63 - 1) == "9,223,372,036,854,775,807"
    assert duration_in_words(3600) == "1 hour"
    assert duration_in_words(12_600) == "3.5 hours"
    assert duration_in_words(90) == "1.5 minutes"
    assert duration_in_words(86400 * 30) == "30 days"


def test_a_loop_models_prediction_is_its_own_up_to_its_trips_and_linear_beyond():
    from annc.predictor.loop_trips import per_trip_seconds

    trained = 64
    at_shorter, at_trained = 4e-6, 1.5e-6  # seconds per trip at 16 and at 64 trips
    total_at_trained = at_trained * trained
    assert per_trip_seconds(trained, trained, at_shorter, at_trained) * trained == \
        pytest.approx(total_at_trained)
    totals = [per_trip_seconds(t, trained, at_shorter, at_trained) * t
              for t in (10**3, 10**6, 10**12, 2**63 - 1)]
    assert all(math.isfinite(total) for total in totals)
    slope = (totals[2] - totals[1]) / (10**12 - 10**6)
    assert slope == pytest.approx((total_at_trained - at_shorter * 16) / (trained - 16))
    # a network whose totals shrink: a trip costs the most it can, the mean at T₂
    assert per_trip_seconds(10**9, trained, 1e-3, 1e-6) == pytest.approx(1e-6)


@pytest.mark.parametrize("predicted_per_trip_s", [None, 1e-16])
def test_chunks_grow_eightfold_at_most_and_never_pass_one_calls_trips(predicted_per_trip_s):
    """Without a prediction the first chunk is one trip; with one far too low (before
    predictions scaled with trips, 10¹² trips were predicted at 1.6e-13 s each) it is
    as many trips as one call takes, no more."""
    from annc.hardware.execution.loops import GROWTH, ChunkSizer
    from annc.hardware.variants.regions.spec import MAX_CALL_TRIPS

    sizer = ChunkSizer(predicted_per_trip_s)
    chunks = []
    remaining = 10**12
    for _ in range(40):
        chunk = sizer.next(remaining)
        chunks.append(chunk)
        sizer.saw(chunk, chunk * 1e-12)  # a trip of a picosecond: 0.2 s is 2·10¹¹ trips
        remaining -= chunk
    assert chunks[0] == (1 if predicted_per_trip_s is None else MAX_CALL_TRIPS)
    assert all(b <= a * GROWTH for a, b in itertools.pairwise(chunks))
    assert max(chunks) == MAX_CALL_TRIPS


def test_a_long_call_runs_in_a_helper_thread_and_hands_back_its_result_or_error():
    from annc.hardware.execution.interruptible import call_interruptibly

    assert call_interruptibly(lambda: np.arange(3).sum()) == 3
    with pytest.raises(ZeroDivisionError):
        call_interruptibly(lambda: 1 / 0)


def test_a_searching_build_a_run_waits_for_is_made_by_another_process(tmp_path,
                                                                      monkeypatch):
    """This process only loads it: it searches nothing and compiles nothing."""
    pytest.importorskip("halide")
    from annc.hardware import events
    from annc.hardware.execution.builds import kernel_job
    from annc.hardware.execution.foreground import build_now
    from annc.hardware.variants import load_variant
    from annc.hardware.variants.halide import cpu

    if cpu.c_compiler() is None:
        pytest.skip("without a C compiler a Halide build cannot be kept")
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    variant = load_variant("matmul", "halide.auto.li2018", "cpu")
    assert variant.searches
    job = kernel_job(variant, ((40, 24), (24, 56)), np.dtype("float32"))
    built = events.snapshot()
    kernel = build_now(job)
    a, b = np.ones((40, 24), np.float32), np.ones((24, 56), np.float32)
    np.testing.assert_allclose(np.asarray(kernel(a, b)), a @ b)
    assert events.snapshot()["halide kernel built"] == built["halide kernel built"]
    assert events.snapshot()["halide kernel loaded"] == built["halide kernel loaded"] + 1
    assert not list(tmp_path.glob("annc-build-*"))
