"""The fault suite, state: annc owns its home and nothing else (`docs/state.md`).

Each test sets up one hostile state — a home that is someone else's folder, state
folders that are links, tampered, foreign or unloadable build entries and plans, a
key others can read, a read-only home, a truncated store — runs annc through its
command line in a fresh process, as a user would, and checks three things: the run
does what it should (the right numbers, or a located error and exit 1, never a
traceback or exit 70); every file annc did not write is as it was (hashed before and
after); and annc says what it left alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from annc.hardware.devices import signing
from annc.hardware.devices.home import KEY_FILE, MARKER_FILE
from annc.hardware.variants.halide import build_cache

pytestmark = pytest.mark.fault

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = "param N = 12\ninput A : f32[N, N]\nB = matmul(A, A) + A\noutput B\n"
HALIDE = ["--variant", "matmul=halide.tiled"]
"""Forces a compiled Halide kernel, so that the run writes (and then loads) a build."""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("ANNC_HOME", str(folder))
    signing.forget_keys()
    return folder


INPUT = np.random.default_rng(3).random((12, 12)).astype(np.float32)


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "p.ann"
    path.write_text(PROGRAM)
    np.savez(tmp_path / "in.npz", A=INPUT)
    return path


def given(program: Path) -> list[str]:
    """The options that give the program its input (`INPUT`)."""
    return ["--inputs", str(program.parent / "in.npz")]


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A folder of a user's files, named as annc names its own."""
    folder = tmp_path / "victim"
    folder.mkdir()
    for name in ("thesis.tex", "0123456789abcdef0123456789abcdef.kernel", "results.json",
                 "a.runtime", "old.plan", "notes.json"):
        (folder / name).write_bytes(f"the user's {name}\n".encode())
    return folder


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under the folder (links not followed), with the SHA-256 of its bytes."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def annc(*args: str | Path, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    """`annc ARGS` in a fresh process, as a user runs it."""
    done = subprocess.run([sys.executable, "-m", "annc", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=300)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    if check is not None:
        assert done.returncode == check, done.stderr
    return done


def run_and_load(program: Path, out: Path, *extra: str) -> np.ndarray:
    annc("run", program, *given(program), "--save", out, *extra)
    with np.load(out) as saved:
        return saved["B"]


def check_result(result: np.ndarray) -> None:
    np.testing.assert_allclose(result, INPUT @ INPUT + INPUT, rtol=1e-5)


def entries_of(home: Path, kind: str) -> list[Path]:
    return sorted((home / "builds").glob(f"*.{kind}"))


# A home that is not annc's --------------------------------------------------------


def test_a_home_of_someone_else_s_files_is_refused_and_left_as_it_was(
        tmp_path: Path, program: Path, victim: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(victim)
    monkeypatch.setenv("ANNC_HOME", str(victim))
    done = annc("run", program, check=1)
    assert "ANNC_HOME is a folder annc did not make" in done.stderr
    annc("cache", "--clear", check=1)
    assert snapshot(victim) == before and sorted(os.listdir(victim)) == sorted(before)


def test_a_home_that_links_to_someone_else_s_folder_is_refused(
        tmp_path: Path, program: Path, victim: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    link = tmp_path / "link"
    link.symlink_to(victim)
    before = snapshot(victim)
    monkeypatch.setenv("ANNC_HOME", str(link))
    annc("run", program, check=1)
    assert snapshot(victim) == before and sorted(os.listdir(victim)) == sorted(before)


def test_an_empty_folder_or_an_earlier_annc_s_home_is_taken(
        tmp_path: Path, program: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    earlier = tmp_path / "earlier"
    (earlier / "builds").mkdir(parents=True)
    (earlier / "builds" / "0123.kernel").write_bytes(b"ANNC-BUILD 1\n{}\n")
    (earlier / "history-abc.json").write_text("{}")
    for folder in (empty, earlier):
        monkeypatch.setenv("ANNC_HOME", str(folder))
        check_result(run_and_load(program, tmp_path / "out.npz"))
        assert (folder / MARKER_FILE).is_file()
        assert stat.S_IMODE((folder / KEY_FILE).stat().st_mode) == 0o600
    # the earlier annc's entry is not provably annc's: kept, not used, not removed
    assert (earlier / "builds" / "0123.kernel").read_bytes() == b"ANNC-BUILD 1\n{}\n"


# State folders that are links ------------------------------------------------------


@pytest.mark.parametrize("folder", ["builds", "plans"])
def test_a_state_folder_that_is_a_link_is_never_written_nor_emptied(
        home: Path, program: Path, victim: Path, tmp_path: Path, folder: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    annc("run", program, *HALIDE)  # makes the home
    link = home / folder
    os.rename(link, tmp_path / f"{folder}.moved")
    link.symlink_to(victim)
    before = snapshot(victim)
    monkeypatch.setenv("ANNC_BUILD_CACHE_MB", "0")  # eviction would empty the folder
    check_result(run_and_load(program, tmp_path / "out.npz", *HALIDE))
    annc("cache", check=0)
    done = annc("cache", "--clear", check=None)
    assert done.returncode == (1 if folder == "builds" else 0), done.stderr
    assert snapshot(victim) == before and sorted(os.listdir(victim)) == sorted(before)


# Tampered, foreign and unloadable build entries ---------------------------------


def _rewrite_header(path: Path, payload: bytes, signature: str | None) -> None:
    """Puts another payload under the entry's header, the size and SHA-256 made to match
    (what someone who cannot sign would do)."""
    data = path.read_bytes()
    end = data.index(b"\n", len(build_cache.MAGIC))
    header = json.loads(data[len(build_cache.MAGIC):end])
    header.update(size=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    if signature is not None:
        header["signature"] = signature
    path.write_bytes(build_cache.MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n"
                     + payload)


@pytest.mark.parametrize("tamper", ["random bytes", "other shape's kernel", "empty",
                                    "copied from another home", "a link"])
def test_a_tampered_kernel_is_never_loaded_nor_removed(home: Path, program: Path,
                                                       tmp_path: Path, tamper: str) -> None:
    annc("run", program, *HALIDE)
    annc("run", program, "-D", "N=8", *HALIDE)  # a second kernel, of another shape
    first, second = entries_of(home, "kernel")
    if tamper == "random bytes":
        _rewrite_header(first, os.urandom(20000), None)
    elif tamper == "other shape's kernel":
        data = second.read_bytes()
        _rewrite_header(first, data[data.index(b"\n", len(build_cache.MAGIC)) + 1:], None)
    elif tamper == "empty":
        first.write_bytes(b"")
    elif tamper == "copied from another home":
        other = tmp_path / "other"
        annc_other = {**os.environ, "ANNC_HOME": str(other), "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-m", "annc", "run", str(program), *HALIDE],
                       env=annc_other, cwd=ROOT, check=True, capture_output=True, timeout=300)
        (copy,) = [p for p in entries_of(other, "kernel") if p.name == first.name]
        first.write_bytes(copy.read_bytes())
    else:
        target = tmp_path / "elsewhere.kernel"
        target.write_bytes(first.read_bytes())
        first.unlink()
        first.symlink_to(target)
    before = first.read_bytes() if not first.is_symlink() else os.readlink(first)
    for _ in range(2):  # every run after, not only the next
        done = annc("run", program, *given(program), "--save", tmp_path / "out.npz", *HALIDE)
        with np.load(tmp_path / "out.npz") as saved:
            check_result(saved["B"])
        assert "cannot prove it wrote" in done.stderr
    after = first.read_bytes() if not first.is_symlink() else os.readlink(first)
    assert after == before


def test_a_signed_build_that_will_not_load_is_removed_and_rebuilt(
        home: Path, program: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As after a system library changed under a kept build: annc's own entry, verified,
    that the loader refuses."""
    annc("run", program, *HALIDE)
    (entry,) = entries_of(home, "kernel")
    _rewrite_header(entry, b"\x7fELF not a library", None)
    header = build_cache._split(entry.read_bytes())[0]
    header["signature"] = signing.record_signature(header)
    _rewrite_header(entry, b"\x7fELF not a library", header["signature"])
    done = annc("run", program, *given(program), "--save", tmp_path / "out.npz", *HALIDE)
    assert "would not load" in done.stderr
    with np.load(tmp_path / "out.npz") as saved:
        check_result(saved["B"])
    (rebuilt,) = entries_of(home, "kernel")
    assert b"not a library" not in rebuilt.read_bytes()
    assert build_cache.written_by_annc(rebuilt)


