"""`annc run --distributed`: one program over several processes and hosts.

Every process joins the run through `jax.distributed.initialize` (the coordinator,
process count and id as options, or, left out, from the environment as JAX reads it:
`JAX_COORDINATOR_ADDRESS`, Slurm, Open MPI), so that JAX lists the devices of every
process together and the mesh (`hardware.devices.mesh`) spans them. Then:

1. process 0 compiles and chooses; its selected IR, which is exactly what runs, is
   sent to every process, so all run one plan (its collectives must match);
2. every process opens the inputs by rows (`hardware.execution.shard_inputs`: drawn
   from the seed, the values of a one-process run, or mapped from the archive): a
   sharded region that splits an input by rows makes only this process's rows;
3. every process runs the plan, its builds first (a build that switched in mid-run
   would change one process's calls and not another's); values that sharded
   regions split stay split between them (`hardware.execution.on_mesh`);
4. outputs of `--gather-limit` bytes or fewer are gathered, and process 0 writes
   them; larger ones are written by every process, the rows it holds each, with an
   index file naming the parts. Process 0 prints the one report.

Between the steps the processes agree (`agree`): each says whether its step went
well, and where one did not, every process stops with every failure in its message.
A process that dies is noticed by JAX's coordination service within `--timeout`
seconds (its heartbeat), which ends the others: a failing host fails the run, it
does not hang it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from annc.dsl.errors import AnncError
from annc.hardware.devices.mesh import HOSTS

MESSAGE_BYTES = 1024
"""The longest failure message one process sends the others (longer ones are cut)."""

DEFAULT_TIMEOUT_S = 120
DEFAULT_GATHER_LIMIT = 1 << 30
"""Outputs of more bytes than this are written per process, with an index."""

T = TypeVar("T")


class DistributedError(AnncError):
    """A distributed run could not start, or one of its processes failed."""


@dataclass(frozen=True)
class Cluster:
    coordinator: str | None = None
    processes: int | None = None
    process_id: int | None = None
    timeout_s: int = DEFAULT_TIMEOUT_S


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Standard output goes to standard error meanwhile, at the descriptor: Gloo, JAX's
    CPU collectives, prints its connections there, and `--report json` must be the one
    object on standard output."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def join(cluster: Cluster) -> tuple[int, int]:
    """Joins the run (`jax.distributed.initialize`); returns (this process's id, the
    number of processes). Must come before anything runs on a JAX device. The
    processes then count the hosts they are on (`mesh.HOSTS`), which tells a mesh's
    communication measured between hosts from the same measured within one."""
    import jax

    from annc.hardware.devices import jax_runtime  # noqa: F401  (annc's JAX settings first)

    where = cluster.coordinator or "the coordinator named by the environment"
    advice = ("check --coordinator, --processes and --process-id, or JAX_COORDINATOR_ADDRESS "
              "and the scheduler's variables, and that every process was started")
    # JAX's coordination service aborts the process (SIGABRT, with a C++ stack) when the
    # others do not come in time: a watchdog ends it first, with a message.
    watchdog = threading.Timer(max(cluster.timeout_s - JOIN_MARGIN_S, 1.0), _give_up,
                               (f"annc: error: distributed: the other processes did not "
                                f"join through {where} within {cluster.timeout_s} s; "
                                f"{advice}",))
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(
            coordinator_address=cluster.coordinator, num_processes=cluster.processes,
            process_id=cluster.process_id, initialization_timeout=cluster.timeout_s,
            heartbeat_timeout_seconds=max(cluster.timeout_s // 4, 10),
            shutdown_timeout_seconds=cluster.timeout_s)
    except (RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DistributedError(
            f"distributed: could not join the run through {where} ({first}); {advice}"
        ) from None
    finally:
        watchdog.cancel()
    os.environ[HOSTS] = str(count_hosts())
    return jax.process_index(), jax.process_count()


def count_hosts() -> int:
    """How many hosts the run's processes are on (every process calls it): each
    sends a digest of its host's name."""
    from jax.experimental import multihost_utils

    digest = np.frombuffer(hashlib.sha256(socket.gethostname().encode()).digest()[:8],
                           np.uint8)
    everyone = np.asarray(multihost_utils.process_allgather(digest)).reshape(-1, 8)
    return len({bytes(row) for row in everyone})


