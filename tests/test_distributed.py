"""`annc run --distributed`: two processes on this machine, 4 simulated CPU devices
each, joined through `jax.distributed.initialize` (CPU collectives through Gloo).
Slow: every process starts JAX and compiles (about half a minute a case here)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from annc.hardware.calibration.store import MeasurementStore
from annc.hardware.devices.fingerprint import fingerprint

ROOT = Path(__file__).resolve().parent.parent
HEAT = str(ROOT / "examples" / "heat.ann")
SMALL = ["-D", "N=256", "-D", "STEPS=10"]

pytestmark = pytest.mark.slow


def _port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def _environment(home: Path) -> dict[str, str]:
    return {**os.environ, "JAX_NUM_CPU_DEVICES": "4", "JAX_PLATFORMS": "cpu",
            "ANNC_HOME": str(home),
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _processes(tmp_path: Path, per_process: list[list[str]], timeout: int = 240
               ) -> list[subprocess.CompletedProcess[str]]:
    """One `annc run --distributed` per argument list, all at once; their results."""
    port = _port()
    running = []
    for index, args in enumerate(per_process):
        home = tmp_path / f"home{index}"
        home.mkdir(exist_ok=True)
        running.append(subprocess.Popen(
            [sys.executable, "-m", "annc", "run", HEAT, *SMALL, "--distributed",
             "--coordinator", f"localhost:{port}", "--processes", str(len(per_process)),
             "--process-id", str(index), "--timeout", "30", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_environment(home)))
    done = []
    for process in running:
        out, err = process.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


def _single(tmp_path: Path) -> dict[str, np.ndarray]:
    target = tmp_path / "single.npz"
    home = tmp_path / "single-home"
    home.mkdir()
    env = {**_environment(home), "JAX_NUM_CPU_DEVICES": "1"}
    done = subprocess.run([sys.executable, "-m", "annc", "run", HEAT, *SMALL, "--save",
                           str(target)], capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-1500:]
    return dict(np.load(target))


def test_two_processes_of_four_devices_run_sharded_as_one_device_does(tmp_path):
    out = tmp_path / "out.npz"
    done = _processes(tmp_path, [["--shard-regions", "--report", "json", "--save", str(out)],
                                 ["--shard-regions", "--report", "json", "--save", str(out)]])
    assert [d.returncode for d in done] == [0, 0], done[0].stderr[-1500:] + done[1].stderr[-1500:]
    report = json.loads(done[0].stdout)  # one report, from process 0 only
    assert done[1].stdout == ""
    shared = report["distributed"]
    assert (shared["processes"], shared["devices"]) == (2, 8)
    # the field stayed split by rows from the loop into the energy's region and out;
    # both fit the gather limit, so they were gathered for the archive at the end
    assert shared["on_mesh"] == {"T": "P('devices',)", "E": "P()"}
    assert shared["gathered"] is True
    assert len(shared["max_rss_bytes"]) == 2 and min(shared["max_rss_bytes"]) > 0
    assert {r["variant"] for r in report["regions"]} == {"jax.sharded"}
    single = _single(tmp_path)
    got = dict(np.load(out))
    for name, value in single.items():
        scale = max(float(np.max(np.abs(value))), 1.0)
        assert float(np.max(np.abs(got[name] - value))) / scale <= 1e-5, name


def test_outputs_larger_than_the_gather_limit_are_written_per_process_with_an_index(tmp_path):
    out = tmp_path / "big.npz"
    args = ["--shard-regions", "--save", str(out), "--gather-limit", "1000"]
    done = _processes(tmp_path, [args, args])
    assert [d.returncode for d in done] == [0, 0], done[0].stderr[-1500:]
    assert not out.exists()
    index = json.loads((tmp_path / "big.index.json").read_text())
    field = index["outputs"]["T"]
    assert field["shape"] == [256, 256]
    parts = [np.load(tmp_path / part["file"])["T"] for part in field["parts"]]
    assert [p.shape for p in parts] == [(128, 256), (128, 256)]
    whole = np.concatenate(parts)
    single = _single(tmp_path)
    assert float(np.max(np.abs(whole - single["T"]))) <= 1e-5 * max(
        float(np.max(np.abs(single["T"]))), 1.0)


def test_inputs_read_from_an_archive_by_rows_give_the_single_process_results(tmp_path):
    given = tmp_path / "in.npz"
    rng = np.random.default_rng(1)
    np.savez(given, T=rng.random((256, 256)), alpha=np.float64(0.2))  # f64: converted
    out = tmp_path / "out.npz"
    args = ["--shard-regions", "--inputs", str(given), "--save", str(out)]
    done = _processes(tmp_path, [args, args])
    assert [d.returncode for d in done] == [0, 0], done[0].stderr[-1500:] + done[1].stderr[-1500:]
    home = tmp_path / "single-home"
    home.mkdir()
    single = tmp_path / "single.npz"
    alone = subprocess.run([sys.executable, "-m", "annc", "run", HEAT, *SMALL, "--inputs",
                            str(given), "--save", str(single)], capture_output=True, text=True,
                           timeout=240, env={**_environment(home), "JAX_NUM_CPU_DEVICES": "1"})
    assert alone.returncode == 0, alone.stderr[-1500:]
    got, want = dict(np.load(out)), dict(np.load(single))
    for name, value in want.items():
        scale = max(float(np.max(np.abs(value))), 1.0)
        assert float(np.max(np.abs(got[name] - value))) / scale <= 1e-5, name


def test_a_process_that_fails_fails_the_run_on_every_process(tmp_path):
    good = tmp_path / "in.npz"
    rng = np.random.default_rng(0)
    np.savez(good, T=rng.random((256, 256)).astype(np.float32), alpha=np.float32(0.2))
    done = _processes(tmp_path, [["--inputs", str(good)],
                                 ["--inputs", str(tmp_path / "missing.npz")]])
    for process in done:
        assert process.returncode == 1
        assert "Traceback" not in process.stderr
        assert "distributed run failed while reading the inputs: process 1:" in process.stderr
        assert "missing.npz" in process.stderr


def test_a_process_that_never_joins_fails_the_run_within_its_timeout(tmp_path):
    port = _port()
    done = subprocess.run(
        [sys.executable, "-m", "annc", "run", HEAT, *SMALL, "--distributed",
         "--coordinator", f"localhost:{port}", "--processes", "2", "--process-id", "0",
         "--timeout", "10"],
        capture_output=True, text=True, timeout=120, env=_environment(tmp_path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "did not join" in done.stderr


def _pair(tmp_path: Path, command: list[str], timeout: int = 240
          ) -> list[subprocess.CompletedProcess[str]]:
    """`command` (after the interpreter) run as two processes of 4 devices, joined
    through one coordinator: each gets `{coordinator}` and `{id}` filled in, and
    ANNC_HOME `home0` or `home1`."""
    port = _port()
    running = []
    for index in range(2):
        home = tmp_path / f"home{index}"
        home.mkdir(exist_ok=True)
        words = [w.format(coordinator=f"localhost:{port}", id=index) for w in command]
        running.append(subprocess.Popen([sys.executable, *words], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True,
                                        env=_environment(home)))
    done = []
    for process in running:
        out, err = process.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    assert [d.returncode for d in done] == [0, 0], done[0].stderr[-1500:] + done[1].stderr[-1500:]
    return done


def _selected_on_two_processes(tmp_path: Path) -> dict[str, object]:
    done = _pair(tmp_path, [str(ROOT / "tests" / "distributed_selection.py"), "{coordinator}",
                            "2", "{id}", HEAT])
    return json.loads(done[0].stdout.strip().splitlines()[-1])


def test_a_multi_process_mesh_is_calibrated_by_every_process_and_selection_uses_it(tmp_path):
    """`annc calibrate --communication --distributed` over 2 processes of 4 devices:
    process 0 stores the lines, tagged with the mesh's 2 processes on 1 host; selection
    on that mesh then reads them (before, it used the uncalibrated guess)."""
    before = _selected_on_two_processes(tmp_path)
    assert before["variant"] == "jax.sharded"
    assert "8 cpu devices in 2 processes on 1 host by rows" in str(before["communication"])
    assert "uncalibrated" in str(before["communication"])
    done = _pair(tmp_path, ["-m", "annc", "calibrate", "--communication", "--distributed",
                            "--coordinator", "{coordinator}", "--processes", "2",
                            "--process-id", "{id}", "--join-timeout", "60"])
    assert "collective-permute:" in done[0].stdout and done[1].stdout == ""
    assert "Traceback" not in done[0].stderr + done[1].stderr
    with MeasurementStore(tmp_path / "home0" / "measurements.sqlite") as store:
        fp = fingerprint().id
        rows = store.communication(fp, "cpu", 8, processes=2, hosts=1)
        assert {r.collective for r in rows} == {"all-reduce", "all-gather",
                                                "collective-permute", "all-to-all"}
        assert store.communication(fp, "cpu", 8) == []  # not one process's mesh
    second = tmp_path / "home1" / "measurements.sqlite"
    if second.exists():  # process 1 stores nothing
        with MeasurementStore(second) as store:
            assert store.communication(fingerprint().id, "cpu", 8, 2, 1) == []
    after = _selected_on_two_processes(tmp_path)
    assert "calibrated" in str(after["communication"])
    assert "uncalibrated" not in str(after["communication"])
    assert after["communication_s"] != before["communication_s"]


@pytest.mark.parametrize("killed", [1, 0])
def test_a_process_killed_mid_run_ends_the_other_with_annc_s_own_line(tmp_path, killed):
    """A process that dies while the loop runs (here: SIGKILL to its process group)
    ends the other through JAX's coordination service; the other says so in annc's
    words, with no native log line or stack, and exits 1, not hanging."""
    port = _port()
    running = []
    for index in range(2):
        home = tmp_path / f"home{index}"
        home.mkdir()
        running.append(subprocess.Popen(
            [sys.executable, "-m", "annc", "run", HEAT, "-D", "N=512", "-D", "STEPS=200000",
             "--distributed", "--coordinator", f"localhost:{port}", "--processes", "2",
             "--process-id", str(index), "--timeout", "30", "--shard-regions"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_environment(home), start_new_session=True))
    survivor = running[1 - killed]
    time.sleep(20)  # both joined, compiled and running the loop
    assert survivor.poll() is None, survivor.stderr.read() if survivor.stderr else ""
    os.killpg(running[killed].pid, signal.SIGKILL)
    started = time.monotonic()
    _, err = survivor.communicate(timeout=120)
    assert survivor.returncode == 1, err[-1500:]
    assert time.monotonic() - started < 90
    assert "annc: distributed run abandoned:" in err
    assert ("process 1 stopped answering" if killed == 1 else
            "the coordinator (process 0), stopped answering") in err
    for native in ("Check failure", "@     0x", "Traceback", "coordination_service", "[Gloo]"):
        assert native not in err, err[-1500:]