def test_cache_clear_removes_only_what_annc_signed(home: Path, program: Path) -> None:
    annc("run", program, *HALIDE)
    foreign = home / "builds" / "feedfacefeedfacefeedfacefeedface.kernel"
    foreign.write_bytes(b"ANNC-BUILD 2\n{\"kind\": \"kernel\"}\nmine")
    done = annc("cache", "--clear", "--report", "json")
    report = json.loads(done.stdout)
    assert report["removed"] >= 2 and report["left"] == 1
    assert [p.name for p in (home / "builds").iterdir() if not p.name.startswith(".")] == \
        [foreign.name]


# Kept plans ----------------------------------------------------------------------


def _plan_file(home: Path) -> Path:
    (path,) = (home / "plans").glob("*.json")
    return path


def _resign(entry: dict) -> dict:

    entry.pop("signature", None)
    entry["signature"] = signing.record_signature(entry)
    return entry


@pytest.mark.parametrize("change", [
    ("variant", "no.such.variant"), ("device", "gpu"), ("predicted_s", "fast"),
    ("cost_s", float("nan")), ("cost_s", -1.0), ("kernel", "conv2d")])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_a_kept_plan_that_does_not_hold_is_ignored(home: Path, program: Path, tmp_path: Path,
                                                   change: tuple[str, object],
                                                   signed: bool) -> None:
    annc("run", program)
    path = _plan_file(home)
    entry = json.loads(path.read_text())
    entry["ops"][0][change[0]] = change[1]
    if signed:
        entry = _resign(entry)
    path.write_text(json.dumps(entry))
    for _ in range(2):
        done = annc("run", program, *given(program), "--save", tmp_path / "out.npz")
        with np.load(tmp_path / "out.npz") as saved:
            check_result(saved["B"])
    if signed:  # annc's own plan: replaced by a good one
        assert json.loads(path.read_text())["ops"][0]["variant"] != "no.such.variant"
        assert json.loads(path.read_text())["ops"][0]["device"] == "cpu"
    else:  # not provably annc's: left as it was, and said so
        assert json.loads(path.read_text())["ops"][0][change[0]] == change[1] or \
            change[1] != change[1]  # NaN
        assert "not a plan annc wrote here" in done.stderr