JOIN_MARGIN_S = 2.0
"""The watchdog gives up this much before JAX's own join timeout."""


def _give_up(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
    os._exit(1)


def agree(step: str, error: str | None) -> None:
    """Every process tells every other whether `step` went well; where any failed,
    every process raises a `DistributedError` naming each failed process and why."""
    from jax.experimental import multihost_utils

    message = np.zeros(MESSAGE_BYTES + 1, np.uint8)
    if error is not None:
        encoded = error.encode("utf-8", "replace")[:MESSAGE_BYTES]
        message[0] = 1
        message[1 : 1 + len(encoded)] = np.frombuffer(encoded, np.uint8)
    everyone = np.asarray(multihost_utils.process_allgather(message))
    failed = [(index, bytes(row[1:]).rstrip(b"\0").decode("utf-8", "replace"))
              for index, row in enumerate(everyone.reshape(-1, MESSAGE_BYTES + 1)) if row[0]]
    if failed:
        reasons = "; ".join(f"process {index}: {why}" for index, why in failed)
        raise DistributedError(f"distributed run failed while {step}: {reasons}")


def attempt(step: str, work: Callable[[], T]) -> T | None:
    """Runs `work`, then `agree`s on it: its result where every process succeeded."""
    result, error = None, None
    try:
        result = work()
    except AnncError as failure:
        error = str(failure)
    except Exception as failure:
        error = f"{type(failure).__name__}: {failure}"
    agree(step, error)
    return result


def from_first(text: str | None) -> str:
    """Process 0's text, in every process."""
    from jax.experimental import multihost_utils

    data = np.frombuffer((text or "").encode("utf-8"), np.uint8)
    length = int(np.asarray(multihost_utils.broadcast_one_to_all(np.int64(data.size))))
    padded = np.zeros(length, np.uint8)
    padded[: min(data.size, length)] = data[:length]
    shared = np.asarray(multihost_utils.broadcast_one_to_all(padded))
    return bytes(shared).decode("utf-8")


def row_block(rows: int, process: int, processes: int) -> tuple[int, int]:
    """The rows of a value that one process writes: an even share, in order."""
    share = math.ceil(rows / processes)
    return min(process * share, rows), min((process + 1) * share, rows)


def fits(result: Any, limit: int) -> bool:
    """Whether the run's outputs, those left on the mesh included, hold `limit` bytes or
    fewer: then they are gathered (`gather_outputs`), else written in parts."""
    values = [*result.outputs.values(), *result.on_mesh.values()]
    return sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in values) <= limit


def gather_outputs(result: Any) -> None:
    """Every output left on the mesh, gathered whole into `result.outputs` (in every
    process: each must gather alike), in the order the program returns them."""
    gathered = {name: value.whole() for name, value in result.on_mesh.items()}
    result.on_mesh.clear()
    order = result.names or [*result.outputs, *gathered]
    result.outputs = {name: result.outputs[name] if name in result.outputs else gathered[name]
                      for name in order}


def peak_memory() -> list[int]:
    """Every process's peak resident memory in bytes (`ru_maxrss`), by process id, in
    every process."""
    import resource

    from jax.experimental import multihost_utils

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    everyone = multihost_utils.process_allgather(np.array([peak], np.int64))
    return [int(v) for v in np.asarray(everyone).ravel()]


def _rows(value: Any, processes: int) -> dict[int, tuple[int, int]]:
    """The rows of an output each process writes: those it holds where a sharded
    region left it split by rows, else an even share (`row_block`)."""
    held = value.rows_by_process() if hasattr(value, "rows_by_process") else None
    if held is not None and len(held) == processes:
        return dict(held)
    return {p: row_block(value.shape[0], p, processes) for p in range(processes)}


def save_parts(path: str, outputs: Mapping[str, Any], process: int, processes: int,
               save: Callable[[str, dict[str, np.ndarray]], None]) -> dict[str, Any] | None:
    """Writes this process's rows of every output to `STEM.p<process>.npz` (a 0-d output
    by process 0 only); returns, on process 0, the index of every part. An output left
    split by rows on the mesh is written from the rows this process holds, never
    gathered; a whole one is cut into even shares."""
    target = Path(path)
    stem = target.name.removesuffix(".npz")
    mine: dict[str, np.ndarray] = {}
    index: dict[str, Any] = {"processes": processes, "outputs": {}}
    for name, value in outputs.items():
        shape = tuple(value.shape)
        parts: list[dict[str, Any]] = []
        rows = _rows(value, processes) if shape else {}
        for owner in range(processes):
            if not shape:
                if owner == 0:
                    parts.append({"file": f"{stem}.p0.npz", "rows": None})
                continue
            parts.append({"file": f"{stem}.p{owner}.npz", "rows": list(rows[owner])})
        index["outputs"][name] = {"shape": list(shape), "dtype": np.dtype(value.dtype).name,
                                  "parts": parts}
        if not shape:
            if process == 0:
                mine[name] = _whole(value)
            continue
        held = value.rows_by_process() if hasattr(value, "rows_by_process") else None
        if held is not None and len(held) == processes:
            mine[name] = value.local_rows()
        else:
            start, stop = rows[process]
            mine[name] = _whole(value)[start:stop]
    save(str(target.with_name(f"{stem}.p{process}.npz")), mine)
    if process != 0:
        return None
    target.with_name(f"{stem}.index.json").write_text(json.dumps(index, indent=1) + "\n")
    return index


def _whole(value: Any) -> np.ndarray:
    return value if isinstance(value, np.ndarray) else value.whole()


@dataclass
class DistributedRun:
    """What one process of a distributed run ends with."""

    process: int
    processes: int
    devices: int
    result: Any
    """The `RunResult` (every process holds the whole outputs)."""


def run_program(path: str, cluster: Cluster, inputs_path: str | None,
                params: Mapping[str, int | str], seed: int,
                targets: tuple[str, ...] | None, measure: str,
                shard_regions: bool = False) -> DistributedRun:
    """Joins the run, agrees on the inputs, runs process 0's plan everywhere (see the
    module); every failure, of any process, is a `DistributedError` in every process."""
    process, processes = join(cluster)
    from xdsl.parser import Parser

    from annc.compiler import compile_program, read_source
    from annc.dsl.context import annc_context
    from annc.hardware.devices.mesh import mesh_info
    from annc.hardware.execution.rundata import check_seed, input_specs
    from annc.hardware.execution.shard_inputs import drawn_by_rows, read_by_rows
    from annc.running import run_module

    def choose() -> tuple[str, str | None] | None:
        if process != 0:
            return None
        compiled = compile_program(read_source(path), path, params, targets, "selected",
                                   measure, record=False)
        return str(compiled.ir), compiled.selection.models

    chosen = attempt("compiling (process 0)", choose)
    text = from_first(chosen[0] if chosen else None)
    models = from_first(chosen[1] if chosen else None) or None
    module = Parser(annc_context(), text).parse_module()
    if shard_regions:
        from annc.passes.sharding_choice import force_sharded

        force_sharded(module)
    specs = input_specs(module)
    inputs = attempt("reading the inputs", lambda: read_by_rows(specs, inputs_path)
                     if inputs_path else drawn_by_rows(specs, check_seed(seed)))
    result = attempt("running", lambda: run_module(module, by_rows=inputs, models=models,
                                                   builds="first", gather=False))
    mesh = mesh_info()
    return DistributedRun(process, processes, mesh.size if mesh else 1, result)