def test_a_plan_s_notes_cannot_drive_the_terminal(home: Path, program: Path) -> None:
    annc("run", program)
    path = _plan_file(home)
    entry = json.loads(path.read_text())
    entry["notes"] = ["note: \x1b[2J\x1b[31mred\x07"]
    path.write_text(json.dumps(_resign(entry)))
    done = annc("run", program)
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    assert "\\x1b[31mred" in done.stderr


def test_many_plans_are_pruned_but_files_of_others_stay(home: Path, program: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import annc.plans
    from annc.running import run_file

    run_file(program)
    foreign = home / "plans" / "0000mine.json"
    foreign.write_text('{"mine": true}')
    os.utime(foreign, (0, 0))  # the oldest file there
    monkeypatch.setattr(annc.plans, "KEPT", 1)
    for n in range(3):
        run_file(program, params={"N": 4 + n})
    kept = sorted(p.name for p in (home / "plans").glob("*.json"))
    assert foreign.name in kept and len(kept) == 2


# The key, a read-only home, a damaged store ------------------------------------------


def test_a_key_others_can_read_is_not_trusted(home: Path, program: Path,
                                              tmp_path: Path) -> None:
    annc("run", program, *HALIDE)
    (home / KEY_FILE).chmod(0o644)
    done = annc("run", program, *given(program), "--save", tmp_path / "out.npz", *HALIDE)
    assert "is not private to you" in done.stderr
    with np.load(tmp_path / "out.npz") as saved:
        check_result(saved["B"])
    assert len(entries_of(home, "kernel")) == 1  # nothing removed


@contextlib.contextmanager
def read_only(folders: list[Path]) -> Iterator[None]:
    """The folders made read-only: by their mode, or for root (whom modes do not stop)
    by the immutable attribute, where the file system has it."""
    present = [f for f in folders if f.exists()]
    if os.geteuid() != 0:
        for folder in present:
            folder.chmod(0o500)
        undo = [["chmod", "700", str(f)] for f in present]
    else:
        made = subprocess.run(["chattr", "+i", *map(str, present)], capture_output=True)
        if made.returncode != 0:
            pytest.skip("no way to make a folder read-only for root here")
        undo = [["chattr", "-i", *map(str, present)]]
    try:
        yield
    finally:
        for command in undo:
            subprocess.run(command, check=True)


def test_a_read_only_home_keeps_nothing_and_says_so(home: Path, program: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    annc("run", program, *HALIDE)
    monkeypatch.delenv("ANNC_NO_RECORD")
    with read_only([home, home / "builds", home / "plans", home / "jax-cache"]):
        done = annc("run", program, "-D", "N=20", "--variant", "add=jax", "--variant",
                    "matmul=halide.tiled")
        assert "PermissionError" not in done.stderr and "builds are not kept" in done.stderr
        done = annc("cache", "--clear", check=1)
        assert "not writable" in done.stderr


def test_a_store_that_cannot_be_written_drops_observations_with_a_note(
        home: Path, program: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANNC_NO_RECORD")
    heat = ROOT / "examples" / "heat.ann"
    annc("run", heat, "--builds", "never")
    store = home / "measurements.sqlite"
    store.write_bytes(store.read_bytes()[:3000])
    done = annc("run", heat, "--builds", "never")
    assert "not kept" in done.stderr and "annc learns nothing from it" in done.stderr
    assert store.stat().st_size == 3000  # left for the user to move aside


def test_no_private_folder_is_left_in_dev_shm(home: Path, program: Path) -> None:
    """A process's folder for loading libraries is named by its pid, and gone once it
    has ended."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm")
    annc("run", program, *HALIDE)
    for _ in range(2):  # builds the kernel, then loads the kept one
        started = _start("run", program, *HALIDE)
        _, err = started.communicate(timeout=300)
        assert started.returncode == 0, err
        assert list(shm.glob(f"annc-so-{started.pid}-*")) == []


# Concurrent runs and kills ----------------------------------------------------------------


def _authentic_state(home: Path) -> None:
    """Every entry and plan is annc's, and the store passes SQLite's integrity check."""
    for path in (home / "builds").iterdir():
        if not path.name.startswith("."):
            assert build_cache.written_by_annc(path), path
    for path in (home / "plans").glob("*.json"):
        import annc.plans

        assert annc.plans._signed_entry(path) is not None, path
    if (home / "measurements.sqlite").exists():
        with sqlite3.connect(home / "measurements.sqlite") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _start(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "annc", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("ANNC_NO_RECORD")
    yield


def test_concurrent_runs_on_one_home_agree_and_keep_an_intact_home(
        home: Path, program: Path, tmp_path: Path, recording: None) -> None:
    runs = [_start("run", program, *given(program), "--save", tmp_path / f"out{n}.npz", *HALIDE,
                   "--variant", "add=halide") for n in range(3)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0 and "Traceback" not in err, err
    results = []
    for n in range(3):
        with np.load(tmp_path / f"out{n}.npz") as saved:
            results.append(saved["B"])
    assert all(np.array_equal(results[0], r) for r in results)
    check_result(results[0])
    _authentic_state(home)


KILLS = [("run", 1.5), ("build", 2.0), ("calibrate", 3.0)]


def _killed_then_whole(home: Path, program: Path, tmp_path: Path, what: str,
                       after_s: float) -> None:
    """Starts a run, a build or a calibration, kills it (-9) after `after_s`, then checks
    that the home is whole and the next run is right."""
    import time

    command = {"run": ["run", program, *HALIDE, "--variant", "add=halide"],
               "build": ["build", ROOT / "examples" / "heat.ann"],
               "calibrate": ["calibrate", "--quick"]}[what]
    started = _start(*command)
    time.sleep(after_s)
    started.kill()
    started.communicate()
    _authentic_state(home)
    check_result(run_and_load(program, tmp_path / "out.npz", *HALIDE))
    _authentic_state(home)


@pytest.mark.parametrize(("what", "after_s"), KILLS)
def test_kill_9_leaves_a_whole_home(home: Path, program: Path, tmp_path: Path,
                                    recording: None, what: str, after_s: float) -> None:
    annc("run", program)  # the home exists; the next command has something to break
    _killed_then_whole(home, program, tmp_path, what, after_s)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_kill_9_at_random_points_leaves_a_whole_home(home: Path, program: Path,
                                                     tmp_path: Path, recording: None,
                                                     seed: int) -> None:
    rng = np.random.default_rng(seed)
    what = ["run", "build", "calibrate"][seed % 3]
    annc("run", program)
    _killed_then_whole(home, program, tmp_path, what, float(rng.uniform(0.3, 6.0)))
